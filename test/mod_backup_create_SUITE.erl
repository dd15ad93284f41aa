%% @doc Whole backup sets made by mod_backup in the test host, with the Rust engine, against
%% the real PostgreSQL server: a full set of a populated database and a >= 100 MiB media tree
%% restored with gunzip | psql and tar -xzf and compared, the config tar's entry names, the
%% time of the same work done the stock way (pg_dump --compress=7 and tar -czf), encrypted
%% sets read by the zbackup CLI and by an Erlang Z1 written from the contract, and the faults:
%% a full disk, a backup killed half-way.
%%
%% MOD_BACKUP_MEDIA_MIB sets the size of the media tree (default 100).
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

-module(mod_backup_create_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1, init_per_testcase/2, end_per_testcase/2]).
-export([
    full_backup_restores/1,
    database_only_backup/1,
    progress_reported/1,
    encrypted_set_both_directions/1,
    disk_full_leaves_older_sets/1,
    failed_backup_keeps_the_previous_set_of_its_name/1,
    killed_mid_backup_leaves_no_tmp/1,
    vm_killed_mid_backup/1,
    second_set_reuses_the_first_and_extracts_identical/1,
    second_set_recompresses_what_a_corrupt_first_holds/1,
    second_set_after_an_encrypted_first_compresses_all/1,
    second_set_copies_the_files_around_a_changed_one_as_a_prefix_unit_and_a_tail/1
]).
%% logger handler callback: forwards the media step's report to the test process
-export([log/2]).

-define(SITE, bckcreate).
-define(TOPIC, <<"model/backup/event/backup">>).

suite() ->
    [ {timetrap, {minutes, 20}} ].

all() ->
    [
        full_backup_restores,
        database_only_backup,
        progress_reported,
        encrypted_set_both_directions,
        disk_full_leaves_older_sets,
        failed_backup_keeps_the_previous_set_of_its_name,
        killed_mid_backup_leaves_no_tmp,
        vm_killed_mid_backup,
        second_set_reuses_the_first_and_extracts_identical,
        second_set_recompresses_what_a_corrupt_first_holds,
        second_set_after_an_encrypted_first_compresses_all,
        second_set_copies_the_files_around_a_changed_one_as_a_prefix_unit_and_a_tail
    ].

