%% @doc Backup module. Creates backups of the database and files, and keeps a revision log of
%% resources. A drop-in for Zotonic's own mod_backup whose heavy work runs in a Rust NIF
%% (see backup_nif).
%%
%% This is the foundation skeleton: the per-site server and the module attributes. Backups,
%% restore and revisions are added on top of it.
%% @end

%% Copyright 2026 The zotonic_mod_backup authors
%%
%% Licensed under the Apache License, Version 2.0 (the "License");
%% you may not use this file except in compliance with the License.
%% You may obtain a copy of the License at
%%
%%     http://www.apache.org/licenses/LICENSE-2.0
%%
%% Unless required by applicable law or agreed to in writing, software
%% distributed under the License is distributed on an "AS IS" BASIS,
%% WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
%% See the License for the specific language governing permissions and
%% limitations under the License.

-module(mod_backup).
-behaviour(gen_server).

-mod_title("Backup").
-mod_description("Make a backup of the database and files.").
-mod_prio(600).
-mod_provides([backup]).
-mod_depends([]).

-export([
    start_link/1
]).

-export([
    init/1,
    handle_call/3,
    handle_cast/2,
    handle_info/2,
    terminate/2,
    code_change/3
]).

-record(state, {
    context :: term()
}).

%% @doc Started by Zotonic's module manager, once per site.
-spec start_link(Args) -> {ok, pid()} | {error, term()} when Args :: proplists:proplist().
start_link(Args) when is_list(Args) ->
    gen_server:start_link(?MODULE, Args, []).

%% ---------------------------------------------------------------------------------------------

-spec init(proplists:proplist()) -> {ok, #state{}}.
init(Args) ->
    {context, Context} = proplists:lookup(context, Args),
    {ok, #state{context = Context}}.

-spec handle_call(term(), gen_server:from(), #state{}) -> {reply, {error, unknown_call}, #state{}}.
handle_call(_Request, _From, State) ->
    {reply, {error, unknown_call}, State}.

-spec handle_cast(term(), #state{}) -> {noreply, #state{}}.
handle_cast(_Msg, State) ->
    {noreply, State}.

-spec handle_info(term(), #state{}) -> {noreply, #state{}}.
handle_info(_Info, State) ->
    {noreply, State}.

-spec terminate(term(), #state{}) -> ok.
terminate(_Reason, _State) ->
    ok.

-spec code_change(term(), #state{}, term()) -> {ok, #state{}}.
code_change(_OldVsn, State, _Extra) ->
    {ok, State}.
