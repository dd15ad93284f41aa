%% @doc zotonic_host: Zotonic's z_controller_helper:is_authorized/2 -- every {Action, Object}
%% pair must be allowed (a view of a non-existing resource passes, for a later 404).
%% @end

-module(z_controller_helper).

-export([is_authorized/2, is_authorized/3]).

% Called by the suites (or the demo) only, as Zotonic's own API would be.
-ignore_xref([is_authorized/3]).

-spec is_authorized(list() | term(), z:context()) -> {boolean(), z:context()}.
is_authorized(ACLs, Context) when is_list(ACLs) ->
    is_authorized(undefined, ACLs, Context);
is_authorized(OptRscId, Context) ->
    is_authorized(OptRscId, [{view, OptRscId} || OptRscId =/= undefined], Context).

-spec is_authorized(term(), boolean() | list(), z:context()) -> {boolean(), z:context()}.
is_authorized(_OptRscId, true, Context) -> {true, Context};
is_authorized(_OptRscId, false, Context) -> {false, Context};
is_authorized(_OptRscId, ACLs, Context) when is_list(ACLs) ->
    {lists:all(fun({Action, Object}) -> allowed(Action, Object, Context) end, ACLs), Context}.

allowed(Action, Object, Context) ->
    z_acl:is_allowed(Action, Object, Context)
        orelse (Action =:= view andalso (Object =:= undefined orelse not m_rsc:exists(Object, Context))).