init_per_suite(Config) ->
    {ok, Context} = zotonic_host:start_site(?SITE, #{}),
    ok = zb_test_util:populate_database(Context),
    Archive = z_path:media_archive(Context),
    MiB = list_to_integer(os:getenv("MOD_BACKUP_MEDIA_MIB", "100")),
    {T, Bytes} = timer:tc(fun() -> zb_test_util:make_media_tree(Archive, MiB) end),
    ct:pal("media tree: ~.1f MiB in ~p files, made in ~.1f s",
           [Bytes / 1048576, zb_test_util:count_files(Archive), T / 1.0e6]),
    [ {context, Context}, {archive, Archive} | Config ].

end_per_suite(_Config) ->
    zotonic_host:stop_site(?SITE),
    ok.

init_per_testcase(_Case, Config) ->
    Dir = zb_test_util:fresh_case(?config(context, Config), [{encrypt_backups, <<"false">>}]),
    [ {dir, Dir} | Config ].

end_per_testcase(_Case, Config) ->
    ok = zb_test_util:end_case(Config).

%% ---------------------------------------------------------------------------------------------

full_backup_restores(Config) ->
    Context = ?config(context, Config),
    Dir = ?config(dir, Config),
    {Micros, ok} = timer:tc(fun() -> ok = mod_backup:start_backup(true, Context), zb_test_util:wait_idle(Context) end),
    ct:pal("full backup (database, config, media) by mod_backup: ~.2f s", [Micros / 1.0e6]),
    [Name] = maps:keys(backup_json_index:read(Dir)),
    #{ Name := Entry } = backup_json_index:read(Dir),
    ?assertEqual(<<Name/binary, ".sql.gz">>, maps:get(<<"database">>, Entry)),
    ?assertEqual(<<"config-", Name/binary, ".tar.gz">>, maps:get(<<"config_files">>, Entry)),
    ?assertEqual(<<Name/binary, ".tar.gz">>, maps:get(<<"files">>, Entry)),
    ?assertEqual(false, maps:get(<<"is_encrypted">>, Entry)),
    ?assertEqual(false, maps:get(<<"is_filestore_uploaded">>, Entry)),
    lists:foreach(
        fun(Key) ->
            File = filename:join(Dir, maps:get(Key, Entry)),
            ?assertEqual(maps:get(<<Key/binary, "_hash">>, Entry), zb_test_util:sha256_file(File))
        end,
        [<<"database">>, <<"config_files">>, <<"files">>]),
    ?assertEqual([], [ F || F <- zb_test_util:dir_files(Dir), zb_test_util:is_tmp(F) ]),

    % The database: gunzip -c | psql into an empty database, every table row for row.
    SqlGz = filename:join(Dir, maps:get(<<"database">>, Entry)),
    ok = compare_restored_database(SqlGz, Context),

    % The media: tar -xzf equals the archive dir (diff -r), entries are ./relative.
    Files = filename:join(Dir, maps:get(<<"files">>, Entry)),
    Extract = filename:join(?config(priv_dir, Config), "extract"),
    ok = filelib:ensure_path(Extract),
    {0, _} = zb_test_cmd:cmd(["tar", "-xzf", Files, "-C", Extract]),
    {0, <<>>} = zb_test_cmd:cmd(["diff", "-r", ?config(archive, Config), Extract]),
    {0, Listing} = zb_test_cmd:cmd(["tar", "-tzf", Files]),
    ?assert(lists:all(fun(L) -> binary:part(L, 0, 2) =:= <<"./">> end, lines(Listing))),

    % The config tar: exactly the contract's entry names.
    {0, CfgListing} = zb_test_cmd:cmd(["tar", "-tzf", filename:join(Dir, maps:get(<<"config_files">>, Entry))]),
    CfgEntries = lists:sort([ L || L <- lines(CfgListing), binary:last(L) =/= $/ ]),
    Expected = lists:sort([ N || {N, _} <- backup_create:config_file_list(Context) ]),
    ct:pal("config tar entries: ~p", [CfgEntries]),
    ?assertEqual(Expected, CfgEntries),
    ?assert(lists:member(<<"config-bckcreate/config/priv/zotonic_site.config">>, CfgEntries)),
    ?assert(lists:member(<<"config-bckcreate/security/secret.key">>, CfgEntries)),
    Statuses = [ S || #{ status := S } <- zotonic_host:mqtt_messages(?SITE, ?TOPIC) ],
    ?assertEqual(<<"completed">>, lists:last(Statuses)),
    ?assert(lists:member(<<"sql_backup_started">>, Statuses)),
    ?assert(lists:member(<<"archive_backup_started">>, Statuses)).

database_only_backup(Config) ->
    Context = ?config(context, Config),
    Dir = ?config(dir, Config),
    ok = mod_backup:start_backup(false, Context),
    ok = zb_test_util:wait_idle(Context),
    [Entry] = maps:values(backup_json_index:read(Dir)),
    ?assertEqual(undefined, maps:get(<<"files">>, Entry)),
    ?assertEqual(undefined, maps:get(<<"files_hash">>, Entry)),
    ?assert(is_binary(maps:get(<<"database">>, Entry))),
    ?assertNot(lists:member(<<"archive_backup_started">>,
                            [ S || #{ status := S } <- zotonic_host:mqtt_messages(?SITE, ?TOPIC) ])).

progress_reported(Config) ->
    Context = ?config(context, Config),
    ok = mod_backup:start_backup(true, Context),
    ok = zb_test_util:wait_idle(Context),
    Progress = [ P || #{ status := <<"progress">> } = P <- zotonic_host:mqtt_messages(?SITE, ?TOPIC) ],
    Percents = [ P || #{ percent := P } <- Progress ],
    ct:pal("~p progress messages, percents ~p", [length(Progress), Percents]),
    ?assert(length(Percents) >= 3),
    ?assertEqual(Percents, lists:sort(Percents)),
    ?assert(lists:all(fun(P) -> P >= 0 andalso P =< 100 end, Percents)),
    ?assert(lists:max(Percents) >= 90),
    ?assertEqual([<<"database">>, <<"config_files">>, <<"files">>, <<"done">>],
                 lists:usort(fun(A, B) -> phase_order(A) =< phase_order(B) end,
                             [ Ph || #{ phase := Ph } <- Progress ])).

%% Encrypted sets: each file is replaced by file.enc, the hashes are of the .enc files, and
%% both the zbackup CLI and the Erlang Z1 below read them; and the engine reads Erlang's Z1.
encrypted_set_both_directions(Config) ->
    Context = ?config(context, Config),
    Dir = ?config(dir, Config),
    ok = m_config:set_value(mod_backup, backup_encrypt_password, <<"correct horse: battery \\ staple">>, Context),
    ok = m_config:set_value(mod_backup, encrypt_backups, <<"true">>, Context),
    Password = z_convert:to_binary(m_config:get_value(mod_backup, backup_encrypt_password, Context)),
    ok = mod_backup:start_backup(false, Context),
    ok = zb_test_util:wait_idle(Context),
    [{Name, Entry}] = maps:to_list(backup_json_index:read(Dir)),
    ?assertEqual(true, maps:get(<<"is_encrypted">>, Entry)),
    Db = maps:get(<<"database">>, Entry),
    ?assertEqual(<<Name/binary, ".sql.gz.enc">>, Db),
    ?assertEqual(<<"config-", Name/binary, ".tar.gz.enc">>, maps:get(<<"config_files">>, Entry)),
    ?assertNot(filelib:is_file(filename:join(Dir, <<Name/binary, ".sql.gz">>))),
    EncPath = filename:join(Dir, Db),
    ?assertEqual(maps:get(<<"database_hash">>, Entry), zb_test_util:sha256_file(EncPath)),
    {ok, Enc} = file:read_file(EncPath),
    <<"Z1", Iter:32/little, _/binary>> = Enc,
    ?assert(Iter > 600000 andalso Iter =< 600000 + 65535),

    % Erlang Z1 reads ours; the result is the gzip'd dump.
    {ok, SqlGz} = z1_decrypt(Enc, Password),
    ?assertMatch(<<31, 139, _/binary>>, SqlGz),
    ?assertMatch({match, _}, re:run(zlib:gunzip(SqlGz), <<"CREATE TABLE">>)),

    % The CLI reads ours.
    PwFile = filename:join(?config(priv_dir, Config), "password.txt"),
    ok = file:write_file(PwFile, Password),
    Out = filename:join(?config(priv_dir, Config), "cli.sql.gz"),
    {Status, Output} = zb_test_cmd:cmd([zbackup(), "decrypt", "--password-file", PwFile, EncPath, Out]),
    ct:pal("zbackup decrypt: ~p ~s", [Status, Output]),
    ?assertEqual(0, Status),
    {ok, CliOut} = file:read_file(Out),
    ?assertEqual(SqlGz, CliOut),

    % Erlang's Z1 is read by the engine.
    Plain = crypto:strong_rand_bytes(300000),
    ErlEnc = filename:join(?config(priv_dir, Config), "erl.bin.enc"),
    ok = file:write_file(ErlEnc, z1_encrypt(Plain, Password)),
    Dec = filename:join(?config(priv_dir, Config), "erl.bin"),
    {ok, _} = backup_file_crypto:decrypt_file(ErlEnc, Dec, Password),
    ?assertEqual({ok, Plain}, file:read_file(Dec)),
    ?assertMatch({error, _}, backup_file_crypto:decrypt_file(ErlEnc, Dec ++ "2", <<"wrong">>)),
    ok = m_config:set_value(mod_backup, encrypt_backups, <<"false">>, Context).

%% A backup dir on a small tmpfs: the new set fails cleanly, the older sets stay as they were.
disk_full_leaves_older_sets(Config) ->
    Context = ?config(context, Config),
    Dir = ?config(dir, Config),
    {0, _} = zb_test_cmd:cmd(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", Dir]),
    try
        % The same name as the set that fails (2024-01-03 is a Wednesday).
        Old = [ <<"bckcreate-3.sql.gz">>, <<"config-bckcreate-3.tar.gz">> ],
        [ ok = file:write_file(filename:join(Dir, F), crypto:strong_rand_bytes(10000)) || F <- Old ],
        Before = [ zb_test_util:sha256_file(filename:join(Dir, F)) || F <- Old ],
        {ok, _} = mod_backup:update_index(fun(I) -> I#{ <<"bckcreate-3">> => #{
            <<"timestamp">> => 1704164400,
            <<"database">> => hd(Old), <<"database_hash">> => hd(Before),
            <<"config_files">> => lists:last(Old), <<"config_files_hash">> => lists:last(Before),
            <<"files">> => undefined, <<"files_hash">> => undefined,
            <<"is_filestore_uploaded">> => false, <<"is_encrypted">> => false } } end, Context),
        IndexBefore = backup_json_index:read(Dir),
        ok = zb_test_util:set_clock(fun() -> {{2024, 1, 3}, {12, 0, 0}} end),
        ok = mod_backup:start_backup(true, Context),
        ok = zb_test_util:wait_idle(Context),
        ?assertEqual(<<"error">>, maps:get(status, lists:last(zotonic_host:mqtt_messages(?SITE, ?TOPIC)))),
        ?assertEqual(IndexBefore, backup_json_index:read(Dir)),
        ?assertEqual(Before, [ zb_test_util:sha256_file(filename:join(Dir, F)) || F <- Old ]),
        ?assertEqual(lists:sort(Old ++ [<<"backup.json">>]), zb_test_util:dir_files(Dir))
    after
        ok = zb_test_util:set_clock(undefined),
        zb_test_cmd:cmd(["umount", Dir])
    end.

%% The backup server and worker killed while the media archive is written: after the restart
%% no .tmp file is left and backup.json is valid and unchanged.
killed_mid_backup_leaves_no_tmp(Config) ->
    Context = ?config(context, Config),
    Dir = ?config(dir, Config),
    % A set of today's name, which the killed backup would have replaced.
    ok = mod_backup:start_backup(false, Context),
    ok = zb_test_util:wait_idle(Context),
    Earlier = only_set(Dir),
    ok = mod_backup:start_backup(true, Context),
    ok = wait_for_status(<<"archive_backup_started">>, 600),
    ?assert(mod_backup:backup_in_progress(Context)),
    ct:pal("files in the backup dir when killed: ~p", [zb_test_util:dir_files(Dir)]),
    New = zb_test_util:kill_and_restart(?SITE),
    ?assert(is_pid(New)),
    timer:sleep(500),
    ok = earlier_set_intact(Dir, Earlier, Context).

%% A backup that fails -- pg_dump failing, or its files not put in place -- leaves the earlier
%% set of the same name listed, its files unchanged, and restorable (`zbackup restore-check').
%% A full disk and a killed worker or VM are the cases above and below.
failed_backup_keeps_the_previous_set_of_its_name(Config) ->
    Context = ?config(context, Config),
    Dir = ?config(dir, Config),
    ok = zb_test_util:set_clock(fun() -> {{2024, 1, 3}, {12, 0, 0}} end),
    try
        ok = mod_backup:start_backup(false, Context),
        ok = zb_test_util:wait_idle(Context),
        #{ <<"bckcreate-3">> := Entry } = Index0 = backup_json_index:read(Dir),
        Hashes0 = set_hashes(Dir, Entry),
        Fails = fun(What) ->
            zotonic_host:mqtt_flush(?SITE),
            ok = mod_backup:start_backup(false, Context),
            ok = zb_test_util:wait_idle(Context),
            ct:pal("after ~p: ~p", [What, zb_test_util:dir_files(Dir)]),
            ?assertEqual(<<"error">>, maps:get(status, lists:last(zotonic_host:mqtt_messages(?SITE, ?TOPIC)))),
            ?assertEqual(Index0, backup_json_index:read(Dir)),
            ?assertEqual(Hashes0, set_hashes(Dir, Entry)),
            ?assertEqual([], [ F || F <- zb_test_util:dir_files(Dir), zb_test_util:is_tmp(F) ])
        end,
        % pg_dump fails.
        application:set_env(zotonic, pg_dump, "/bin/false"),
        try Fails(pg_dump_fails) after application:unset_env(zotonic, pg_dump) end,
        ok = restore_check(Dir),
        % The new set is whole, but the old database dump cannot be moved aside (a non-empty
        % directory has its aside name): the swap is undone.
        Block = filename:join(Dir, <<"bckcreate-3.sql.gz.prev">>),
        ok = filelib:ensure_dir(filename:join(Block, "x")),
        ok = file:write_file(filename:join(Block, "x"), <<>>),
        try Fails(swap_fails) after ok = file:del_dir_r(Block) end,
        ok = restore_check(Dir),
        % And a backup that works replaces the set.
        ok = mod_backup:start_backup(false, Context),
        ok = zb_test_util:wait_idle(Context),
        #{ <<"bckcreate-3">> := Entry1 } = backup_json_index:read(Dir),
        ?assertNotEqual(Hashes0, set_hashes(Dir, Entry1)),
        ?assertEqual([], [ F || F <- zb_test_util:dir_files(Dir), zb_test_util:is_tmp(F) orelse is_prev(F) ]),
        ok = restore_check(Dir)
    after
        ok = zb_test_util:set_clock(undefined)
    end.

%% A whole VM killed (kill -9) while it writes a set: the next start of the site's mod_backup
%% (here in this VM, on the same directories) removes the .tmp files, and backup.json is the
%% valid index from before, with the earlier set of the same name intact and restorable.
vm_killed_mid_backup(Config) ->
    Root = filename:join(?config(priv_dir, Config), "vmkill"),
    Site = bckvmkill,
    {ok, Peer, _Node} = peer:start_link(#{
        name => peer:random_name(),
        connection => standard_io,
        args => [ "-pa" | code:get_path() ]
    }),
    {ok, PeerCtx} = peer:call(Peer, zotonic_host, start_site, [Site, #{ dir => Root, keep_db => true }], 60000),
    Dir = peer:call(Peer, backup_create, dir, [PeerCtx]),
    Archive = peer:call(Peer, z_path, media_archive, [PeerCtx]),
    DbName = proplists:get_value(dbdatabase, peer:call(Peer, z_db_pool, get_database_options, [PeerCtx])),
    _ = zb_test_util:make_media_tree(Archive, 60),
    % Media alone archives in well under 100 ms now; 24 MiB of random letters keeps deflate busy
    % for about half a second, so the kill lands while the archive's .tmp exists.
    Letters = << <<($a + B rem 27)>> || <<B>> <= crypto:strong_rand_bytes(24 * 1048576) >>,
    ok = file:write_file(filename:join(Archive, "notes.txt"), Letters),
    % A set of today's name, which the killed backup would have replaced.
    ok = peer:call(Peer, mod_backup, start_backup, [false, PeerCtx]),
    ok = zb_test_util:wait_until(fun() -> not peer:call(Peer, mod_backup, backup_in_progress, [PeerCtx]) end),
    Earlier = only_set(Dir),
    OsPid = peer:call(Peer, os, getpid, []),
    ok = peer:call(Peer, mod_backup, start_backup, [true, PeerCtx]),
    ok = zb_test_util:wait_until(fun() -> lists:any(fun zb_test_util:is_tmp/1, zb_test_util:dir_files(Dir)) end, 400, 25),
    AtKill = zb_test_util:dir_files(Dir),
    {0, _} = zb_test_cmd:cmd(["kill", "-9", OsPid]),
    catch peer:stop(Peer),
    ct:pal("backup dir when the VM was killed: ~p", [AtKill]),
    ?assert(lists:any(fun zb_test_util:is_tmp/1, AtKill)),
    {ok, Ctx} = zotonic_host:start_site(Site, #{ dir => Root }),
    try
        ok = earlier_set_intact(Dir, Earlier, Ctx)
    after
        zotonic_host:stop_site(Site),
        zb_test_cmd:psql("postgres", ["-c", "DROP DATABASE IF EXISTS \"" ++ DbName ++ "\" WITH (FORCE)"])
    end.

%% ---------------------------------------------------------------------------------------------
%% Z1, written from the contract (section 9).

z1_encrypt(Plain, Password) ->
    Salt = crypto:strong_rand_bytes(16),
    Iter = 600000 + 1 + rand:uniform(65535) - 1,
    <<IV:16/binary, Key:32/binary>> = crypto:pbkdf2_hmac(sha256, Password, Salt, Iter, 48),
    Check = crypto:mac(hmac, sha256, Password, <<Salt/binary, Password/binary>>),
    Cipher = crypto:crypto_one_time(aes_256_cfb8, Key, IV, <<Check/binary, Plain/binary>>, true),
    <<"Z1", Iter:32/little-unsigned, Salt/binary, Cipher/binary>>.

z1_decrypt(<<"Z1", Iter:32/little-unsigned, Salt:16/binary, Cipher/binary>>, Password) when Iter < 20000000 ->
    <<IV:16/binary, Key:32/binary>> = crypto:pbkdf2_hmac(sha256, Password, Salt, Iter, 48),
    <<Check:32/binary, Plain/binary>> = crypto:crypto_one_time(aes_256_cfb8, Key, IV, Cipher, false),
    case crypto:mac(hmac, sha256, Password, <<Salt/binary, Password/binary>>) of
        Check -> {ok, Plain};
        _ -> {error, password}
    end;
z1_decrypt(_, _) ->
    {error, format}.

%% ---------------------------------------------------------------------------------------------

compare_restored_database(SqlGz, Context) ->
    DbOpts = z_db_pool:get_database_options(Context),
    % The OS pid too: unique integers restart with every VM, and a database left by a killed run
    % (the cluster may be shared) must not fail the next one.
    Db = "zh_restore_" ++ os:getpid() ++ "_" ++ integer_to_list(erlang:unique_integer([positive])),
    {0, _} = zb_test_cmd:psql("postgres", ["-c", "CREATE DATABASE \"" ++ Db ++ "\" TEMPLATE template0"]),
    try
        {0, _} = zb_test_cmd:psql(Db, ["-c", "DROP SCHEMA public"]),
        % Query results (set_config, setval) to /dev/null; errors and warnings stay.
        ?assertEqual({0, <<>>}, zb_test_cmd:cmd(["sh", "-c", "gunzip -c \"$0\" | psql -X -q -o /dev/null -v ON_ERROR_STOP=1 -d \"$1\"",
                                     SqlGz, Db])),
        Source = opt(dbdatabase, DbOpts),
        {0, TablesOut} = zb_test_cmd:psql(Source, ["-tAc", "select tablename from pg_tables where schemaname = 'public' order by 1"]),
        Tables = lines(TablesOut),
        ct:pal("tables compared: ~p", [Tables]),
        ?assert(length(Tables) >= 5),
        lists:foreach(
            fun(T) ->
                Q = ["select count(*) || ' ' || md5(coalesce(string_agg(t::text, E'\\n' order by t::text), '')) from \"public\".\"",
                     binary:replace(T, <<"\"">>, <<"\"\"">>, [global]), "\" t"],
                Sql = unicode:characters_to_list(iolist_to_binary(Q)),
                {0, A} = zb_test_cmd:psql(Source, ["-tAc", Sql]),
                {0, B} = zb_test_cmd:psql(Db, ["-tAc", Sql]),
                ?assertEqual({T, A}, {T, B})
            end,
            Tables),
        {0, Count} = zb_test_cmd:psql(Db, ["-tAc", "select count(*) from backup_test_rows"]),
        ?assertEqual(<<"200000\n">>, Count),
        ok
    after
        zb_test_cmd:psql("postgres", ["-c", "DROP DATABASE IF EXISTS \"" ++ Db ++ "\" WITH (FORCE)"])
    end.

opt(Key, Opts) ->
    zb_test_cmd:to_list(z_convert:to_binary(proplists:get_value(Key, Opts))).

lines(Bin) ->
    [ L || L <- binary:split(Bin, <<"\n">>, [global]), L =/= <<>> ].

is_prev(F) ->
    binary:longest_common_suffix([F, <<".prev">>]) =:= 5.

%% The sha256 of each file of an index entry, as found on disk now.
set_hashes(Dir, Entry) ->
    [ {F, zb_test_util:sha256_file(filename:join(Dir, F))} || F <- backup_json_index:set_files(Entry) ].

%% The one set in Dir: backup.json, the set's entry and its files' sha256.
only_set(Dir) ->
    Index = backup_json_index:read(Dir),
    [Entry] = maps:values(Index),
    {Index, Entry, set_hashes(Dir, Entry)}.

%% After a backup was interrupted: no .tmp file in Dir, backup.json and the files of the set
%% Earlier (only_set/1) as they were, no backup running, and the set restorable.
earlier_set_intact(Dir, {Index, Entry, Hashes}, Context) ->
    Left = zb_test_util:dir_files(Dir),
    ct:pal("files in the backup dir after the restart: ~p", [Left]),
    ?assertEqual([], [ F || F <- Left, zb_test_util:is_tmp(F) ]),
    ?assertEqual(Index, backup_json_index:read(Dir)),
    ?assertEqual(Hashes, set_hashes(Dir, Entry)),
    ?assertNot(mod_backup:backup_in_progress(Context)),
    restore_check(Dir).

%% The sets in Dir pass `zbackup restore-check': hashes, gzip and dump integrity, archives.
restore_check(Dir) ->
    {Status, Output} = zb_test_cmd:cmd([zbackup(), "restore-check", Dir]),
    ct:pal("zbackup restore-check: ~p~n~s", [Status, Output]),
    0 = Status,
    ok.

phase_order(<<"database">>) -> 1;
phase_order(<<"config_files">>) -> 2;
phase_order(<<"files">>) -> 3;
phase_order(_) -> 4.

zbackup() ->
    filename:join([code:priv_dir(zotonic_mod_backup), "native", "zbackup"]).

wait_for_status(_Status, 0) ->
    {error, timeout};
wait_for_status(Status, N) ->
    case [ S || #{ status := S } <- zotonic_host:mqtt_messages(?SITE, ?TOPIC), S =:= Status ] of
        [] -> timer:sleep(50), wait_for_status(Status, N - 1);
        _ -> ok
    end.

%% ---------------------------------------------------------------------------------------------
%% Reuse of the previous set's media archive (issue 15)

log(#{ msg := {report, #{ text := <<"Backup of media files done">> } = Report} }, #{ config := #{ pid := Pid } }) ->
    Pid ! {media_done, Report},
    ok;
log(_Event, _HandlerConfig) ->
    ok.

%% Makes a full set dated Day (the set's name follows the weekday) and returns the media
%% step's log report and the set's files archive.
full_set_on(Day, Context) ->
    Dir = backup_create:dir(Context),
    ok = zb_test_util:set_clock(fun() -> {Day, {12, 0, 0}} end),
    try
        ok = logger:add_handler(reuse_probe, ?MODULE, #{ level => info, config => #{ pid => self() } }),
        Primary = maps:get(level, logger:get_primary_config()),
        ok = logger:set_primary_config(level, info),
        try
            ok = mod_backup:start_backup(true, Context),
            ok = zb_test_util:wait_idle(Context)
        after
            ok = logger:set_primary_config(level, Primary),
            ok = logger:remove_handler(reuse_probe)
        end,
        Report = receive {media_done, R} -> R after 5000 -> error(no_media_report) end,
        Index = backup_json_index:read(Dir),
        [Files] = [ F || {_, #{ <<"timestamp">> := _, <<"files">> := F }} <- maps:to_list(Index),
                         is_binary(F), begin
                             Name = set_name_of(Day),
                             binary:match(F, Name) =/= nomatch
                         end ],
        {Report, filename:join(Dir, Files)}
    after
        ok = zb_test_util:set_clock(undefined)
    end.

set_name_of(Day) ->
    Dow = calendar:day_of_the_week(Day),
    <<"-", (integer_to_binary(Dow))/binary, ".">>.

%% The archive extracts with GNU tar to the media tree, passes gzip -t and zbackup verify.
assert_archive_is_the_tree(Archive, Config) ->
    Extract = filename:join(?config(priv_dir, Config), "reuse-extract"),
    _ = zb_test_cmd:cmd(["rm", "-rf", Extract]),
    ok = filelib:ensure_path(Extract),
    {0, _} = zb_test_cmd:cmd(["gzip", "-t", Archive]),
    {0, _} = zb_test_cmd:cmd(["tar", "-xzf", Archive, "-C", Extract]),
    {0, <<>>} = zb_test_cmd:cmd(["diff", "-r", ?config(archive, Config), Extract]),
    {0, _} = zb_test_cmd:cmd([zbackup(), "verify", Archive]),
    ok.

%% The second set copies the compressed bytes of every unchanged file from the first and
%% compresses only the changed and added ones; the result is the tree, byte for byte.
second_set_reuses_the_first_and_extracts_identical(Config) ->
    Context = ?config(context, Config),
    Archive = ?config(archive, Config),
    {First, FirstFile} = full_set_on({2024, 1, 3}, Context),
    ?assertEqual(undefined, maps:get(previous, First)),
    Changed = filename:join(Archive, "reuse-changed.txt"),
    ok = file:write_file(Changed, <<"a file added after the first set\n">>),
    try
        {Second, SecondFile} = full_set_on({2024, 1, 4}, Context),
        ct:pal("second set: previous ~p, reuse ~p", [maps:get(previous, Second), maps:get(reuse, Second)]),
        ?assertEqual(z_convert:to_binary(FirstFile), z_convert:to_binary(maps:get(previous, Second))),
        Reuse = maps:get(reuse, Second),
        ?assertEqual(true, maps:get(used, Reuse)),
        ?assertEqual(0, maps:get(rejected_units, Reuse)),
        ?assert(maps:get(reused_entries, Reuse) > 0),
        ?assert(lists:member(maps:get(method, Reuse), [write, write_and_copy_file_range, copy_file_range, clone, clone_and_copy_file_range])),
        % every file but the new one (and the dirs its addition changed) came from the first
        ?assert(maps:get(reused_entries, Reuse) >= maps:get(files, Second) - 3),
        ok = assert_archive_is_the_tree(SecondFile, Config)
    after
        ok = file:delete(Changed)
    end.

%% A byte flipped inside the first set's archive: the unit holding it fails its check, its
%% files are compressed from the source, and the second set is still the whole tree.
second_set_recompresses_what_a_corrupt_first_holds(Config) ->
    Context = ?config(context, Config),
    {_, FirstFile} = full_set_on({2024, 1, 3}, Context),
    Size = filelib:file_size(FirstFile),
    {ok, Fd} = file:open(FirstFile, [read, write, raw, binary]),
    {ok, <<B>>} = file:pread(Fd, Size div 2, 1),
    ok = file:pwrite(Fd, Size div 2, <<(B bxor 16#5a)>>),
    ok = file:close(Fd),
    {Second, SecondFile} = full_set_on({2024, 1, 4}, Context),
    Reuse = maps:get(reuse, Second),
    ct:pal("after a corrupt first set: ~p", [Reuse]),
    ?assertEqual(true, maps:get(used, Reuse)),
    ?assertEqual(1, maps:get(rejected_units, Reuse)),
    ?assert(maps:get(reused_entries, Reuse) > 0),
    ok = assert_archive_is_the_tree(SecondFile, Config).

%% Eight small files of one directory (12 KB each) share a unit; the third changed after the
%% first set: the second set copies the two before it (up to the sync point after them) as a
%% unit of their own, compresses it and the next three (32 KiB, deflate's window) anew, copies
%% the last two after them as a tail of that unit, reports both through the NIF's
%% `prefix_units' and `tail_pieces', and is still the tree.
second_set_copies_the_files_around_a_changed_one_as_a_prefix_unit_and_a_tail(Config) ->
    Context = ?config(context, Config),
    Group = filename:join(?config(archive, Config), "prefix-group"),
    ok = filelib:ensure_path(Group),
    Text = fun(Name) -> binary:copy(<<"page ", Name/binary, " of the prefix group\n">>, 400) end,
    Names = [<<"a">>, <<"b">>, <<"c">>, <<"d">>, <<"e">>, <<"f">>, <<"g">>, <<"h">>],
    [ ok = file:write_file(filename:join(Group, N), Text(N)) || N <- Names ],
    try
        {_, _} = full_set_on({2024, 1, 3}, Context),
        ok = file:write_file(filename:join(Group, "c"), Text(<<"c, edited">>)),
        {Second, SecondFile} = full_set_on({2024, 1, 4}, Context),
        Reuse = maps:get(reuse, Second),
        ct:pal("after one changed file of a group: ~p", [Reuse]),
        ?assertEqual(true, maps:get(used, Reuse)),
        ?assertEqual(0, maps:get(rejected_units, Reuse)),
        ?assert(maps:get(prefix_units, Reuse) >= 1),
        ?assert(maps:get(tail_pieces, Reuse) >= 1),
        ok = assert_archive_is_the_tree(SecondFile, Config)
    after
        _ = zb_test_cmd:cmd(["rm", "-rf", Group])
    end.

%% An encrypted first set keeps no plaintext archive: the second set (unencrypted) has no
%% previous archive to copy from and compresses everything; the first is left as it was.
second_set_after_an_encrypted_first_compresses_all(Config) ->
    Context = ?config(context, Config),
    Dir = ?config(dir, Config),
    ok = m_config:set_value(mod_backup, backup_encrypt_password, <<"reuse test password">>, Context),
    ok = m_config:set_value(mod_backup, encrypt_backups, <<"true">>, Context),
    {_, FirstFile} = full_set_on({2024, 1, 3}, Context),
    ?assertEqual(<<".enc">>, z_convert:to_binary(filename:extension(FirstFile))),
    FirstHash = zb_test_util:sha256_file(FirstFile),
    ok = m_config:set_value(mod_backup, encrypt_backups, <<"false">>, Context),
    {Second, SecondFile} = full_set_on({2024, 1, 4}, Context),
    ?assertEqual(undefined, maps:get(previous, Second)),
    ?assertEqual(undefined, maps:get(reuse, Second)),
    ?assertEqual(FirstHash, zb_test_util:sha256_file(FirstFile)),
    ?assertEqual(2, maps:size(backup_json_index:read(Dir))),
    ok = assert_archive_is_the_tree(SecondFile, Config).
