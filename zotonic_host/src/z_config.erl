%% @doc zotonic_host: Zotonic's global z_config: application env of `zotonic' when set, else
%% the defaults Zotonic ships (tar, pg_dump, psql executables; environment production).
%% @end

-module(z_config).

-export([get/1, get/2]).

% Called by the suites (or the demo) only, as Zotonic's own API would be.
-ignore_xref([get/1]).

-spec get(atom()) -> term().
get(Key) -> get(Key, default(Key)).

-spec get(atom(), term()) -> term().
get(Key, Default) ->
    case application:get_env(zotonic, Key) of
        {ok, V} -> V;
        undefined -> Default
    end.

default(environment) -> production;
default(tar) -> "tar";
default(pg_dump) -> "pg_dump";
default(psql) -> "psql";
default(_) -> undefined.
