%% @doc Restore of a database dump (`<name>.sql.gz', plain SQL from pg_dump) into the site's
%% schema, all or nothing.
%%
%% Before the database is touched the whole dump is read once (check/1): it must be one
%% complete gzip stream, name its schema in a `CREATE SCHEMA' near the start and end with
%% pg_dump's "dump complete" line. A truncated or corrupt dump is refused there, with the site
%% running on as before.
%%
%% The import itself is a single psql session fed by this process (the dump is inflated with
%% OTP's zlib and written to psql's stdin through a port, no shell in between), inside one
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
%% rename back in an error handler) cannot promise. The site's own connections are paused
%% meanwhile (z_db_pool:pause_connections/1).
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
    restore/2,
    check/1,
    site_schema/1
]).

-include_lib("zotonic_core/include/zotonic.hrl").

%% Bytes read from the dump per step.
-define(READ_CHUNK, 1048576).

%% The CREATE SCHEMA must be within this many bytes of the start of the SQL.
-define(HEAD_SIZE, 65536).

%% pg_dump's last comment; since 17.6 an \unrestrict line may follow it.
-define(TAIL_SIZE, 4096).
-define(DUMP_COMPLETE, <<"-- PostgreSQL database dump complete">>).

%% How long psql may take for the whole import.
-define(IMPORT_TIMEOUT, 6 * 3600 * 1000).

%% How much of psql's messages is kept for the log.
-define(MESSAGE_TAIL, 8192).

-type check_error() :: bad_dump | no_schema | file:posix().
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

%% @doc Read the whole dump: one complete gzip stream, a CREATE SCHEMA near the start, pg_dump's
%% "dump complete" line at the end. Returns the schema name and the size of the SQL.
-spec check(SqlGz) -> {ok, #{ schema := binary(), size := non_neg_integer() }} | {error, Reason} when
    SqlGz :: file:filename_all(),
    Reason :: check_error().
check(SqlGz) ->
    Acc0 = #{ head => <<>>, tail => <<>>, size => 0 },
    Fun = fun(Data, #{ head := Head, tail := Tail, size := Size }) ->
        Head1 = case byte_size(Head) < ?HEAD_SIZE of
            true -> keep_head(<<Head/binary, Data/binary>>);
            false -> Head
        end,
        {cont, #{ head => Head1, tail => keep_tail(<<Tail/binary, Data/binary>>), size => Size + byte_size(Data) }}
    end,
    case fold_gunzip(SqlGz, Fun, Acc0) of
        {ok, #{ head := Head, tail := Tail, size := Size }} ->
            case binary:match(Tail, ?DUMP_COMPLETE) of
                nomatch ->
                    {error, bad_dump};
                _ ->
                    case re:run(Head, <<"CREATE SCHEMA \"((?:[^\"]|\"\")+)\"">>, [{capture, all_but_first, binary}]) of
                        {match, [Quoted]} ->
                            {ok, #{ schema => binary:replace(Quoted, <<"\"\"">>, <<"\"">>, [global]), size => Size }};
                        nomatch ->
                            {error, no_schema}
                    end
            end;
        {error, _} = Error ->
            Error
    end.

%% @doc The site's configured schema (Zotonic's default is public).
-spec site_schema(Context) -> binary() when
    Context :: z:context().
site_schema(Context) ->
    DbOpts = z_db_pool:get_database_options(Context),
    case z_convert:to_binary(proplists:get_value(dbschema, DbOpts, <<>>)) of
        <<>> -> <<"public">>;
        S -> S
    end.

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
            PassFile = passfile_name(SqlGz),
            ok = z_db_pool:pause_connections(Context),
            try
                case backup_pg:write_passfile(PassFile, DbOpts) of
                    ok -> run_psql(Psql, SqlGz, Schema, PassFile, DbOpts);
                    {error, _} = Error -> Error
                end
            after
                _ = file:delete(PassFile),
                z_db_pool:unpause_connections(Context),
                % The schema may have been swapped: cached table columns are stale.
                z_db:flush(Context)
            end
    end.

run_psql(Psql, SqlGz, Schema, PassFile, DbOpts) ->
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
        "-X", "-q", "-w",
        "-v", "ON_ERROR_STOP=1",
        "-o", "/dev/null",
        "-d", backup_pg:opt(dbdatabase, DbOpts, <<"zotonic">>)
        | backup_pg:connection_args(DbOpts)
    ],
    Env = [
        {"PGPASSFILE", unicode:characters_to_list(z_convert:to_binary(PassFile))},
        {"PGPASSWORD", false},
        {"PGOPTIONS", false}
    ],
    % The session runs in a helper that traps exits: psql quitting on an error closes the
    % port with epipe, which must not kill the restoring process. The helper stops feeding
    % psql (and so never commits) when the restoring process dies.
    Parent = self(),
    Start = erlang:monotonic_time(millisecond),
    {Pid, MRef} = spawn_monitor(fun() ->
        process_flag(trap_exit, true),
        link(Parent),
        Session = psql_session(Parent, Psql, Args, Env, SqlGz, Prologue, Epilogue),
        unlink(Parent),
        exit({psql_result, Session})
    end),
    Result = receive
        {'DOWN', MRef, process, Pid, {psql_result, R}} -> R;
        {'DOWN', MRef, process, Pid, Other} -> {crash, Other}
    end,
    Millis = erlang:monotonic_time(millisecond) - Start,
    case Result of
        {0, true, _Output} ->
            ?LOG_NOTICE(#{
                in => zotonic_mod_backup,
                text => <<"Restored the database from the dump">>,
                result => ok,
                schema => Schema,
                file => SqlGz,
                msec => Millis
            }),
            ok;
        {Status, Sent1, Output} ->
            ?LOG_ERROR(#{
                in => zotonic_mod_backup,
                text => <<"Restore of the database failed, the old schema stays in place">>,
                result => error,
                reason => database_import,
                exit_status => Status,
                input_complete => Sent1,
                output => Output,
                schema => Schema,
                file => SqlGz
            }),
            {error, database_import};
        {crash, Crash} ->
            ?LOG_ERROR(#{
                in => zotonic_mod_backup,
                text => <<"Restore of the database crashed, the old schema stays in place">>,
                result => error,
                reason => database_import,
                crash => Crash,
                schema => Schema
            }),
            {error, database_import}
    end.

