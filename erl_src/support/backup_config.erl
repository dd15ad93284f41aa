%% @doc Configuration of mod_backup: the m_config keys of the module, with the application
%% environment of zotonic_mod_backup as fallback. When the app env key is_config_locked is
%% true, the app env wins for the settings an operator wants to control node-wide (daily dump,
%% encryption, manual backups and downloads); the admin then shows them read-only.
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

-module(backup_config).

-export([
    is_config_locked/0,
    is_filestore_enabled/1,
    daily_dump/1,
    admin_panel/1,
    allow_manual_backup/1,
    allow_backup_download/1,
    encrypt_backups/1,
    encrypt_password/1,
    is_encrypting/1,
    retention_months/1,
    user_retention_days/1,
    deleted_user_retention_days/1
]).

-include_lib("zotonic_core/include/zotonic.hrl").
-include_lib("zotonic_core/include/zotonic_file.hrl").
-include("../backup.hrl").

-define(DEFAULT_RETENTION_MONTHS, 18).
-define(DEFAULT_USER_RETENTION_DAYS, 90).
-define(DEFAULT_USER_DELETION_RETENTION_DAYS, 30).

%% @doc True when the node-wide application environment overrules the site's settings.
-spec is_config_locked() -> boolean().
is_config_locked() ->
    z_convert:to_bool(app_env(is_config_locked)).

%% @doc A cloud filestore takes the backups when it has credentials for the backup path.
-spec is_filestore_enabled(Context) -> boolean() when
    Context :: z:context().
is_filestore_enabled(Context) ->
    Lookup = #filestore_credentials_lookup{ path = <<"backup/backup.json">> },
    case z_notifier:first(Lookup, Context) of
        {ok, #filestore_credentials{}} -> true;
        _ -> false
    end.

%% @doc The kind of nightly backup: none, everything, or only database and config. With a
%% cloud filestore the media files live in the cloud, so "everything" means database only.
-spec daily_dump(Context) -> Kind when
    Context :: z:context(),
    Kind :: ?BACKUP_NONE | ?BACKUP_ALL | ?BACKUP_DB.
daily_dump(Context) ->
    case to_binary(value(daily_dump, Context)) of
        <<"1">> ->
            case is_filestore_enabled(Context) of
                true -> ?BACKUP_DB;
                false -> ?BACKUP_ALL
            end;
        <<"2">> ->
            ?BACKUP_DB;
        _ ->
            ?BACKUP_NONE
    end.

%% @doc Show the revisions and import/export panel on the resource edit page. The site's
%% setting wins; the app env is the fallback, the default is off.
-spec admin_panel(Context) -> boolean() when
    Context :: z:context().
admin_panel(Context) ->
    case m_config:get_value(mod_backup, admin_panel, Context) of
        undefined -> z_convert:to_bool(app_env(admin_panel));
        V -> z_convert:to_bool(V)
    end.

%% @doc May a backup be started from the admin ("Start backup now")? Default true.
-spec allow_manual_backup(Context) -> boolean() when
    Context :: z:context().
allow_manual_backup(Context) ->
    bool_default_true(value(allow_manual_backup, Context)).

%% @doc May backup files be downloaded from the admin? Default true.
-spec allow_backup_download(Context) -> boolean() when
    Context :: z:context().
allow_backup_download(Context) ->
    bool_default_true(value(allow_backup_download, Context)).

%% @doc Is encryption of backup files switched on? (See is_encrypting/1 for "and possible".)
-spec encrypt_backups(Context) -> boolean() when
    Context :: z:context().
encrypt_backups(Context) ->
    z_convert:to_bool(value(encrypt_backups, Context)).

%% @doc The password for encrypting backups, empty when not set.
-spec encrypt_password(Context) -> binary() when
    Context :: z:context().
encrypt_password(Context) ->
    to_binary(value(backup_encrypt_password, Context)).

%% @doc Will a backup made now be encrypted: switched on and a password present.
-spec is_encrypting(Context) -> boolean() when
    Context :: z:context().
is_encrypting(Context) ->
    encrypt_backups(Context) andalso encrypt_password(Context) =/= <<>>.

%% @doc Months to keep revisions, at least 1.
-spec retention_months(Context) -> Months when
    Context :: z:context(),
    Months :: pos_integer().
retention_months(Context) ->
    positive_config(revision_retention_months, ?DEFAULT_RETENTION_MONTHS, Context).

%% @doc Days to keep revisions of resources with personal data, at least 1.
-spec user_retention_days(Context) -> Days when
    Context :: z:context(),
    Days :: pos_integer().
user_retention_days(Context) ->
    positive_config(user_revision_retention_days, ?DEFAULT_USER_RETENTION_DAYS, Context).

%% @doc Days to keep revisions of deleted users, 1..30; out of range falls back to 30.
-spec deleted_user_retention_days(Context) -> Days when
    Context :: z:context(),
    Days :: 1..30.
deleted_user_retention_days(Context) ->
    case int_config(user_deletion_retention_days, Context) of
        N when is_integer(N), N >= 1 -> min(N, 30);
        _ -> ?DEFAULT_USER_DELETION_RETENTION_DAYS
    end.

%% ---------------------------------------------------------------------------------------------

value(Key, Context) ->
    case is_config_locked() of
        true ->
            app_env(Key);
        false ->
            case m_config:get_value(mod_backup, Key, Context) of
                undefined -> app_env(Key);
                <<>> -> app_env(Key);
                "" -> app_env(Key);
                V -> V
            end
    end.

int_config(Key, Context) ->
    try
        z_convert:to_integer(m_config:get_value(mod_backup, Key, Context))
    catch
        _:_ -> undefined
    end.

%% The integer setting Key, at least 1; Default when it is not set (or not an integer).
positive_config(Key, Default, Context) ->
    case int_config(Key, Context) of
        undefined -> Default;
        N -> max(N, 1)
    end.

bool_default_true(undefined) -> true;
bool_default_true(<<>>) -> true;
bool_default_true("") -> true;
bool_default_true(V) -> z_convert:to_bool(V).

to_binary(undefined) -> <<>>;
to_binary(V) -> z_convert:to_binary(V).

app_env(Key) ->
    case application:get_env(zotonic_mod_backup, Key) of
        {ok, V} -> V;
        undefined -> undefined
    end.
