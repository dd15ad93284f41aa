%% @doc zotonic_host: the process Zotonic runs for a module that is not a gen_server, so that its
%% observers have an owner (as Zotonic's z_module_dummy).
%% @end

-module(z_module_dummy).
-behaviour(gen_server).

-export([start_link/1]).

% Zotonic's API as Zotonic exports it (or called by name: supervisors, observers); nothing
% here calls it directly.
-ignore_xref([start_link/1]).
-export([init/1, handle_call/3, handle_cast/2]).

-spec start_link(proplists:proplist()) -> {ok, pid()} | {error, term()}.
start_link(Args) ->
    gen_server:start_link(?MODULE, Args, []).

init(Args) ->
    {ok, proplists:get_value(module, Args)}.

handle_call(_Msg, _From, State) ->
    {reply, {error, unknown_call}, State}.

handle_cast(_Msg, State) ->
    {noreply, State}.
