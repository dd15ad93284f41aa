%% @doc zotonic_host: Zotonic's z_db_pool API over zotonic_host_db_pool.
%% @end

-module(z_db_pool).

-export([
    db_pool_name/1,
    get_database_options/1,
    get_connection/1,
    return_connection/2,
    get_unpaused_connection/1,
    pause_connections/1,
    unpause_connections/1
]).

% Zotonic's API as Zotonic exports it (or called by name: supervisors, observers); nothing
% here calls it directly.
-ignore_xref([db_pool_name/1, get_unpaused_connection/1]).

-include_lib("zotonic_core/include/zotonic.hrl").

-spec db_pool_name(atom() | z:context()) -> atom().
db_pool_name(Site) when is_atom(Site) -> zotonic_host_db_pool:name(Site);
db_pool_name(#context{ site = Site }) -> zotonic_host_db_pool:name(Site).

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

%% @doc A connection that keeps working while the pool is paused (for the restore).
-spec get_unpaused_connection(z:context()) -> {ok, pid()} | {error, full | nodatabase}.
get_unpaused_connection(#context{ site = Site } = Context) ->
    ok = zotonic_host_db_pool:pause(Site, self()),
    get_connection(Context).

-spec pause_connections(z:context()) -> ok.
pause_connections(#context{ site = Site }) ->
    zotonic_host_db_pool:pause(Site, self()).

-spec unpause_connections(z:context()) -> ok.
unpause_connections(#context{ site = Site }) ->
    zotonic_host_db_pool:unpause(Site).
