%% @doc The edge log (backup_edge_log: every inserted and deleted edge) and the medium log
%% (backup_medium_log: every medium record a resource had, known by its creation date), from
%% which a revert restores a resource's connections and file.
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

-module(backup_revision_log).

-export([
    edge/5,
    medium/4,
    medium_delete_check/2
]).

-include_lib("zotonic_core/include/zotonic.hrl").

%% @doc Log an inserted (IsInsert true) or deleted edge.
-spec edge(SubjectId, Predicate, ObjectId, IsInsert, Context) -> ok when
    SubjectId :: m_rsc:resource_id(),
    Predicate :: atom() | binary(),
    ObjectId :: m_rsc:resource_id(),
    IsInsert :: boolean(),
    Context :: z:context().
edge(SubjectId, Predicate, ObjectId, IsInsert, Context) ->
    _ = z_db:q("
        insert into backup_edge_log (subject_id, predicate, object_id, is_insert)
        values ($1, $2, $3, $4)",
        [ SubjectId, z_convert:to_binary(Predicate), ObjectId, IsInsert ],
        Context),
    ok.

%% @doc Log a medium record of a resource. A medium record is known by its resource and
%% creation date; updates only add to it. `insert': a new record, earlier records of the
%% resource are marked deleted; `update': the record's props (inserted when not yet logged);
%% `delete': the record marked deleted (inserted when not yet logged). Props without a
%% creation date are not logged.
-spec medium(Action, RscId, Props, Context) -> ok when
    Action :: insert | update | delete,
    RscId :: m_rsc:resource_id(),
    Props :: map(),
    Context :: z:context().
medium(insert, RscId, #{ <<"created">> := Created } = Props, Context) ->
    _ = z_db:q("
        update backup_medium_log
        set medium_deleted = now()
        where rsc_id = $1
          and medium_deleted is null
          and medium_created <> $2",
        [ RscId, Created ], Context),
    _ = z_db:q("
        insert into backup_medium_log (rsc_id, props, medium_created)
        values ($1, $2, $3)
        on conflict (rsc_id, medium_created) do nothing",
        [ RscId, ?DB_PROPS(Props), Created ], Context),
    ok;
medium(update, RscId, #{ <<"created">> := Created } = Props, Context) ->
    _ = z_db:q("
        insert into backup_medium_log (rsc_id, props, medium_created)
        values ($1, $2, $3)
        on conflict (rsc_id, medium_created) do update
        set props = excluded.props",
        [ RscId, ?DB_PROPS(Props), Created ], Context),
    ok;
medium(delete, RscId, #{ <<"created">> := Created } = Props, Context) ->
    _ = z_db:q("
        insert into backup_medium_log (rsc_id, props, medium_created, medium_deleted)
        values ($1, $2, $3, now())
        on conflict (rsc_id, medium_created) do update
        set medium_deleted = excluded.medium_deleted",
        [ RscId, ?DB_PROPS(Props), Created ], Context),
    ok;
medium(_Action, _RscId, _Props, _Context) ->
    ok.

%% @doc Before a resource is deleted: make sure its medium record is in the medium log (media
%% made before mod_backup was enabled were never logged).
-spec medium_delete_check(Id, Context) -> ok when
    Id :: m_rsc:resource_id(),
    Context :: z:context().
medium_delete_check(Id, Context) ->
    case m_media:get(Id, Context) of
        #{ <<"created">> := Created } = Medium ->
            case z_db:q1("
                select count(*)
                from backup_medium_log
                where rsc_id = $1
                  and medium_created = $2",
                [ Id, Created ], Context)
            of
                0 -> medium(delete, Id, Medium, Context);
                _ -> ok
            end;
        _ ->
            ok
    end.
