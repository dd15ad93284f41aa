%% @doc A test "Zotonic module" for zotonic_host_SUITE: it observes the notifications mod_backup
%% relies on and forwards each one, with whether the context was sudo, to the process that
%% called listen/1 for the site. Started by the host like any module (it is not a gen_server,
%% so it runs under z_module_dummy), its observers are found from its observe_* exports.
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

-module(zb_test_observer).

-mod_title("Test observer").
-mod_description("Forwards notifications to a test process.").
-mod_prio(100).

-include_lib("zotonic_core/include/zotonic.hrl").

-export([
    listen/1,
    observe_rsc_update_done/2,
    observe_rsc_delete/2,
    observe_rsc_update/3,
    observe_edge_insert/2,
    observe_edge_delete/2,
    observe_media_update_done/2,
    observe_m_config_update/2
]).

%% @doc Make the calling process receive `{zb_note, Site, Msg, IsSudo}' for the site.
-spec listen(atom()) -> ok.
listen(Site) ->
    persistent_term:put({?MODULE, Site}, self()),
    ok.

-spec observe_rsc_update_done(#rsc_update_done{}, z:context()) -> ok.
observe_rsc_update_done(Msg, Context) -> forward(Msg, Context).

-spec observe_rsc_delete(#rsc_delete{}, z:context()) -> ok.
observe_rsc_delete(Msg, Context) -> forward(Msg, Context).

%% @doc A fold observer: passes the update through unchanged, reporting that it saw it.
-spec observe_rsc_update(#rsc_update{}, {ok, map()} | {error, term()}, z:context()) -> {ok, map()} | {error, term()}.
observe_rsc_update(Msg, Acc, Context) ->
    ok = forward(Msg, Context),
    Acc.

-spec observe_edge_insert(#edge_insert{}, z:context()) -> ok.
observe_edge_insert(Msg, Context) -> forward(Msg, Context).

-spec observe_edge_delete(#edge_delete{}, z:context()) -> ok.
observe_edge_delete(Msg, Context) -> forward(Msg, Context).

-spec observe_media_update_done(#media_update_done{}, z:context()) -> ok.
observe_media_update_done(Msg, Context) -> forward(Msg, Context).

-spec observe_m_config_update(#m_config_update{}, z:context()) -> ok.
observe_m_config_update(Msg, Context) -> forward(Msg, Context).

forward(Msg, Context) ->
    Site = z_context:site(Context),
    case persistent_term:get({?MODULE, Site}, undefined) of
        Pid when is_pid(Pid) -> Pid ! {zb_note, Site, Msg, z_acl:is_sudo(Context)}, ok;
        undefined -> ok
    end.
