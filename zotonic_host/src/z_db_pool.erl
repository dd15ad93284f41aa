%% @doc zotonic_host: Zotonic's z_db_pool API over zotonic_host_db_pool.
%% @end

-module(z_db_pool).

-export([
    get_database_options/1,
    get_connection/1,
    return_connection/2,
    pause_connections/1,
    unpause_connections/1
]).

-include_lib("zotonic_core/include/zotonic.hrl").

%% @doc dbhost, dbport, dbuser, dbpassword, dbdatabase, dbschema of the site.
-spec get_database_options(z:context()) -> proplists:proplist().
get_database_options(#context{ site = Site }) ->
    zotonic_host_db_pool:options(Site).

-spec get_connection(z:context()) -> {ok, pid()} | {error, full | nodatabase}.
get_connection(#context{ site = Site }) ->
    zotonic_host_db_pool:checkout(Site, 30000).

-spec return_connection(pid(), z:context()) -> ok.
return_connection(Conn, #context{ site = Site }) ->
    zotonic_host_db_pool:checkin(Site, Conn).

-spec pause_connections(z:context()) -> ok.
pause_connections(#context{ site = Site }) ->
    zotonic_host_db_pool:pause(Site, self()).

-spec unpause_connections(z:context()) -> ok.
unpause_connections(#context{ site = Site }) ->
    zotonic_host_db_pool:unpause(Site).
