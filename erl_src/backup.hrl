%% @doc Shared definitions of mod_backup.
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

%% Values of the daily_dump configuration.
-define(BACKUP_NONE, 0).
-define(BACKUP_ALL, 1).
-define(BACKUP_DB, 2).

%% MQTT topic for backup status and progress.
-define(BACKUP_TOPIC, <<"model/backup/event/backup">>).

%% Name of the index of the backup sets, in the backup directory.
-define(BACKUP_INDEX, <<"backup.json">>).
