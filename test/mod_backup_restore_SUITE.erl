%% Size: the cases share a site pair and its sets; each is short and named for what it proves.
%%
%% @doc Restores by mod_backup in the test host, against the real PostgreSQL server: a round
%% trip of all four parts (plain and encrypted), failed imports that must leave the live schema
%% as it was, hostile and corrupt media archives that must change nothing, and a standby site
%% that follows a production site through a shared filestore dir.
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

-module(mod_backup_restore_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").
-include_lib("kernel/include/file.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1, init_per_testcase/2, end_per_testcase/2]).
-export([
    round_trip_all_parts/1,
    round_trip_encrypted/1,
    wrong_password_changes_nothing/1,
    forged_encrypted_file_is_refused_by_its_hmac/1,
    restore_errors/1,
    truncated_dump_keeps_schema/1,
    unfinished_sql_keeps_schema/1,
    failing_import_rolls_back/1,
    schema_mismatch_refused/1,
    restore_check_and_restore_agree_on_every_broken_dump/1,
    hostile_absolute_path/1,
    hostile_dotdot/1,
    hostile_symlink/1,
    flipped_byte_is_bad_archive/1,
    files_restore_keeps_files_added_after_the_backup/1,
    files_restore_failing_midway_leaves_the_archive_dir_as_it_was/1,
    stock_restore_functions/1,
    standby_follows_production/1,
    standby_drops_bad_hash/1,
    standby_restores_an_encrypted_set_without_leftovers/1
]).

-define(SITE, bckrestore).
-define(PROD, bckprod).
-define(STANDBY, bckstandby).
-define(TOPIC, <<"model/backup/event/backup">>).

suite() ->
    [ {timetrap, {minutes, 15}} ].

all() ->
    [
        round_trip_all_parts,
        round_trip_encrypted,
        wrong_password_changes_nothing,
        forged_encrypted_file_is_refused_by_its_hmac,
        restore_errors,
        truncated_dump_keeps_schema,
        unfinished_sql_keeps_schema,
        failing_import_rolls_back,
        schema_mismatch_refused,
        restore_check_and_restore_agree_on_every_broken_dump,
        hostile_absolute_path,
        hostile_dotdot,
        hostile_symlink,
        flipped_byte_is_bad_archive,
        files_restore_keeps_files_added_after_the_backup,
        files_restore_failing_midway_leaves_the_archive_dir_as_it_was,
        stock_restore_functions,
        standby_follows_production,
        standby_drops_bad_hash,
        standby_restores_an_encrypted_set_without_leftovers
    ].

init_per_suite(Config) ->
    {ok, Context} = zotonic_host:start_site(?SITE, #{}),
    ok = populate_database(Context, 100000),
    Archive = z_path:media_archive(Context),
    ok = make_media_tree(Archive),
    [ {context, Context}, {archive, Archive} | Config ].

end_per_suite(_Config) ->
    zotonic_host:stop_site(?SITE),
    ok.

init_per_testcase(Case, Config) when Case =:= standby_follows_production; Case =:= standby_drops_bad_hash;
                                    Case =:= standby_restores_an_encrypted_set_without_leftovers ->
    Root = filename:join(["/tmp", "zotonic_host", "standby-" ++ integer_to_list(erlang:unique_integer([positive]))]),
    {ok, Prod} = zotonic_host:start_site(?PROD, #{ dir => Root }),
    {ok, Standby} = zotonic_host:start_site(?STANDBY, #{ dir => Root, environment => backup }),
    ok = zotonic_host:filestore(?PROD, true),
    ok = zotonic_host:filestore(?STANDBY, true),
    ?assertEqual(zotonic_host:filestore_dir(?PROD), zotonic_host:filestore_dir(?STANDBY)),
    ok = populate_database(Prod, 20000),
    [ {prod, Prod}, {standby, Standby}, {root, Root} | Config ];
init_per_testcase(_Case, Config) ->
    Dir = zb_test_util:fresh_case(?config(context, Config), [{encrypt_backups, <<"false">>}]),
    [ {dir, Dir} | Config ].

end_per_testcase(Case, Config) when Case =:= standby_follows_production; Case =:= standby_drops_bad_hash;
                                   Case =:= standby_restores_an_encrypted_set_without_leftovers ->
    zotonic_host:stop_site(?STANDBY),
    zotonic_host:stop_site(?PROD),
    _ = file:del_dir_r(?config(root, Config)),
    ok;
end_per_testcase(_Case, Config) ->
    ok = zb_test_util:end_case(Config).

%% ---------------------------------------------------------------------------------------------
%% Round trips

%% Back up, change rows, files and config, restore all four parts: everything as it was.
round_trip_all_parts(Config) ->
    Context = ?config(context, Config),
    Name = make_backup(Context),
    Before = snapshot(?SITE, Context),
    mutate(?SITE, Context),
    ?assertNotEqual(Before, snapshot(?SITE, Context)),
    Old = whereis(server(?SITE)),
    {Micros, ok} = timer:tc(fun() ->
        mod_backup:restore_backup(Name, [database, files, security, config], Context)
    end),
    ct:pal("restore of database (~s), files, security, config: ~.2f s",
           [human_size(filename:join(?config(dir, Config), <<Name/binary, ".sql.gz">>)), Micros / 1.0e6]),
    ok = wait_restarted(?SITE, Old),
    After = snapshot(?SITE, Context),
    assert_same(with_added_file(Before, Context), After),
    ok = no_leftovers(Context),
    % For the report: the same dump the stock way, gunzip | psql into a scratch database.
    SqlGz = filename:join(?config(dir, Config), <<Name/binary, ".sql.gz">>),
    ct:pal("the same dump by sh -c 'gunzip -c | psql' into an empty database: ~.2f s",
           [stock_import_seconds(SqlGz)]).

%% The same with encryption on: the .enc files are decrypted to temp files that are gone
%% afterwards.
round_trip_encrypted(Config) ->
    Context = ?config(context, Config),
    ok = m_config:set_value(mod_backup, encrypt_backups, <<"true">>, Context),
    ok = wait_for(fun() -> backup_config:encrypt_password(Context) =/= <<>> end),
    Name = make_backup(Context),
    #{ Name := Entry } = backup_json_index:read(?config(dir, Config)),
    ?assertEqual(true, maps:get(<<"is_encrypted">>, Entry)),
    ?assertEqual(<<Name/binary, ".sql.gz.enc">>, maps:get(<<"database">>, Entry)),
    Before = snapshot(?SITE, Context),
    mutate(?SITE, Context),
    Old = whereis(server(?SITE)),
    ok = mod_backup:restore_backup(Name, [database, files, security, config], Context),
    ok = wait_restarted(?SITE, Old),
    assert_same(with_added_file(Before, Context), snapshot(?SITE, Context)),
    ok = no_leftovers(Context),
    ok = m_config:set_value(mod_backup, encrypt_backups, <<"false">>, Context).

%% An encrypted set and another password: refused before anything is written.
wrong_password_changes_nothing(Config) ->
    Context = ?config(context, Config),
    ok = m_config:set_value(mod_backup, encrypt_backups, <<"true">>, Context),
    ok = wait_for(fun() -> backup_config:encrypt_password(Context) =/= <<>> end),
    Name = make_backup(Context),
    Password = backup_config:encrypt_password(Context),
    ok = m_config:set_value(mod_backup, backup_encrypt_password, <<"not-the-password">>, Context),
    Before = snapshot(?SITE, Context),
    ?assertEqual({error, wrong_password},
                 mod_backup:restore_backup(Name, [database, files, security, config], Context)),
    assert_same(Before, snapshot(?SITE, Context)),
    ok = no_leftovers(Context),
    ok = m_config:set_value(mod_backup, backup_encrypt_password, Password, Context),
    ok = m_config:set_value(mod_backup, encrypt_backups, <<"false">>, Context).

%% Issue 14: backup.json keeps an HMAC-SHA256 of each encrypted part (`<part>_hmac', a key the
%% stock module ignores). A file replaced by another one encrypted with the same password (its
%% sha256 rewritten too, as anyone who can write the backup dir could) is refused before it is
%% decrypted; without recorded HMACs (a stock set) the restore goes on, unauthenticated.
forged_encrypted_file_is_refused_by_its_hmac(Config) ->
    Context = ?config(context, Config),
    Dir = ?config(dir, Config),
    ok = m_config:set_value(mod_backup, encrypt_backups, <<"true">>, Context),
    ok = wait_for(fun() -> backup_config:encrypt_password(Context) =/= <<>> end),
    Password = backup_config:encrypt_password(Context),
    Name = make_backup(Context),
    #{ Name := Entry } = backup_json_index:read(Dir),
    lists:foreach(
        fun(Part) ->
            File = maps:get(Part, Entry),
            Hmac = maps:get(<<Part/binary, "_hmac">>, Entry),
            ?assertMatch(<<_:64/binary>>, Hmac),
            ?assertEqual({ok, Hmac}, backup_file_crypto:file_hmac(filename:join(Dir, File), Password))
        end,
        [<<"database">>, <<"config_files">>, <<"files">>]),
    % Forge the dump: decrypt, re-encrypt (new salt), put it in place with its new sha256.
    DbFile = filename:join(Dir, maps:get(<<"database">>, Entry)),
    Plain = filename:join(Dir, "forged.sql.gz.tmp"),
    {ok, _} = backup_file_crypto:decrypt_file(DbFile, Plain, Password),
    {ok, Genuine} = file:read_file(DbFile),
    {ok, #{ sha256 := ForgedHash }} = backup_file_crypto:encrypt_file(Plain, DbFile, Password),
    ok = file:delete(Plain),
    {ok, _} = backup_json_index:update(Dir, fun(Index) ->
        Index#{ Name => Entry#{ <<"database_hash">> => ForgedHash } }
    end),
    Before = snapshot(?SITE, Context),
    ?assertEqual({error, hmac_mismatch},
                 mod_backup:restore_backup(Name, [database, files, security, config], Context)),
    assert_same(Before, snapshot(?SITE, Context)),
    ok = no_leftovers(Context),
    % A set without HMACs (as the stock module writes them) is restored, with a warning.
    ok = file:write_file(DbFile, Genuine),
    Stock = maps:without([<<"database_hmac">>, <<"config_files_hmac">>, <<"files_hmac">>], Entry),
    {ok, _} = backup_json_index:update(Dir, fun(Index) -> Index#{ Name => Stock } end),
    Old = whereis(server(?SITE)),
    ok = mod_backup:restore_backup(Name, [database], Context),
    ok = wait_restarted(?SITE, Old),
    ok = no_leftovers(Context),
    ok = m_config:set_value(mod_backup, encrypt_backups, <<"false">>, Context).

%% unknown_backup, incomplete, in_progress; a part the set does not have is skipped.
restore_errors(Config) ->
    Context = ?config(context, Config),
    Dir = ?config(dir, Config),
    ?assertEqual({error, unknown_backup}, mod_backup:restore_backup(<<"nosuchset">>, [database], Context)),
    ?assertEqual({error, unknown_backup}, mod_backup:restore_backup(Context)),
    Name = make_backup(Context),
    Before = snapshot(?SITE, Context),
    % A missing file, and an empty one.
    Files = filename:join(Dir, <<Name/binary, ".tar.gz">>),
    {ok, FilesBin} = file:read_file(Files),
    ok = file:delete(Files),
    ?assertEqual({error, incomplete}, mod_backup:restore_backup(Name, [database, files], Context)),
    ok = file:write_file(Files, <<>>),
    ?assertEqual({error, incomplete}, mod_backup:restore_backup(recent, [files], Context)),
    ok = file:write_file(Files, FilesBin),
    % A backup running.
    ok = mod_backup:start_backup(false, Context),
    ?assertEqual({error, in_progress}, mod_backup:restore_backup(Name, [database], Context)),
    ok = zb_test_util:wait_idle(Context),
    % The same name again, now without a media archive: restoring only files is nothing to
    % do. Through the command line's notification.
    ?assertMatch([ #{ name := Name, is_files_present := false } ], mod_backup:list_backups(Context)),
    ?assertEqual(ok, z_notifier:first({backup_restore, Name, [files]}, Context)),
    assert_same(Before, snapshot(?SITE, Context)),
    ok = no_leftovers(Context).

%% ---------------------------------------------------------------------------------------------
%% Media files: merged as the stock module's extract does

%% A files restore puts back the backup's files (changed and deleted ones) and keeps a file
%% uploaded after the backup.
files_restore_keeps_files_added_after_the_backup(Config) ->
    Context = ?config(context, Config),
    Archive = z_path:media_archive(Context),
    Name = make_backup(Context),
    Before = tree(Archive),
    Upload = filename:join([Archive, "2024", "01", "uploaded-after-backup.jpg"]),
    ok = file:write_file(Upload, <<"a new upload">>),
    [First | _] = lists:sort(filelib:wildcard(filename:join([Archive, "2024", "*", "img-*"]))),
    ok = file:delete(First),
    ok = file:write_file(filename:join(Archive, "top.txt"), <<"changed\n">>),
    ok = mod_backup:restore_backup(Name, [files], Context),
    Expected = lists:sort([ {"2024/01/uploaded-after-backup.jpg", crypto:hash(sha256, <<"a new upload">>)} | Before ]),
    ?assertEqual(Expected, tree(Archive)),
    ok = no_leftovers(Context).

%% A move that fails half-way through the merge (here: a subdir is another filesystem, so
%% rename gives EXDEV after other files were already replaced): every change is undone and the
%% archive dir is exactly as before the restore.
files_restore_failing_midway_leaves_the_archive_dir_as_it_was(Config) ->
    Context = ?config(context, Config),
    Archive = z_path:media_archive(Context),
    Name = make_backup(Context),
    ok = file:write_file(filename:join(Archive, "top.txt"), <<"changed\n">>),
    [First | _] = lists:sort(filelib:wildcard(filename:join([Archive, "2024", "01", "img-*"]))),
    ok = file:write_file(First, <<"edited">>),
    Mount = filename:join([Archive, "2024", "03"]),
    {ok, Saved} = file:list_dir(Mount),
    SavedFiles = [ {F, element(2, file:read_file(filename:join(Mount, F)))} || F <- Saved ],
    ok = file:del_dir_r(Mount),
    ok = file:make_dir(Mount),
    {0, _} = zb_test_cmd:cmd(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", Mount]),
    try
        [ ok = file:write_file(filename:join(Mount, F), D) || {F, D} <- SavedFiles ],
        ok = file:write_file(filename:join(Mount, "edited-in-03.txt"), <<"x">>),
        Before = tree(Archive),
        ?assertMatch({error, _}, mod_backup:restore_backup(Name, [files], Context)),
        ?assertEqual(Before, tree(Archive)),
        ok = no_leftovers(Context)
    after
        zb_test_cmd:cmd(["umount", Mount])
    end,
    % Without the obstacle the same restore works.
    ok = mod_backup:restore_backup(Name, [files], Context),
    ?assertEqual({ok, <<"top level file\n">>}, file:read_file(filename:join(Archive, "top.txt"))).

%% The stock module's restore functions: a set by name or by its entry, the newest set,
%% unknown sets and no sets at all.
stock_restore_functions(Config) ->
    Context = ?config(context, Config),
    Dir = ?config(dir, Config),
    Archive = z_path:media_archive(Context),
    ?assertEqual({error, nobackup}, backup_restore:restore_newest_backup(Context)),
    ?assertEqual({error, unknown_backup}, backup_restore:restore_backup(undefined, Context)),
    ?assertEqual({error, unknown_backup}, backup_restore:restore_backup(<<"nosuchset">>, [files], Context)),
    Name = make_backup(Context),
    Top = filename:join(Archive, "top.txt"),
    {ok, TopData} = file:read_file(Top),
    Reset = fun() -> ok = file:write_file(Top, <<"changed">>) end,
    Reset(),
    ok = backup_restore:restore_backup(Name, [files], Context),
    ?assertEqual({ok, TopData}, file:read_file(Top)),
    Reset(),
    #{ Name := Entry } = backup_json_index:read(Dir),
    ok = backup_restore:restore_backup(Entry, [files], Context),
    ?assertEqual({ok, TopData}, file:read_file(Top)),
    Reset(),
    ok = backup_restore:restore_newest_backup([files], Context),
    ?assertEqual({ok, TopData}, file:read_file(Top)),
    ok = no_leftovers(Context).

%% ---------------------------------------------------------------------------------------------
%% Failed imports

%% A dump cut in the middle is refused before the database is touched.
truncated_dump_keeps_schema(Config) ->
    broken_dump_keeps_schema(Config, bad_dump, fun(Gz) -> binary:part(Gz, 0, byte_size(Gz) div 2) end).

%% A complete gzip stream whose SQL stops half-way (no "dump complete" line) is refused too.
unfinished_sql_keeps_schema(Config) ->
    broken_dump_keeps_schema(Config, bad_dump, fun(Gz) ->
        Sql = zlib:gunzip(Gz),
        zlib:gzip(binary:part(Sql, 0, byte_size(Sql) div 2))
    end).

%% A statement failing in the middle of the import: psql stops, the transaction is rolled
%% back, the half import is gone and the old schema is back under its name.
failing_import_rolls_back(Config) ->
    broken_dump_keeps_schema(Config, database_import, fun(Gz) ->
        Sql = zlib:gunzip(Gz),
        % After the first COPY block: the new schema and some rows exist when it fails.
        {Pos, _} = binary:match(Sql, <<"\n\\.\n">>),
        Cut = Pos + 4,
        Bad = <<"SELECT * FROM \"no_such_table_at_all\";\n">>,
        zlib:gzip([binary:part(Sql, 0, Cut), Bad, binary:part(Sql, Cut, byte_size(Sql) - Cut)])
    end).

%% A dump of another schema is refused.
schema_mismatch_refused(Config) ->
    broken_dump_keeps_schema(Config, schema_mismatch, fun(Gz) ->
        zlib:gzip(binary:replace(zlib:gunzip(Gz), <<"CREATE SCHEMA \"public\"">>, <<"CREATE SCHEMA \"other\"">>))
    end).

%% A new set whose dump Break rewrites (gzip bytes in, gzip bytes out): restoring its database
%% fails with Reason and leaves the site as it was.
broken_dump_keeps_schema(Config, Reason, Break) ->
    Context = ?config(context, Config),
    Name = make_backup(Context),
    SqlGz = filename:join(?config(dir, Config), <<Name/binary, ".sql.gz">>),
    {ok, Bin} = file:read_file(SqlGz),
    ok = file:write_file(SqlGz, Break(Bin)),
    failed_restore_keeps_schema(Name, Reason, Context).

failed_restore_keeps_schema(Name, Reason, Context) ->
    Before = snapshot(?SITE, Context),
    Old = whereis(server(?SITE)),
    ?assertEqual({error, Reason}, mod_backup:restore_backup(Name, [database], Context)),
    assert_same(Before, snapshot(?SITE, Context)),
    % The site reads its own tables through its pool (unpaused), and was not restarted.
    ?assert(is_integer(z_db:q1("select count(*) from restore_test_rows", Context))),
    ?assertEqual(Old, whereis(server(?SITE))),
    ?assertEqual([<<"public">>], schemas(?SITE)),
    ok = no_leftovers(Context).

%% `zbackup restore-check' and the restore apply one dump rule: on the same broken dumps they
%% reach the same verdict (the CLI's reason is the restore's error), and both pass the good one.
restore_check_and_restore_agree_on_every_broken_dump(Config) ->
    Context = ?config(context, Config),
    Dir = ?config(dir, Config),
    Name = make_backup(Context),
    SqlGz = filename:join(Dir, <<Name/binary, ".sql.gz">>),
    {ok, Good} = file:read_file(SqlGz),
    Sql = zlib:gunzip(Good),
    Flipped = flip(Good, byte_size(Good) div 2),
    Cases = [
        {truncated_gzip, binary:part(Good, 0, byte_size(Good) div 2), bad_dump},
        {gzip_trailer_missing, binary:part(Good, 0, byte_size(Good) - 8), bad_dump},
        {flipped_byte, Flipped, bad_dump},
        {trailing_junk, <<Good/binary, "junk">>, bad_dump},
        {gzip_garbage, <<31, 139, 8, 0, "not a deflate stream at all">>, bad_dump},
        {not_gzipped, Sql, bad_dump},
        {empty_sql, zlib:gzip(<<>>), bad_dump},
        {unfinished_sql, zlib:gzip(binary:part(Sql, 0, byte_size(Sql) div 2)), bad_dump},
        {no_header, zlib:gzip(binary:replace(Sql, <<"-- PostgreSQL database dump\n">>, <<>>)), bad_dump},
        {no_schema, zlib:gzip(binary:replace(Sql, <<"CREATE SCHEMA \"public\";">>, <<>>)), no_schema}
    ],
    CheckDir = filename:join(?config(priv_dir, Config), "restore-check"),
    ok = filelib:ensure_path(CheckDir),
    Verdicts = [ begin
                     ok = file:write_file(SqlGz, Bytes),
                     Copy = filename:join(CheckDir, <<Name/binary, ".sql.gz">>),
                     ok = file:write_file(Copy, Bytes),
                     {Case, Expected, restore_verdict(Name, Context), restore_check_verdict(Copy)}
                 end || {Case, Bytes, Expected} <- Cases ],
    ct:pal("verdicts (case, expected, restore, restore-check): ~p", [Verdicts]),
    [ ?assertEqual({Case, Expected, Expected}, {Case, Restore, Check})
      || {Case, Expected, Restore, Check} <- Verdicts ],
    % The good dump: the restore's check and restore-check both pass it.
    ok = file:write_file(SqlGz, Good),
    ok = file:write_file(filename:join(CheckDir, <<Name/binary, ".sql.gz">>), Good),
    ?assertMatch({ok, #{ schema := <<"public">> }}, backup_restore_db:check(SqlGz)),
    ?assertEqual(ok, restore_check_verdict(filename:join(CheckDir, <<Name/binary, ".sql.gz">>))),
    ?assertEqual([<<"public">>], schemas(?SITE)),
    ok = no_leftovers(Context).

restore_verdict(Name, Context) ->
    case mod_backup:restore_backup(Name, [database], Context) of
        ok -> ok;
        {error, Reason} -> Reason
    end.

%% The CLI's verdict on one file: ok, or the reason of its FAIL line.
restore_check_verdict(File) ->
    case zb_test_cmd:cmd([zb_test_cmd:zbackup(), "restore-check", File]) of
        {0, _} ->
            ok;
        {1, Out} ->
            case re:run(Out, "FAIL +\\S+ +([a-z_]+):", [{capture, all_but_first, binary}]) of
                {match, [Reason]} -> binary_to_atom(Reason, utf8);
                nomatch -> {unparsed, Out}
            end;
        Other ->
            {unexpected, Other}
    end.

flip(Bin, Pos) ->
    <<Head:Pos/binary, B, Rest/binary>> = Bin,
    <<Head/binary, (B bxor 16#5a), Rest/binary>>.

%% ---------------------------------------------------------------------------------------------
%% Hostile and corrupt media archives

hostile_absolute_path(Config) ->
    Outside = outside_dir(Config),
    Target = filename:join(Outside, "pwned"),
    hostile(Config, [
        {file, "./2024/ok.txt", "fine"},
        {file, Target, "owned"}
    ], [Target]).

hostile_dotdot(Config) ->
    Archive = ?config(archive, Config),
    Files = filename:dirname(Archive),
    hostile(Config, [
        {file, "./2024/ok.txt", "fine"},
        {file, "./2024/../../pwned-dotdot", "owned"}
    ], [filename:join(Files, "pwned-dotdot"), filename:join(filename:dirname(Files), "pwned-dotdot")]).

hostile_symlink(Config) ->
    Outside = outside_dir(Config),
    hostile(Config, [
        {file, "./2024/ok.txt", "fine"},
        {symlink, "./escape", Outside},
        {file, "./escape/pwned", "owned"}
    ], [filename:join(Outside, "pwned")]),
    % A relative link climbing out of the tree, in an archive of its own.
    hostile(Config, [
        {symlink, "./2024/up", "../../../.."},
        {file, "./2024/up/pwned-rel", "owned"}
    ], [filename:join(filename:dirname(filename:dirname(?config(archive, Config))), "pwned-rel")]).

%% One changed byte in the middle of a good archive: bad_archive, nothing written.
flipped_byte_is_bad_archive(Config) ->
    Context = ?config(context, Config),
    Dir = ?config(dir, Config),
    Name = make_backup(Context),
    Files = filename:join(Dir, <<Name/binary, ".tar.gz">>),
    {ok, Bin} = file:read_file(Files),
    Pos = byte_size(Bin) div 2,
    <<Head:Pos/binary, B, Rest/binary>> = Bin,
    ok = file:write_file(Files, <<Head/binary, (B bxor 16#5a), Rest/binary>>),
    Before = tree(?config(archive, Config)),
    {ok, FilesDirBefore} = file:list_dir(filename:dirname(?config(archive, Config))),
    ?assertEqual({error, bad_archive}, mod_backup:restore_backup(Name, [files], Context)),
    ?assertEqual(Before, tree(?config(archive, Config))),
    {ok, FilesDirAfter} = file:list_dir(filename:dirname(?config(archive, Config))),
    ?assertEqual(lists:sort(FilesDirBefore), lists:sort(FilesDirAfter)).

hostile(Config, Entries, MustNotExist) ->
    Context = ?config(context, Config),
    Dir = ?config(dir, Config),
    Archive = ?config(archive, Config),
    Name = <<"bckrestore-hostile">>,
    File = <<Name/binary, ".tar.gz">>,
    ok = python_tar(filename:join(Dir, File), Entries),
    {ok, _} = mod_backup:update_index(
        fun(I) -> I#{ Name => entry(#{ <<"files">> => File }) } end, Context),
    Before = tree(Archive),
    FilesDir = filename:dirname(Archive),
    {ok, FilesDirBefore} = file:list_dir(FilesDir),
    ?assertEqual({error, unsafe_path}, mod_backup:restore_backup(Name, [files], Context)),
    ?assertEqual(Before, tree(Archive)),
    {ok, FilesDirAfter} = file:list_dir(FilesDir),
    ?assertEqual(lists:sort(FilesDirBefore), lists:sort(FilesDirAfter)),
    [ ?assertEqual({F, false}, {F, filelib:is_file(F) orelse is_link(F)}) || F <- MustNotExist ],
    ok.

%% ---------------------------------------------------------------------------------------------
%% Standby

%% Production backs up and uploads; the standby polls, downloads, checks, restores.
standby_follows_production(Config) ->
    Prod = ?config(prod, Config),
    Standby = ?config(standby, Config),
    ok = mod_backup:start_backup(true, Prod),
    ok = wait_for(fun() -> lists:member(<<"uploaded">>, statuses(?PROD)) end),
    ok = zb_test_util:wait_idle(Prod),
    ?assertEqual({error, env_backup}, mod_backup:start_backup(Standby)),
    ?assertEqual({error, not_env_backup}, mod_backup:download_backup(Prod)),
    ?assertNotEqual(db_fingerprint(?PROD), db_fingerprint(?STANDBY)),
    % The hourly timer's message.
    Old = whereis(server(?STANDBY)),
    server(?STANDBY) ! periodic_download,
    ok = wait_restarted(?STANDBY, Old),
    assert_same(db_fingerprint(?PROD), db_fingerprint(?STANDBY)),
    StandbyDir = backup_create:dir(Standby),
    ProdIndex = backup_json_index:read(backup_create:dir(Prod)),
    ?assertEqual(maps:keys(ProdIndex), maps:keys(backup_json_index:read(StandbyDir))),
    ?assert(filelib:is_regular(filename:join([z_path:site_dir(?STANDBY), "priv", "BACKUP"]))),
    % The security file of production is the standby's now.
    {ok, ProdSec} = z_sites_config:security_dir(?PROD),
    {ok, StandbySec} = z_sites_config:security_dir(?STANDBY),
    ?assertEqual(file:read_file(filename:join(ProdSec, "secret.key")),
                 file:read_file(filename:join(StandbySec, "secret.key"))),
    % Nothing new: the next poll restores nothing.
    Old2 = whereis(server(?STANDBY)),
    ok = mod_backup:download_backup(Standby),
    ok = wait_for(fun() -> not is_downloading(?STANDBY) end),
    ?assertEqual(Old2, whereis(server(?STANDBY))),
    % Zotonic's command line asks the same through a notification.
    ?assertEqual(ok, z_notifier:first(backup_download, Standby)),
    ok = wait_for(fun() -> not is_downloading(?STANDBY) end),
    ?assertEqual(Old2, whereis(server(?STANDBY))).

%% A standby restores an encrypted set in its download worker, which the site restart at the
%% end of the restore stops with the module: the decrypted temporaries are gone all the same.
standby_restores_an_encrypted_set_without_leftovers(Config) ->
    Prod = ?config(prod, Config),
    Standby = ?config(standby, Config),
    ok = m_config:set_value(mod_backup, encrypt_backups, <<"true">>, Prod),
    ok = wait_for(fun() -> backup_config:encrypt_password(Prod) =/= <<>> end),
    ok = m_config:set_value(mod_backup, backup_encrypt_password, backup_config:encrypt_password(Prod), Standby),
    ok = mod_backup:start_backup(true, Prod),
    ok = wait_for(fun() -> lists:member(<<"uploaded">>, statuses(?PROD)) end),
    ok = zb_test_util:wait_idle(Prod),
    [#{ <<"is_encrypted">> := true }] = maps:values(backup_json_index:read(backup_create:dir(Prod))),
    Old = whereis(server(?STANDBY)),
    server(?STANDBY) ! periodic_download,
    ok = wait_restarted(?STANDBY, Old),
    assert_same(db_fingerprint(?PROD), db_fingerprint(?STANDBY)),
    {ok, Names} = file:list_dir(backup_create:dir(Standby)),
    ?assertEqual([], [ N || N <- Names, lists:suffix(".tmp", N) orelse string:find(N, ".restore-") =/= nomatch ]).

%% A file whose sha256 does not match backup.json is dropped and logged; nothing is restored.
standby_drops_bad_hash(Config) ->
    Prod = ?config(prod, Config),
    Standby = ?config(standby, Config),
    ok = mod_backup:start_backup(true, Prod),
    ok = wait_for(fun() -> lists:member(<<"uploaded">>, statuses(?PROD)) end),
    ok = zb_test_util:wait_idle(Prod),
    [{Name, Entry}] = maps:to_list(backup_json_index:read(backup_create:dir(Prod))),
    Remote = filename:join([zotonic_host:filestore_dir(?PROD), "backup", maps:get(<<"database">>, Entry)]),
    {ok, Bin} = file:read_file(Remote),
    ok = file:write_file(Remote, <<Bin/binary, "x">>),
    Before = db_fingerprint(?STANDBY),
    Old = whereis(server(?STANDBY)),
    ok = mod_backup:download_backup(Standby),
    ok = wait_for(fun() -> not is_downloading(?STANDBY) end),
    ?assertEqual(Old, whereis(server(?STANDBY))),
    StandbyDir = backup_create:dir(Standby),
    ?assertNot(filelib:is_file(filename:join(StandbyDir, maps:get(<<"database">>, Entry)))),
    ?assertEqual([], [ F || F <- element(2, file:list_dir(StandbyDir)), lists:suffix(".tmp", F) ]),
    ?assertNot(maps:is_key(Name, backup_json_index:read(StandbyDir))),
    ?assertEqual(Before, db_fingerprint(?STANDBY)).

%% ---------------------------------------------------------------------------------------------
%% Site contents

populate_database(Context, Rows) ->
    z_db:q("create table restore_test_rows (id serial primary key, title text, n bigint,
                                            created timestamptz default now(), data bytea)", Context),
    z_db:q("create index restore_test_rows_n on restore_test_rows (n)", Context),
    z_db:q("insert into restore_test_rows (title, n, data)
            select 'row ' || i, i * 7, decode(md5(i::text), 'hex')
            from generate_series(1, $1) as i", [Rows], Context),
    z_db:q("create table \"Mixed Case\" (\"Key\" text primary key, \"select\" int references restore_test_rows(id))", Context),
    z_db:q(<<"insert into \"Mixed Case\" values ('a', 1), ('b''s', 2), ('ç', 3)"/utf8>>, Context),
    % mod_backup's own table: a revision dictionary travels with the dump.
    Dict = crypto:strong_rand_bytes(5000),
    z_db:q("insert into backup_revision_dict (id, checksum, data) values (1, $1, $2)",
           [erlang:crc32(Dict), Dict], Context),
    ok.

make_media_tree(Archive) ->
    rand:seed(exsss, {4, 5, 6}),
    lists:foreach(
        fun(N) ->
            Dir = filename:join([Archive, "2024", io_lib:format("~2..0B", [N rem 3 + 1])]),
            ok = filelib:ensure_path(Dir),
            ok = file:write_file(filename:join(Dir, io_lib:format("img-~p.jpg", [N])),
                                 crypto:strong_rand_bytes(10000 + rand:uniform(200000)))
        end,
        lists:seq(1, 40)),
    ok = file:write_file(filename:join(Archive, "top.txt"), <<"top level file\n">>),
    ok.

%% Rows changed, added and deleted; a table added; files deleted, added and changed; config
%% and security files edited and added.
mutate(Site, Context) ->
    z_db:q("update restore_test_rows set title = 'changed' where id % 10 = 0", Context),
    z_db:q("delete from \"Mixed Case\" where \"Key\" = 'a'", Context),
    z_db:q("insert into restore_test_rows (title, n) values ('new', 1)", Context),
    z_db:q("create table restore_added (x int)", Context),
    z_db:q("delete from backup_revision_dict", Context),
    Archive = z_path:media_archive(Context),
    [First | _] = lists:sort(filelib:wildcard(filename:join([Archive, "2024", "*", "*"]))),
    ok = file:delete(First),
    ok = file:del_dir_r(filename:join([Archive, "2024", "02"])),
    ok = file:write_file(filename:join(Archive, "top.txt"), <<"changed\n">>),
    ok = file:write_file(filename:join([Archive, "2025-new.txt"]), <<"new\n">>),
    Priv = filename:join(z_path:site_dir(Site), "priv"),
    ok = file:write_file(filename:join(Priv, "zotonic_site.config"), <<"[{edited, true}].\n">>),
    ok = file:write_file(filename:join([Priv, "config.d", "zotonic_host.config"]), <<"[].\n">>),
    {ok, Sec} = z_sites_config:security_dir(Site),
    ok = file:write_file(filename:join(Sec, "secret.key"), <<"other">>),
    ok.

snapshot(Site, Context) ->
    {ok, Sec} = z_sites_config:security_dir(Site),
    Priv = filename:join(z_path:site_dir(Site), "priv"),
    #{
        db => db_fingerprint(Site),
        files => tree(z_path:media_archive(Context)),
        security => tree(Sec),
        site_config => file:read_file(filename:join(Priv, "zotonic_site.config")),
        config_d => tree(filename:join(Priv, "config.d"))
    }.

%% The snapshot taken before mutate/2, with the media file that mutate/2 added after the backup:
%% a files restore keeps it.
with_added_file(#{ files := Files } = Snapshot, _Context) ->
    Snapshot#{ files => lists:sort(lists:keystore("2025-new.txt", 1, Files, {"2025-new.txt", crypto:hash(sha256, <<"new\n">>)})) }.

assert_same(Before, After) ->
    Diffs = diff(Before, After),
    Diffs =:= [] orelse ct:fail({differs, Diffs}).

%% Only what differs, as {Key, OnlyBefore, OnlyAfter}.
diff(A, B) when is_map(A), is_map(B) ->
    lists:flatmap(
        fun(K) ->
            case {maps:get(K, A, missing), maps:get(K, B, missing)} of
                {V, V} -> [];
                {VA, VB} -> [ {K, D} || D <- diff(VA, VB) ]
            end
        end,
        lists:usort(maps:keys(A) ++ maps:keys(B)));
diff(A, B) when is_list(A), is_list(B) ->
    [ {A -- B, B -- A} ];
diff(A, B) ->
    [ {A, B} ].

%% Schema (pg_dump --schema-only), every table's rows in order, and the sequences.
db_fingerprint(Site) ->
    Db = db_name(Site),
    {0, Schema} = zb_test_cmd:cmd(["pg_dump", "--schema-only", "--no-owner", "-d", Db]),
    SchemaLines = [ L || L <- binary:split(Schema, <<"\n">>, [global]),
                         L =/= <<>>,
                         binary:match(L, [<<"--">>, <<"\\restrict">>, <<"\\unrestrict">>]) =/= {0, 2},
                         not is_meta(L) ],
    {0, TablesOut} = zb_test_cmd:psql(Db, ["-tAc", "select tablename from pg_tables where schemaname = 'public' order by 1"]),
    Tables = lines(TablesOut),
    Rows = [ begin
                 Q = ["select count(*) || ' ' || md5(coalesce(string_agg(t::text, E'\\n' order by t::text), '')) from \"public\".\"",
                      binary:replace(T, <<"\"">>, <<"\"\"">>, [global]), "\" t"],
                 {0, R} = zb_test_cmd:psql(Db, ["-tAc", unicode:characters_to_list(iolist_to_binary(Q))]),
                 {T, R}
             end || T <- Tables ],
    {0, Seqs} = zb_test_cmd:psql(Db, ["-tAc", "select sequencename || ' ' || coalesce(last_value, 0) from pg_sequences where schemaname = 'public' order by 1"]),
    #{ schema => SchemaLines, rows => Rows, sequences => Seqs }.

is_meta(<<"\\", _/binary>>) -> true;
is_meta(_) -> false.

schemas(Site) ->
    {0, Out} = zb_test_cmd:psql(db_name(Site), ["-tAc", "select nspname from pg_namespace where nspname not like 'pg\\_%' and nspname <> 'information_schema' order by 1"]),
    lines(Out).

db_name(Site) ->
    #{ db_options := Opts } = zotonic_host:site_info(Site),
    proplists:get_value(dbdatabase, Opts).

%% Relative path, type and sha256 of everything below Dir.
tree(Dir) ->
    case filelib:is_dir(Dir) of
        false -> none;
        true -> lists:sort(tree(Dir, ""))
    end.

tree(Dir, Rel) ->
    {ok, Names} = file:list_dir(filename:join(Dir, Rel)),
    lists:flatmap(
        fun(N) ->
            R = case Rel of "" -> N; _ -> filename:join(Rel, N) end,
            P = filename:join(Dir, R),
            case file:read_link_info(P) of
                {ok, #file_info{ type = directory }} -> [ {R, dir} | tree(Dir, R) ];
                {ok, #file_info{ type = regular }} ->
                    {ok, Bin} = file:read_file(P),
                    [ {R, crypto:hash(sha256, Bin)} ];
                {ok, #file_info{ type = symlink }} ->
                    {ok, Target} = file:read_link(P),
                    [ {R, {link, Target}} ];
                {ok, #file_info{ type = Type }} ->
                    [ {R, Type} ]
            end
        end,
        Names).

is_link(F) ->
    case file:read_link_info(F) of
        {ok, #file_info{ type = Type }} -> Type =:= symlink;
        _ -> false
    end.

%% No temp files in the backup dir, no staging dirs beside the archive dir, no temp schema.
no_leftovers(Context) ->
    Dir = backup_create:dir(Context),
    {ok, Names} = file:list_dir(Dir),
    ?assertEqual([], [ N || N <- Names, lists:suffix(".tmp", N) orelse hd(N) =:= $. ]),
    {ok, FilesNames} = file:list_dir(filename:dirname(z_path:media_archive(Context))),
    ?assertEqual([], [ N || N <- FilesNames, hd(N) =:= $. ]),
    ok.

%% ---------------------------------------------------------------------------------------------
%% Helpers

make_backup(Context) ->
    ok = zb_test_util:wait_idle(Context),
    Dir = backup_create:dir(Context),
    Known = maps:keys(backup_json_index:read(Dir)),
    ok = mod_backup:start_backup(true, Context),
    ok = zb_test_util:wait_idle(Context),
    Index = backup_json_index:read(Dir),
    [Name | _] = [ N || N <- maps:keys(Index), not lists:member(N, Known) ] ++ maps:keys(Index),
    Name.

entry(Files) ->
    maps:merge(#{
        <<"timestamp">> => erlang:system_time(second),
        <<"database">> => null, <<"database_hash">> => null,
        <<"config_files">> => null, <<"config_files_hash">> => null,
        <<"files">> => null, <<"files_hash">> => null,
        <<"is_filestore_uploaded">> => false, <<"is_encrypted">> => false
    }, Files).

outside_dir(Config) ->
    D = filename:join(?config(priv_dir, Config), "outside-" ++ integer_to_list(erlang:unique_integer([positive]))),
    ok = filelib:ensure_path(D),
    D.

%% A .tar.gz made by Python's tarfile, which writes whatever names and links it is given.
python_tar(Out, Entries) ->
    Script = filename:join(filename:dirname(Out), "mktar.py"),
    Lines = [
        "import io, sys, tarfile\n",
        "t = tarfile.open(sys.argv[1], 'w:gz')\n",
        [ case E of
              {file, N, Data} ->
                  io_lib:format("i = tarfile.TarInfo(~s); d = ~s.encode(); i.size = len(d); t.addfile(i, io.BytesIO(d))\n",
                                [py_str(N), py_str(Data)]);
              {symlink, N, Target} ->
                  io_lib:format("i = tarfile.TarInfo(~s); i.type = tarfile.SYMTYPE; i.linkname = ~s; t.addfile(i)\n",
                                [py_str(N), py_str(Target)])
          end || E <- Entries ],
        "t.close()\n"
    ],
    ok = file:write_file(Script, Lines),
    Res = os:cmd("python3 " ++ zb_test_cmd:to_list(Script) ++ " " ++ zb_test_cmd:to_list(Out) ++ " && echo done"),
    ok = file:delete(Script),
    true = lists:suffix("done\n", Res) orelse ct:fail({python_tar, Res}),
    ok.

py_str(S) ->
    "'" ++ [ C || C <- unicode:characters_to_list(S), C =/= $' ] ++ "'".

stock_import_seconds(SqlGz) ->
    Db = "zh_restore_cmp_" ++ os:getpid() ++ "_" ++ integer_to_list(erlang:unique_integer([positive])),
    {0, _} = zb_test_cmd:psql("postgres", ["-c", "CREATE DATABASE \"" ++ Db ++ "\" TEMPLATE template0"]),
    try
        {0, _} = zb_test_cmd:psql(Db, ["-c", "DROP SCHEMA public"]),
        {Micros, {0, _}} = timer:tc(fun() ->
            zb_test_cmd:cmd(["sh", "-c", "gunzip -c \"$0\" | psql -X -q -o /dev/null -v ON_ERROR_STOP=1 -d \"$1\"", SqlGz, Db])
        end),
        Micros / 1.0e6
    after
        zb_test_cmd:psql("postgres", ["-c", "DROP DATABASE IF EXISTS \"" ++ Db ++ "\" WITH (FORCE)"])
    end.

human_size(File) ->
    io_lib:format("~.1f MiB", [filelib:file_size(File) / 1048576]).

lines(Bin) ->
    [ L || L <- binary:split(Bin, <<"\n">>, [global]), L =/= <<>> ].

server(Site) ->
    z_utils:name_for_site(mod_backup, Site).

statuses(Site) ->
    [ S || #{ status := S } <- zotonic_host:mqtt_messages(Site, ?TOPIC) ].

is_downloading(Site) ->
    gen_server:call(server(Site), is_downloading).

%% The site restarts after a restore: its mod_backup server is a new process.
wait_restarted(Site, Old) ->
    ok = wait_for(fun() ->
        case whereis(server(Site)) of
            Pid when is_pid(Pid), Pid =/= Old -> true;
            _ -> false
        end
    end),
    ?assert(lists:member({site_restart, Site}, zotonic_host:render_log(Site))),
    ok.

%% Restores and standby downloads take longer than the shared default wait.
wait_for(Fun) ->
    zb_test_util:wait_until(Fun, 1200, 100).
