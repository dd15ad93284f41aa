%% @doc The tables of the revision log, as Zotonic's mod_backup makes them: backup_revision,
%% backup_edge_log and backup_medium_log, their indexes and the trigger stamping deleted medium
%% records; and ours, backup_revision_dict (the site's compression dictionaries, see
%% backup_revision_dict). Installing again changes nothing.
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

-module(backup_revision_schema).

-export([
    install/1
]).

-include_lib("zotonic_core/include/zotonic.hrl").

%% @doc Create the tables backup_revision, backup_edge_log and backup_medium_log, their
%% indexes and the trigger stamping deleted medium records.
-spec install(Context) -> ok when
    Context :: z:context().
install(Context) ->
    Revision = ensure_table(backup_revision, ["
        create table backup_revision (
            id bigserial not null,
            type character(1) not null,
            rsc_id integer not null,
            created timestamp with time zone not null default current_timestamp,
            version integer,
            user_id integer,
            user_name character varying(80),
            filename character varying(400),
            note character varying(200),
            data_type character varying(10) not null,
            data bytea not null,
            primary key (id)
        )",
        "create index backup_revision_id_created on backup_revision (rsc_id, created)"
    ], Context),
    case {Revision, ensure_deleted_index(Context)} of
        {exists, created} ->
            % A table from before deleted-revisions were kept (as stock does).
            _ = z_pivot_rsc:insert_task(m_backup_revision, insert_deleted_revisions, <<>>, Context),
            ok;
        _ ->
            ok
    end,
    _ = ensure_table(backup_edge_log, ["
        create table backup_edge_log (
            id bigserial not null,
            subject_id integer not null,
            predicate character varying(300),
            object_id integer not null,
            is_insert boolean not null default true,
            timestamp timestamp with time zone not null default current_timestamp,
            primary key (id)
        )",
        "create index backup_edge_log_subject_id_created_key
         on backup_edge_log (subject_id, timestamp)",
        "create index backup_edge_log_object_id_created_key
         on backup_edge_log (object_id, timestamp)"
    ], Context),
    _ = ensure_table(backup_medium_log, ["
        create table backup_medium_log (
            id bigserial not null,
            rsc_id integer not null,
            props bytea not null,
            medium_created timestamp with time zone not null,
            medium_deleted timestamp with time zone default null,
            primary key (id),
            constraint backup_medium_log_rsc_id_medium_created_key unique (rsc_id, medium_created)
        )"
    ], Context),
    % The site's zstd dictionaries of revision rows (backup_revision_dict): never changed, and
    % kept while a row names its id; ids come from a sequence, so one is never given again,
    % even after its row is gone. rows and upto: the log when it was trained.
    _ = ensure_table(backup_revision_dict, ["
        create table backup_revision_dict (
            id serial not null,
            created timestamp with time zone not null default current_timestamp,
            checksum bigint not null,
            rows bigint not null default 0,
            upto bigint not null default 0,
            data bytea not null,
            primary key (id),
            constraint backup_revision_dict_id_range check (id between 1 and 16383)
        )"
    ], Context),
    _ = create_unless(z_db:function_exists("backup_medium_log_delete", Context), ["
        create or replace function backup_medium_log_delete() returns trigger as $$
        begin
            if (tg_op = 'DELETE') then
                update backup_medium_log
                set medium_deleted = now()
                where rsc_id = old.id
                  and medium_deleted is null;
            end if;
            return null;
        end;
        $$ language plpgsql",
        "create trigger backup_medium_log_delete_trigger after delete
         on medium for each row execute procedure backup_medium_log_delete()"
    ], Context),
    z_db:flush(Context),
    ok.

ensure_deleted_index(Context) ->
    create_unless(z_db:key_exists(backup_revision, backup_revision_created_deleted_key, Context), ["
        create index backup_revision_created_deleted_key
        on backup_revision (created, type)
        where type = 'D'"
    ], Context).

ensure_table(Table, Sqls, Context) ->
    create_unless(z_db:table_exists(Table, Context), Sqls, Context).

%% Runs the statements Sqls, in order, unless what they create Exists already.
create_unless(true, _Sqls, _Context) ->
    exists;
create_unless(false, Sqls, Context) ->
    lists:foreach(fun(Sql) -> _ = z_db:q(Sql, Context) end, Sqls),
    created.