psql_session(Parent, Psql, Args, Env, SqlGz, Prologue, Epilogue) ->
    Port = open_port({spawn_executable, Psql}, [
        {args, [ unicode:characters_to_list(z_convert:to_binary(A)) || A <- Args ]},
        {env, Env},
        exit_status, binary, stderr_to_stdout, use_stdio, hide
    ]),
    try
        Sent = send(Parent, Port, Prologue)
            andalso stream_dump(Parent, Port, SqlGz)
            andalso send(Parent, Port, Epilogue),
        await_exit(Port, Sent, <<>>)
    catch
        Class:Reason:Stack ->
            kill_port(Port),
            {crash, {Class, Reason, Stack}}
    end.

%% Feed the inflated dump to psql; false when psql is gone or the dump could not be read
%% (then no COMMIT is sent and the transaction is rolled back).
stream_dump(Parent, Port, SqlGz) ->
    Fun = fun(Data, ok) ->
        case send(Parent, Port, Data) of
            true -> {cont, ok};
            false -> {stop, gone}
        end
    end,
    case fold_gunzip(SqlGz, Fun, ok) of
        {ok, ok} ->
            true;
        {stopped, gone} ->
            false;
        {error, Reason} ->
            ?LOG_ERROR(#{
                in => zotonic_mod_backup,
                text => <<"Restore: the dump could not be read while importing">>,
                result => error,
                reason => Reason,
                file => SqlGz
            }),
            false
    end.

%% Write to psql unless it already exited (on an error, with ON_ERROR_STOP) or the restoring
%% process is gone.
send(Parent, Port, Data) ->
    receive
        {Port, {exit_status, _}} = Exit ->
            self() ! Exit,
            false;
        {'EXIT', Parent, _} ->
            false
    after 0 ->
        try
            true = port_command(Port, Data),
            true
        catch
            error:badarg -> false
        end
    end.

%% With all input sent psql quits at \q; without, it is stopped (stdin closed before COMMIT).
await_exit(Port, true, Output) ->
    receive
        {Port, {data, D}} ->
            await_exit(Port, true, keep_tail(<<Output/binary, D/binary>>, ?MESSAGE_TAIL));
        {Port, {exit_status, Status}} ->
            {Status, true, Output}
    after ?IMPORT_TIMEOUT ->
        close_port(Port),
        {timeout, true, Output}
    end;
