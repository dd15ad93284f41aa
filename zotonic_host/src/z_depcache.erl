%% @doc zotonic_host: Zotonic's z_depcache without a cache -- memo/N always computes, so tests
%% always see the database.
%% @end

-module(z_depcache).

-export([flush/1, flush/2, memo/2, memo/3, memo/4, memo/5, get/2, set/3, set/4, set/5]).

% Called by the suites (or the demo) only, as Zotonic's own API would be.
-ignore_xref([flush/1]).
% Zotonic's API as Zotonic exports it (or called by name: supervisors, observers); nothing
% here calls it directly.
-ignore_xref([get/2, memo/2, memo/3, memo/4, memo/5, set/3, set/4, set/5]).

-spec flush(z:context()) -> ok.
flush(_Context) -> ok.

-spec flush(term(), z:context()) -> ok.
flush(_Key, _Context) -> ok.

-spec memo(fun(() -> T), z:context()) -> T.
memo(Fun, _Context) -> Fun().

-spec memo(fun(() -> T), term(), z:context()) -> T.
memo(Fun, _Key, _Context) -> Fun().

-spec memo(fun(() -> T), term(), integer(), z:context()) -> T.
memo(Fun, _Key, _MaxAge, _Context) -> Fun().

-spec memo(fun(() -> T), term(), integer(), list(), z:context()) -> T.
memo(Fun, _Key, _MaxAge, _Deps, _Context) -> Fun().

-spec get(term(), z:context()) -> undefined.
get(_Key, _Context) -> undefined.

-spec set(term(), term(), z:context()) -> ok.
set(_Key, _Value, _Context) -> ok.

-spec set(term(), term(), integer(), z:context()) -> ok.
set(_Key, _Value, _MaxAge, _Context) -> ok.

-spec set(term(), term(), integer(), list(), z:context()) -> ok.
set(_Key, _Value, _MaxAge, _Deps, _Context) -> ok.
