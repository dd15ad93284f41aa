%% @doc Restore of a database dump (`<name>.sql.gz', plain SQL from pg_dump) into the site's
%% schema, all or nothing.
%%
%% Before the database is touched the whole dump is read once (check/1) by the engine, which
%% applies the one dump rule that `zbackup restore-check' applies too (backup_core's
%% dump::check): one complete gzip stream, pg_dump's header, the schema in a `CREATE SCHEMA'
%% near the start, pg_dump's "dump complete" line at the end. A truncated or corrupt dump is
%% refused there (`bad_dump', `no_schema'), with the site running on as before.
%%
%% The import itself is a single psql session fed by an engine job (dump::feed: the dump
%% inflated in Rust and written to psql's stdin, no bulk work in this VM), inside one
%% transaction:
%% ```
%% BEGIN;
%% DROP SCHEMA IF EXISTS "<schema>_temp" CASCADE;   -- leftovers of an earlier attempt
%% ALTER SCHEMA "<schema>" RENAME TO "<schema>_temp";
%% <the dump, which creates "<schema>" anew>
%% DROP SCHEMA "<schema>_temp" CASCADE;
%% COMMIT;
%% '''
%% psql runs with ON_ERROR_STOP, so any failing statement ends the session before COMMIT and
%% PostgreSQL rolls everything back: the half import is gone and the old schema has its name
%% again -- also when psql or this VM dies half-way, which two separate steps (rename, then
%% rename back in an error handler) cannot promise. The job writes the epilogue (with COMMIT)
%% only when the dump it streamed passed the rule again; on a damaged dump, a cancel or the
%% death of the restoring process it kills psql before psql's input ends. The site's own
%% connections are paused meanwhile (z_db_pool:pause_connections/1).
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

-module(backup_restore_db).

-export([
    restore/2
]).

%% The dump rule alone, as the suites compare it with restore-check.
-ifdef(TEST).
-export([check/1]).
-ignore_xref([check/1]).
-endif.

-include_lib("zotonic_core/include/zotonic.hrl").

%% How long psql may take for the whole import.
-define(IMPORT_TIMEOUT, 6 * 3600 * 1000).
%% How long after that the engine's job may take to confirm it stopped.
-define(STOP_GRACE, 60 * 1000).

-type check_error() :: bad_dump | no_schema | file:posix() | atom().
-export_type([check_error/0]).

%% @doc Restore the dump SqlGz (gzip, not encrypted) into the site's schema.
-spec restore(SqlGz, Context) -> ok | {error, Reason} when
    SqlGz :: file:filename_all(),
    Context :: z:context(),
    Reason :: check_error() | schema_mismatch | not_configured | database_import | term().
restore(SqlGz, Context) ->
    case check(SqlGz) of
        {ok, #{ schema := DumpSchema }} ->
            Schema = site_schema(Context),
            case DumpSchema =:= Schema of
                true ->
                    import(SqlGz, Schema, Context);
                false ->
                    ?LOG_ERROR(#{
                        in => zotonic_mod_backup,
                        text => <<"Restore refused: the dump is of another schema">>,
                        result => error,
                        reason => schema_mismatch,
                        dump_schema => DumpSchema,
                        schema => Schema
                    }),
                    {error, schema_mismatch}
            end;
        {error, Reason} = Error ->
            ?LOG_ERROR(#{
                in => zotonic_mod_backup,
                text => <<"Restore refused: the database dump is not complete or not readable">>,
                result => error,
                reason => Reason,
                file => SqlGz
            }),
            Error
    end.

%% @doc Read the whole dump and apply the dump rule (see the module doc): the schema named by
%% its `CREATE SCHEMA' and the size of the SQL.
-spec check(SqlGz) -> {ok, #{ schema := binary(), size := non_neg_integer() }} | {error, Reason} when
    SqlGz :: file:filename_all(),
    Reason :: check_error().
check(SqlGz) ->
    File = name(SqlGz),
    case backup_job:run(fun(Ref) -> backup_nif:dump_check_start(File, Ref, undefined) end, infinity) of
        {ok, #{ schema := Schema, size := Size }} ->
            {ok, #{ schema => Schema, size => Size }};
        {error, {Reason, _Info}} ->
            {error, Reason}
    end.

%% @doc The site's configured schema (Zotonic's default is public).
-spec site_schema(Context) -> binary() when
    Context :: z:context().
site_schema(Context) ->
    backup_pg:opt(dbschema, z_db_pool:get_database_options(Context), <<"public">>).

%% ---------------------------------------------------------------------------------------------
%% Import

import(SqlGz, Schema, Context) ->
    case backup_pg:psql_executable() of
        false ->
            ?LOG_ERROR(#{
                in => zotonic_mod_backup,
                text => <<"Restore not possible: psql not found">>,
                result => error,
                reason => not_configured
            }),
            {error, not_configured};
        Psql ->
            DbOpts = z_db_pool:get_database_options(Context),
            ok = z_db_pool:pause_connections(Context),
            try
                backup_pg:with_passfile(filename:dirname(z_convert:to_binary(SqlGz)), DbOpts, fun(Env) ->
                    run_psql(Psql, SqlGz, Schema, Env, DbOpts)
                end)
            after
                z_db_pool:unpause_connections(Context),
                % The schema may have been swapped: cached table columns are stale.
                z_db:flush(Context)
            end
    end.

run_psql(Psql, SqlGz, Schema, Env, DbOpts) ->
    Temp = <<Schema/binary, "_temp">>,
    Prologue = [
        "SET client_min_messages = warning;\n",
        "BEGIN;\n",
        "DROP SCHEMA IF EXISTS ", quote(Temp), " CASCADE;\n",
        "ALTER SCHEMA ", quote(Schema), " RENAME TO ", quote(Temp), ";\n"
    ],
    Epilogue = [
        "\n",
        copy_owner_and_privileges(Temp, Schema),
        "DROP SCHEMA ", quote(Temp), " CASCADE;\n",
        "COMMIT;\n",
        "\\q\n"
    ],
    Args = [
        <<"-X">>, <<"-q">>, <<"-w">>,
        <<"-v">>, <<"ON_ERROR_STOP=1">>,
        <<"-o">>, <<"/dev/null">>,
        <<"-d">>, backup_pg:opt(dbdatabase, DbOpts, <<"zotonic">>)
        | backup_pg:connection_args(DbOpts)
    ],
    Start = fun(Ref) ->
        backup_nif:dump_feed_start(name(Psql), Args, Env, name(SqlGz),
                                   iolist_to_binary(Prologue), iolist_to_binary(Epilogue),
                                   #{ timeout => ?IMPORT_TIMEOUT }, Ref, undefined)
    end,
    Started = erlang:monotonic_time(millisecond),
    case backup_job:run(Start, ?IMPORT_TIMEOUT + ?STOP_GRACE) of
        {ok, #{ output := Output }} ->
            ?LOG_NOTICE(#{
                in => zotonic_mod_backup,
                text => <<"Restored the database from the dump">>,
                result => ok,
                schema => Schema,
                file => SqlGz,
                output => Output,
                msec => erlang:monotonic_time(millisecond) - Started
            }),
            ok;
        {error, {Reason, Info}} ->
            ?LOG_ERROR(#{
                in => zotonic_mod_backup,
                text => <<"Restore of the database failed, the old schema stays in place">>,
                result => error,
                reason => database_import,
                cause => Reason,
                message => maps:get(message, Info, <<>>),
                schema => Schema,
                file => SqlGz
            }),
            {error, database_import}
    end.

%% The new schema gets the owner and privileges of the old one (the dump of Zotonic's usual
%% schema `public' has no GRANTs, as its privileges are PostgreSQL's defaults). Not being
%% allowed to is a warning, not a failed restore.
copy_owner_and_privileges(Old, New) ->
    [
        "DO $zotonic_mod_backup$\n",
        "DECLARE\n",
        "    old_ns record;\n",
        "    acl record;\n",
        "BEGIN\n",
        "    SELECT nspowner, nspacl INTO old_ns FROM pg_catalog.pg_namespace WHERE nspname = ", literal(Old), ";\n",
        "    FOR acl IN SELECT * FROM pg_catalog.aclexplode(old_ns.nspacl) LOOP\n",
        "        EXECUTE format('GRANT %s ON SCHEMA %I TO %s%s', acl.privilege_type, ", literal(New), ",\n",
        "            CASE WHEN acl.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_catalog.pg_get_userbyid(acl.grantee)) END,\n",
        "            CASE WHEN acl.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);\n",
        "    END LOOP;\n",
        "    EXECUTE format('ALTER SCHEMA %I OWNER TO %I', ", literal(New), ", pg_catalog.pg_get_userbyid(old_ns.nspowner));\n",
        "EXCEPTION WHEN OTHERS THEN\n",
        "    RAISE WARNING 'zotonic_mod_backup: owner and privileges of the schema not copied: %', SQLERRM;\n",
        "END\n",
        "$zotonic_mod_backup$;\n"
    ].

literal(Name) ->
    [$', binary:replace(Name, <<"'">>, <<"''">>, [global]), $'].

%% ---------------------------------------------------------------------------------------------
%% Helpers

quote(Name) ->
    [$", binary:replace(Name, <<"\"">>, <<"\"\"">>, [global]), $"].

name(Name) when is_binary(Name) -> Name;
name(Name) -> unicode:characters_to_binary(Name).

