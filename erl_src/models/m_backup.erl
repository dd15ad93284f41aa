%% @doc Model of the backup settings and sets: m.backup.admin_panel, allow_manual_backup,
%% allow_backup_download, daily_dump, encrypt_backups, has_encrypt_password, list_backups,
%% is_backup_in_progress and directory. All but admin_panel need use of mod_backup.
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

-module(m_backup).
-behaviour(zotonic_model).

-export([
    m_get/3
]).

-include_lib("zotonic_core/include/zotonic.hrl").

%% @doc Fetch a value of the model.
-spec m_get(Path, Msg, Context) -> {ok, {Value, Rest}} | {error, Reason} when
    Path :: [ binary() ],
    Msg :: term(),
    Context :: z:context(),
    Value :: term(),
    Rest :: [ binary() ],
    Reason :: eacces | unknown_path.
m_get([ <<"admin_panel">> | Rest ], _Msg, Context) ->
    {ok, {backup_config:admin_panel(Context), Rest}};
m_get([ Key | Rest ], _Msg, Context) ->
    case lookup(Key) of
        undefined ->
            {error, unknown_path};
        Fun ->
            case z_acl:is_allowed(use, mod_backup, Context) of
                true -> {ok, {Fun(Context), Rest}};
                false -> {error, eacces}
            end
    end;
m_get([], _Msg, _Context) ->
    {error, unknown_path}.

lookup(<<"allow_manual_backup">>) -> fun backup_config:allow_manual_backup/1;
lookup(<<"allow_backup_download">>) -> fun backup_config:allow_backup_download/1;
lookup(<<"daily_dump">>) -> fun(Ctx) -> integer_to_binary(backup_config:daily_dump(Ctx)) end;
lookup(<<"encrypt_backups">>) -> fun backup_config:encrypt_backups/1;
lookup(<<"has_encrypt_password">>) -> fun(Ctx) -> backup_config:encrypt_password(Ctx) =/= <<>> end;
lookup(<<"list_backups">>) -> fun mod_backup:list_backups/1;
lookup(<<"is_backup_in_progress">>) -> fun mod_backup:backup_in_progress/1;
lookup(<<"directory">>) -> fun backup_create:dir/1;
lookup(_) -> undefined.