await_exit(Port, false, Output) ->
    receive
        {Port, {data, D}} ->
            await_exit(Port, false, keep_tail(<<Output/binary, D/binary>>, ?MESSAGE_TAIL));
        {Port, {exit_status, Status}} ->
            {Status, false, Output}
    after 0 ->
        % psql still runs: kill it so that it cannot read an end of input as the end of a
        % complete script; the server then rolls the open transaction back.
        kill_port(Port),
        {killed, false, collect_output(Port, Output)}
    end.

collect_output(Port, Output) ->
    receive
        {Port, {data, D}} -> collect_output(Port, keep_tail(<<Output/binary, D/binary>>, ?MESSAGE_TAIL))
    after 0 ->
        Output
    end.

kill_port(Port) ->
    case erlang:port_info(Port, os_pid) of
        {os_pid, OsPid} ->
            _ = os:cmd("kill -9 " ++ integer_to_list(OsPid)),
            receive
                {Port, {exit_status, _}} -> ok
            after 5000 ->
                close_port(Port)
            end;
        undefined ->
            ok
    end.

close_port(Port) ->
    catch port_close(Port),
    ok.

%% ---------------------------------------------------------------------------------------------
%% Gunzip

%% Inflate the file chunk by chunk into Fun(Data, Acc) -> {cont, Acc} | {stop, Acc}.
fold_gunzip(File, Fun, Acc) ->
    case file:open(File, [read, raw, binary]) of
        {ok, Fd} ->
            Z = zlib:open(),
            try
                ok = zlib:inflateInit(Z, 31),
                inflate_loop(Fd, Z, Fun, Acc)
            catch
                error:data_error -> {error, bad_dump};
                error:{need_dictionary, _} -> {error, bad_dump};
                error:stream_error -> {error, bad_dump}
            after
                zlib:close(Z),
                file:close(Fd)
            end;
        {error, _} = Error ->
            Error
    end.

%% safeInflate/2 answers {finished, _} when the input given so far is used up (not at the end
%% of the stream); inflateEnd/1 raises data_error when the stream did not end: truncated.
inflate_loop(Fd, Z, Fun, Acc) ->
    case file:read(Fd, ?READ_CHUNK) of
        {ok, Data} ->
            inflate_chunk(Fd, Z, Fun, Acc, zlib:safeInflate(Z, Data));
        eof ->
            ok = zlib:inflateEnd(Z),
            {ok, Acc};
        {error, _} = Error ->
            Error
    end.

inflate_chunk(Fd, Z, Fun, Acc, {continue, Output}) ->
    case apply_fun(Fun, Output, Acc) of
        {cont, Acc1} -> inflate_chunk(Fd, Z, Fun, Acc1, zlib:safeInflate(Z, []));
        {stop, Acc1} -> {stopped, Acc1}
    end;
inflate_chunk(Fd, Z, Fun, Acc, {finished, Output}) ->
    case apply_fun(Fun, Output, Acc) of
        {cont, Acc1} -> inflate_loop(Fd, Z, Fun, Acc1);
        {stop, Acc1} -> {stopped, Acc1}
    end;
inflate_chunk(_Fd, _Z, _Fun, _Acc, {need_dictionary, _, _}) ->
    {error, bad_dump}.

apply_fun(Fun, Output, Acc) ->
    case iolist_to_binary(Output) of
        <<>> -> {cont, Acc};
        Data -> Fun(Data, Acc)
    end.

keep_head(Bin) when byte_size(Bin) > ?HEAD_SIZE -> binary:part(Bin, 0, ?HEAD_SIZE);
keep_head(Bin) -> Bin.

keep_tail(Bin) -> keep_tail(Bin, ?TAIL_SIZE).

keep_tail(Bin, Max) when byte_size(Bin) > Max -> binary:part(Bin, byte_size(Bin) - Max, Max);
keep_tail(Bin, _Max) -> Bin.

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

passfile_name(SqlGz) ->
    Dir = filename:dirname(z_convert:to_binary(SqlGz)),
    filename:join(Dir, <<".pgpass-restore-", (integer_to_binary(erlang:unique_integer([positive])))/binary, ".tmp">>).
