%% @doc zotonic_host: the driver functions of Zotonic's z_db_pgsql that z_db and modules call,
%% with a zotonic_host_pgsql connection as the "worker".
%% @end

-module(z_db_pgsql).

-export([
    squery/3,
    equery/4,
    is_connection_alive/1
]).

% Zotonic's API as Zotonic exports it (or called by name: supervisors, observers); nothing
% here calls it directly.
-ignore_xref([equery/4, is_connection_alive/1, squery/3]).

%% @doc Simple query, results as the driver returns them (`{ok, [], []}' for commands).
-spec squery(pid(), iodata(), pos_integer()) -> term().
squery(Conn, Sql, Timeout) ->
    zotonic_host_pgsql:squery(Conn, Sql, Timeout).

%% @doc Query with `$n' parameters.
-spec equery(pid(), iodata(), list(), pos_integer()) -> zotonic_host_pgsql:result().
equery(Conn, Sql, Params, Timeout) ->
    zotonic_host_pgsql:equery(Conn, Sql, Params, Timeout).

-spec is_connection_alive(pid()) -> boolean().
is_connection_alive(Conn) ->
    zotonic_host_pgsql:is_alive(Conn).
