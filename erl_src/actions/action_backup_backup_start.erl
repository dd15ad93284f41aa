%% @doc Action backup_start: a button that starts a backup. Argument is_full_backup (default
%% false) chooses database, config and files, or database and config only. The postback is
%% refused for read-only users, users without use of mod_backup, and when manual backups are
%% switched off; otherwise it growls "started" or "already in progress".
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

-module(action_backup_backup_start).

-export([
    render_action/4,
    event/2
]).

%% Called by Zotonic's action and postback dispatch.
-ignore_xref([render_action/4, event/2]).

-include_lib("zotonic_core/include/zotonic.hrl").

%% @doc Render the action as a postback to this module.
-spec render_action(TriggerId, TargetId, Args, Context) -> {JavaScript, Context} when
    TriggerId :: binary() | undefined,
    TargetId :: binary() | undefined,
    Args :: proplists:proplist(),
    Context :: z:context(),
    JavaScript :: iodata().
render_action(TriggerId, TargetId, Args, Context) ->
    IsFull = z_convert:to_bool(proplists:get_value(is_full_backup, Args, false)),
    {JS, _Pickled} = z_render:make_postback({backup_start, IsFull}, undefined,
                                            TriggerId, TargetId, ?MODULE, Context),
    {JS, Context}.

%% @doc Handle the postback: check the user and the settings, start the backup, growl.
-spec event(#postback{}, Context) -> Context when
    Context :: z:context().
event(#postback{ message = {backup_start, IsFull} }, Context) ->
    case start(IsFull, Context) of
        ok ->
            z_render:growl(?__("Started the backup. You can keep this page open or continue working.", Context), Context);
        {error, in_progress} ->
            z_render:growl_error(?__("Could not start the backup because a backup is already in progress.", Context), Context);
        {error, env_backup} ->
            z_render:growl_error(?__("This is a standby server: backups are made on the main server.", Context), Context);
        {error, manual_backup_disabled} ->
            z_render:growl_error(?__("Sorry, manual backups are disabled.", Context), Context);
        {error, eacces} ->
            z_render:growl_error(?__("Only administrators can start a backup.", Context), Context)
    end.

%% The checks and the start, without rendering.
start(IsFull, Context) ->
    case not z_acl:is_read_only(Context) andalso z_acl:is_allowed(use, mod_backup, Context) of
        true ->
            case backup_config:allow_manual_backup(Context) of
                true -> mod_backup:start_backup(IsFull, Context);
                false -> {error, manual_backup_disabled}
            end;
        false ->
            {error, eacces}
    end.
