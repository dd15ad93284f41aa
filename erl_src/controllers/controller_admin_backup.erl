%% @doc The admin page of mod_backup (/admin/backup): the backup sets with their downloads, the
%% "Start backup now" buttons, the nightly and encryption settings and the revisions panel
%% setting. Also receives the upload of a per-resource backup file (restore of a page).
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

-module(controller_admin_backup).

-export([
    service_available/1,
    is_authorized/1,
    process/4,
    event/2
]).

%% Called by Zotonic's controller dispatch (cowmachine) and its postbacks.
-ignore_xref([service_available/1, is_authorized/1, process/4, event/2]).

-include_lib("zotonic_core/include/zotonic.hrl").

%% @doc Never cached, never indexed.
-spec service_available(Context) -> {true, Context} when
    Context :: z:context().
service_available(Context) ->
    Context1 = z_context:set_noindex_header(Context),
    {true, z_context:set_nocache_headers(Context1)}.

%% @doc Only for users who may use mod_backup.
-spec is_authorized(Context) -> {boolean() | term(), Context} when
    Context :: z:context().
is_authorized(Context) ->
    z_controller_helper:is_authorized([ {use, mod_backup} ], Context).

%% @doc Render admin_backup.tpl.
-spec process(Method, AcceptedCT, ProvidedCT, Context) -> {iodata(), Context} when
    Method :: binary(),
    AcceptedCT :: term(),
    ProvidedCT :: term(),
    Context :: z:context().
process(_Method, _AcceptedCT, _ProvidedCT, Context) ->
    Html = z_template:render(<<"admin_backup.tpl">>, page_vars(Context), Context),
    z_context:output(Html, Context).

%% The template variables of the page. backup_config is the map of
%% backup_create:command_configuration/0 plus ok => true, or db_dump => false when pg_dump is
%% missing -- the template then explains what to install.
page_vars(Context) ->
    Config = case backup_create:command_configuration() of
        {ok, Cfg} -> Cfg#{ ok => true };
        {error, _} -> #{ db_dump => false, archive => true }
    end,
    [
        {is_config_locked, backup_config:is_config_locked()},
        {is_filestore_enabled, backup_config:is_filestore_enabled(Context)},
        {page_admin_backup, true},
        {backup_config, Config},
        {backup_in_progress, mod_backup:backup_in_progress(Context)}
    ].

%% @doc Postbacks of the settings, and the submit of a per-resource backup file.
-spec event(Event, Context) -> Context when
    Event :: #postback{} | #submit{},
    Context :: z:context().
event(#postback{ message = config_backup_panel }, Context) ->
    set_config(admin_panel, Context);
event(#postback{ message = config_encrypt_backups }, Context) ->
    set_config_unless_locked(encrypt_backups, Context);
event(#postback{ message = config_backup_daily }, Context) ->
    set_config_unless_locked(daily_dump, Context);
event(#submit{ message = {restore, Args} }, Context) ->
    {id, Id} = proplists:lookup(id, Args),
    case z_acl:rsc_editable(Id, Context) of
        true -> upload_rsc(Id, Context);
        false -> z_render:growl_error(?__("Sorry, you don't have permission to change this page.", Context), Context)
    end.

%% ---------------------------------------------------------------------------------------------

upload_rsc(Id, Context) ->
    #upload{ filename = Filename, tmpfile = TmpFile } = z_context:get_q_validated(<<"file">>, Context),
    Format = case filename:extension(z_convert:to_binary(Filename)) of
        <<".json">> -> json;
        _ -> bert
    end,
    Result = case file:read_file(TmpFile) of
        {ok, Data} ->
            try z_notifier:first(#rsc_upload{ id = Id, format = Format, data = Data }, Context)
            catch _:Reason -> {error, Reason}
            end;
        {error, _} = Error ->
            Error
    end,
    case Result of
        {ok, NewId} ->
            z_render:wire([
                {dialog_close, []},
                {redirect, [ {dispatch, admin_edit_rsc}, {id, NewId} ]}
            ], Context);
        undefined ->
            z_render:growl_error(?__("Sorry, there is no module that can import this.", Context), Context);
        {error, badarg} ->
            z_render:growl_error(?__("Sorry, this is not a backup file or it is corrupted.", Context), Context);
        {error, R} ->
            z_render:growl_error(upload_error(R, Context), Context)
    end.

upload_error(duplicate_name, Context) -> ?__("There is already a page with this name.", Context);
upload_error(eacces, Context) -> ?__("You don't have permission to create this page.", Context);
upload_error(file_not_allowed, Context) -> ?__("You don't have the proper permissions to upload this type of file.", Context);
upload_error(sizelimit, Context) -> ?__("This file is too large.", Context);
upload_error(Reason, Context) ->
    ?LOG_WARNING(#{
        in => zotonic_mod_backup,
        text => <<"Upload of a page backup failed">>,
        result => error,
        reason => Reason
    }),
    ?__("Error creating the page.", Context).

set_config_unless_locked(Key, Context) ->
    case backup_config:is_config_locked() of
        true -> z_render:growl_error(?__("Sorry, a global Zotonic configuration is set and cannot be changed.", Context), Context);
        false -> set_config(Key, Context)
    end.

set_config(Key, Context) ->
    case z_acl:is_admin_editable(Context) of
        true ->
            Value = z_context:get_q(<<"triggervalue">>, Context),
            ok = m_config:set_value(mod_backup, Key, Value, Context),
            z_render:growl(?__("Changed configuration.", Context), Context);
        false ->
            z_render:growl_error(?__("Sorry, you have no permission to change the configuration.", Context), Context)
    end.
