%% @doc zotonic_host: Zotonic's z_depcache without a cache -- memo/N always computes, so tests
%% always see the database.
%% @end

-module(z_depcache).

-export([flush/1, flush/2]).

% Called by the suites (or the demo) only, as Zotonic's own API would be.
-ignore_xref([flush/1]).

-spec flush(z:context()) -> ok.
flush(_Context) -> ok.

-spec flush(term(), z:context()) -> ok.
flush(_Key, _Context) -> ok.
