%% @doc mod_backup running in the test host (zotonic_host) against the real PostgreSQL server:
%% the per-site server, the nightly rule and set names with an injected clock, one backup at a
%% time, the running entry of list_backups, MQTT statuses, the standby environment, removal of
%% .tmp files at start, the model's and the action's ACL, and the download callbacks.
%%
%% A backup is held "running" deterministically by taking the node-wide backup lock that the
%% worker waits for before it makes a set.
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

-module(mod_backup_server_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").
-include_lib("zotonic_core/include/zotonic.hrl").
-include_lib("kernel/include/file.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1, init_per_testcase/2, end_per_testcase/2]).
-export([
    server_registered_per_site/1,
    nightly_off_by_default/1,
    nightly_before_and_after_3/1,
    nightly_names_monday_to_saturday/1,
    nightly_sunday_weekly_name/1,
    nightly_not_twice_a_day/1,
    one_backup_at_a_time/1,
    running_entry_in_list/1,
    mqtt_started_status/1,
    failed_set_not_registered/1,
    standby_refuses_backups/1,
    tmp_files_removed_at_start/1,
    interrupted_commit_is_repaired_at_start/1,
    stock_backup_create_functions/1,
    launcher_backup_commands_through_z_n1/1,
    old_sunday_set_dropped/1,
    model_acl/1,
    action_acl/1,
    download_callbacks/1,
    download_through_controller_file_as_zotonic_calls_it/1,
    encrypt_generates_password/1,
    filestore_upload/1,
    admin_menu/1
]).

-define(SITE, bcksrv).
-define(TOPIC, <<"model/backup/event/backup">>).

all() ->
    [
        server_registered_per_site,
        nightly_off_by_default,
        nightly_before_and_after_3,
        nightly_names_monday_to_saturday,
        nightly_sunday_weekly_name,
        nightly_not_twice_a_day,
        one_backup_at_a_time,
        running_entry_in_list,
        mqtt_started_status,
        failed_set_not_registered,
        standby_refuses_backups,
        tmp_files_removed_at_start,
        interrupted_commit_is_repaired_at_start,
        stock_backup_create_functions,
        launcher_backup_commands_through_z_n1,
        old_sunday_set_dropped,
        model_acl,
        action_acl,
        download_callbacks,
        download_through_controller_file_as_zotonic_calls_it,
        encrypt_generates_password,
        filestore_upload,
        admin_menu
    ].

init_per_suite(Config) ->
    zb_test_util:start_site(?SITE, Config).

end_per_suite(_Config) ->
    zotonic_host:stop_site(?SITE),
    ok.

init_per_testcase(_Case, Config) ->
    ok = zb_test_util:set_clock(undefined),
    Dir = zb_test_util:fresh_case(?config(context, Config), [{daily_dump, <<"0">>}]),
    [ {dir, Dir} | Config ].

end_per_testcase(_Case, Config) ->
    ok = zb_test_util:end_case(Config).

%% ---------------------------------------------------------------------------------------------

server_registered_per_site(Config) ->
    Pid = whereis(z_utils:name_for_site(mod_backup, ?SITE)),
    ?assert(is_pid(Pid)),
    ?assertEqual('mod_backup$bcksrv', z_utils:name_for_site(mod_backup, ?SITE)),
    ?assertNot(mod_backup:backup_in_progress(?config(context, Config))),
    ?assertNot(mod_backup:is_uploading(?config(context, Config))).

nightly_off_by_default(Config) ->
    Context = ?config(context, Config),
    ok = zb_test_util:set_clock(fixed({{2024, 1, 1}, {4, 0, 0}})),
    periodic(),
    ?assertNot(mod_backup:backup_in_progress(Context)).

nightly_before_and_after_3(Config) ->
    Context = ?config(context, Config),
    ok = m_config:set_value(mod_backup, daily_dump, <<"2">>, Context),
    zb_test_util:hold_queue(),
    ok = zb_test_util:set_clock(fixed({{2024, 1, 1}, {2, 59, 59}})),
    periodic(),
    ?assertNot(mod_backup:backup_in_progress(Context)),
    ok = zb_test_util:set_clock(fixed({{2024, 1, 1}, {3, 0, 0}})),
    periodic(),
    ?assert(mod_backup:backup_in_progress(Context)).

nightly_names_monday_to_saturday(Config) ->
    Context = ?config(context, Config),
    ok = m_config:set_value(mod_backup, daily_dump, <<"1">>, Context),
    Names = lists:map(
        fun(Day) ->
            zb_test_util:hold_queue(),
            ok = zb_test_util:set_clock(fixed({{2024, 1, Day}, {3, 30, 0}})),
            periodic(),
            [ #{ name := Name, is_running := true } | _ ] = mod_backup:list_backups(Context),
            zb_test_util:release_queue(),
            ok = zb_test_util:wait_idle(Context),
            Name
        end,
        lists:seq(1, 6)),
    ?assertEqual([ <<"(bcksrv-", (integer_to_binary(D))/binary, ")">> || D <- lists:seq(1, 6) ], Names).

nightly_sunday_weekly_name(Config) ->
    Context = ?config(context, Config),
    ok = m_config:set_value(mod_backup, daily_dump, <<"2">>, Context),
    Sunday = {2024, 1, 7},
    K = (calendar:date_to_gregorian_days(Sunday) div 7) rem 5,
    zb_test_util:hold_queue(),
    ok = zb_test_util:set_clock(fixed({Sunday, {23, 0, 0}})),
    periodic(),
    [ #{ name := Name } | _ ] = mod_backup:list_backups(Context),
    ?assertEqual(<<"(bcksrv-w", (integer_to_binary(K))/binary, ")">>, Name).

nightly_not_twice_a_day(Config) ->
    Context = ?config(context, Config),
    ok = m_config:set_value(mod_backup, daily_dump, <<"2">>, Context),
    Today = {2024, 1, 3},
    seed(<<"bcksrv-3">>, {Today, {0, 0, 0}}, Config),
    zb_test_util:hold_queue(),
    ok = zb_test_util:set_clock(fixed({Today, {10, 0, 0}})),
    periodic(),
    ?assertNot(mod_backup:backup_in_progress(Context)),
    % A set of yesterday 23:59:59 does not count for today.
    seed(<<"bcksrv-3">>, {{2024, 1, 2}, {23, 59, 59}}, Config),
    periodic(),
    ?assert(mod_backup:backup_in_progress(Context)).

one_backup_at_a_time(Config) ->
    Context = ?config(context, Config),
    zb_test_util:hold_queue(),
    ?assertEqual(ok, mod_backup:start_backup(false, Context)),
    ?assertEqual({error, in_progress}, mod_backup:start_backup(Context)),
    ?assertEqual({error, in_progress}, mod_backup:start_backup(true, Context)),
    % The nightly rule does not start a second one either.
    ok = m_config:set_value(mod_backup, daily_dump, <<"1">>, Context),
    periodic(),
    zb_test_util:release_queue(),
    ok = zb_test_util:wait_idle(Context),
    ?assertEqual(1, length([ S || #{ status := <<"started">> } = S <- zotonic_host:mqtt_messages(?SITE, ?TOPIC) ])).

running_entry_in_list(Config) ->
    Context = ?config(context, Config),
    seed(<<"bcksrv-2">>, {{2024, 1, 2}, {3, 0, 0}}, Config),
    seed(<<"bcksrv-w1">>, {{2023, 12, 31}, {3, 0, 0}}, Config),
    zb_test_util:hold_queue(),
    Start = {{2024, 1, 3}, {12, 0, 0}},
    ok = zb_test_util:set_clock(fixed(Start)),
    ok = mod_backup:start_backup(Context),
    [ Running | Sets ] = mod_backup:list_backups(Context),
    ?assertEqual(#{ name => <<"(bcksrv-3)">>, timestamp => Start, is_running => true }, Running),
    ?assertEqual([<<"bcksrv-2">>, <<"bcksrv-w1">>], [ N || #{ name := N } <- Sets ]),
    [ S2 | _ ] = Sets,
    ?assertEqual(#{
        name => <<"bcksrv-2">>,
        timestamp => {{2024, 1, 2}, {3, 0, 0}},
        is_encrypted => false,
        is_database_present => true,
        is_files_present => true,
        is_config_files_present => true,
        is_filestore_uploaded => false
    }, S2),
    ?assertEqual(mod_backup:list_backups(Context), z_notifier:first(backup_list, Context)).

mqtt_started_status(Config) ->
    Context = ?config(context, Config),
    zb_test_util:hold_queue(),
    ok = mod_backup:start_backup(false, Context),
    ?assertEqual([#{ status => <<"started">> }], zotonic_host:mqtt_messages(?SITE, ?TOPIC)),
    zb_test_util:release_queue(),
    ok = zb_test_util:wait_idle(Context),
    Statuses = [ S || #{ status := S } <- zotonic_host:mqtt_messages(?SITE, ?TOPIC) ],
    ct:pal("statuses: ~p", [Statuses]),
    ?assertEqual(<<"started">>, hd(Statuses)),
    ?assert(lists:member(lists:last(Statuses), [<<"completed">>, <<"error">>])).

%% pg_dump with a wrong password: the set is not registered and no file of it is left; the
%% other sets are untouched.
%% A failed backup is not registered, and the set of its name made earlier stays listed with
%% its files (stock Zotonic deleted it).
failed_set_not_registered(Config) ->
    Context = ?config(context, Config),
    Dir = ?config(dir, Config),
    seed(<<"bcksrv-2">>, {{2024, 1, 2}, {3, 0, 0}}, Config),
    seed(<<"bcksrv-3">>, {{2023, 12, 27}, {3, 0, 0}}, Config),
    Before = zb_test_util:dir_files(Dir),
    IndexBefore = backup_json_index:read(Dir),
    ok = zb_test_util:set_clock(fixed({{2024, 1, 3}, {12, 0, 0}})),
    ok = with_db_password(<<"wrong-password">>, fun() ->
        ok = mod_backup:start_backup(false, Context),
        ok = zb_test_util:wait_idle(Context)
    end),
    ?assertEqual(IndexBefore, backup_json_index:read(Dir)),
    ?assertEqual(Before, zb_test_util:dir_files(Dir)),
    ?assertEqual(<<"error">>, maps:get(status, lists:last(zotonic_host:mqtt_messages(?SITE, ?TOPIC)))).

standby_refuses_backups(_Config) ->
    {ok, Ctx} = zotonic_host:start_site(bckstandby, #{ environment => backup }),
    try
        ?assertEqual({error, env_backup}, mod_backup:start_backup(Ctx)),
        ?assertEqual({error, env_backup}, z_notifier:first(backup_start, Ctx)),
        ?assertNot(mod_backup:backup_in_progress(Ctx))
    after
        zotonic_host:stop_site(bckstandby)
    end.

tmp_files_removed_at_start(Config) ->
    Context = ?config(context, Config),
    Dir = ?config(dir, Config),
    seed(<<"bcksrv-4">>, {{2024, 1, 4}, {3, 0, 0}}, Config),
    Tmps = [ <<"bcksrv-5.sql.gz.tmp">>, <<"config-bcksrv-5.tar.gz.tmp">>, <<".pgpass-99.tmp">>, <<"backup.json.tmp">> ],
    [ ok = file:write_file(filename:join(Dir, T), <<"partial">>) || T <- Tmps ],
    New = zb_test_util:kill_and_restart(?SITE),
    ?assert(is_pid(New)),
    ?assertEqual([], [ F || F <- zb_test_util:dir_files(Dir), binary:longest_common_suffix([F, <<".tmp">>]) =:= 4 ]),
    ?assertEqual([<<"bcksrv-4">>], maps:keys(backup_json_index:read(Dir))),
    ?assertNot(mod_backup:backup_in_progress(Context)).

%% The VM died while a new set was put in place: `<file>.prev' holds the old file. Where
%% backup.json already names the new file (by its sha256) the commit finished and the old file
%% goes; elsewhere the old file is put back. Either way no `.prev' is left.
interrupted_commit_is_repaired_at_start(Config) ->
    Dir = ?config(dir, Config),
    Context = ?config(context, Config),
    Write = fun(F, Data) -> ok = file:write_file(filename:join(Dir, F), Data) end,
    Hex = fun zb_test_util:sha256_hex/1,
    Write(<<"bcksrv-5.sql.gz">>, <<"new dump">>),
    Write(<<"bcksrv-5.sql.gz.prev">>, <<"old dump">>),
    Write(<<"config-bcksrv-5.tar.gz">>, <<"new config">>),
    Write(<<"config-bcksrv-5.tar.gz.prev">>, <<"old config">>),
    {ok, _} = mod_backup:update_index(fun(I) -> I#{ <<"bcksrv-5">> => #{
        <<"timestamp">> => 1704423600,
        <<"database">> => <<"bcksrv-5.sql.gz">>, <<"database_hash">> => Hex(<<"old dump">>),
        <<"config_files">> => <<"config-bcksrv-5.tar.gz">>, <<"config_files_hash">> => Hex(<<"new config">>),
        <<"files">> => undefined, <<"files_hash">> => undefined,
        <<"is_filestore_uploaded">> => false, <<"is_encrypted">> => false } } end, Context),
    New = zb_test_util:kill_and_restart(?SITE),
    ?assert(is_pid(New)),
    ?assertEqual({ok, <<"old dump">>}, file:read_file(filename:join(Dir, <<"bcksrv-5.sql.gz">>))),
    ?assertEqual({ok, <<"new config">>}, file:read_file(filename:join(Dir, <<"config-bcksrv-5.tar.gz">>))),
    ?assertEqual([<<"backup.json">>, <<"bcksrv-5.sql.gz">>, <<"config-bcksrv-5.tar.gz">>], zb_test_util:dir_files(Dir)).

%% The stock module's backup_create functions: make_backup/4 makes and registers a set (its
%% result is the new index), the admin file is read and changed through the server, and
%% pg_passfile/2 writes a 0600 passfile.
stock_backup_create_functions(Config) ->
    Context = ?config(context, Config),
    Dir = ?config(dir, Config),
    {ok, Index} = backup_create:make_backup({{2024, 2, 1}, {4, 0, 0}}, <<"bcksrv-stock">>, false, Context),
    #{ <<"bcksrv-stock">> := Entry } = Index,
    ?assertEqual(1706760000, maps:get(<<"timestamp">>, Entry)),
    ?assertEqual(<<"bcksrv-stock.sql.gz">>, maps:get(<<"database">>, Entry)),
    ?assert(filelib:is_regular(filename:join(Dir, <<"bcksrv-stock.sql.gz">>))),
    ?assertEqual(Index, backup_create:read_admin_file(Context)),
    {ok, Json} = backup_create:read_json_file(filename:join(Dir, <<"backup.json">>)),
    ?assertEqual([<<"bcksrv-stock">>], maps:keys(Json)),
    ?assertMatch({error, enoent}, backup_create:read_json_file(filename:join(Dir, <<"nope.json">>))),
    {ok, Index2} = backup_create:update_admin_file(fun(I) -> maps:remove(<<"bcksrv-stock">>, I) end, Context),
    ?assertEqual(#{}, Index2),
    ?assertEqual(#{}, backup_create:read_admin_file(Context)),
    {ok, PassFile} = backup_create:pg_passfile(z_db_pool:get_database_options(Context), Context),
    {ok, #file_info{ mode = Mode }} = file:read_file_info(PassFile),
    ?assertEqual(8#600, Mode band 8#777),
    ok = file:delete(PassFile).

%% `bin/zotonic backup SITE list|start|restore' as Zotonic's launcher runs them: rpc to
%% z:is_module_enabled/2 and z:n1/2 with the site's plain (anonymous) context.
launcher_backup_commands_through_z_n1(Config) ->
    Context = ?config(context, Config),
    Dir = ?config(dir, Config),
    ?assert(z:is_module_enabled(mod_backup, ?SITE)),
    ?assertEqual([], z:n1(backup_list, ?SITE)),
    ?assertEqual(ok, z:n1(backup_start, ?SITE)),
    ?assertEqual({error, in_progress}, z:n1(backup_start, ?SITE)),
    ok = zb_test_util:wait_idle(Context),
    [#{ name := Name, is_database_present := true }] = z:n1(backup_list, ?SITE),
    ?assertEqual({error, unknown_backup}, z:n1({backup_restore, <<"nosuchset">>, [database, files]}, ?SITE)),
    ?assertEqual(ok, z:n1({backup_restore, Name, [files]}, ?SITE)),
    ?assertEqual([Name], maps:keys(backup_json_index:read(Dir))).

%% A set named <site>-7 older than a week is dropped when a new set is registered.
old_sunday_set_dropped(Config) ->
    Context = ?config(context, Config),
    Dir = ?config(dir, Config),
    seed(<<"bcksrv-7">>, {{2023, 12, 24}, {3, 0, 0}}, Config),
    {ok, _} = mod_backup:update_index(fun(I) -> I end, Context),
    ok = zb_test_util:set_clock(fixed({{2024, 1, 2}, {3, 0, 0}})),
    ok = mod_backup:start_backup(false, Context),
    ok = zb_test_util:wait_idle(Context),
    Index = backup_json_index:read(Dir),
    ?assertEqual([<<"bcksrv-2">>], maps:keys(Index)),
    ?assertNot(filelib:is_file(filename:join(Dir, <<"bcksrv-7.sql.gz">>))).

model_acl(Config) ->
    Keys = [ <<"allow_manual_backup">>, <<"allow_backup_download">>, <<"daily_dump">>,
             <<"encrypt_backups">>, <<"has_encrypt_password">>, <<"list_backups">>,
             <<"is_backup_in_progress">>, <<"directory">> ],
    Anon = zotonic_host:context(?SITE, anonymous),
    Editor = zotonic_host:context(?SITE, editor),
    Admin = zotonic_host:context(?SITE, admin),
    lists:foreach(
        fun(K) ->
            ?assertEqual({error, eacces}, m_backup:m_get([K], undefined, Anon)),
            ?assertEqual({error, eacces}, m_backup:m_get([K], undefined, Editor)),
            ?assertMatch({ok, {_, [<<"x">>]}}, m_backup:m_get([K, <<"x">>], undefined, Admin))
        end,
        Keys),
    ?assertEqual({ok, {false, []}}, m_backup:m_get([<<"admin_panel">>], undefined, Anon)),
    ?assertEqual({ok, {<<"0">>, []}}, m_backup:m_get([<<"daily_dump">>], undefined, Admin)),
    ?assertEqual({ok, {?config(dir, Config), []}}, m_backup:m_get([<<"directory">>], undefined, Admin)),
    ?assertEqual({error, unknown_path}, m_backup:m_get([<<"nope">>], undefined, Admin)).

%% The admin's "Start backup now" postback: only users of mod_backup who may write, only when
%% manual backups are allowed, one at a time; each refusal is an error growl and starts nothing.
action_acl(Config) ->
    Context = ?config(context, Config),
    Anon = zotonic_host:context(?SITE, anonymous),
    Editor = zotonic_host:context(?SITE, editor),
    Admin = zotonic_host:context(?SITE, admin),
    Start = fun(IsFull, Ctx) ->
        Before = length(zotonic_host:render_log(?SITE)),
        _ = action_backup_backup_start:event(#postback{ message = {backup_start, IsFull} }, Ctx),
        [ Type || {growl, _Text, Type, _} <- lists:nthtail(Before, zotonic_host:render_log(?SITE)) ]
    end,
    ?assertEqual([error], Start(true, Anon)),
    ?assertEqual([error], Start(true, Editor)),
    ?assertEqual([error], Start(true, z_acl:set_read_only(true, Admin))),
    ok = m_config:set_value(mod_backup, allow_manual_backup, <<"false">>, Context),
    ?assertEqual([error], Start(true, Admin)),
    ?assertNot(mod_backup:backup_in_progress(Context)),
    ok = m_config:set_value(mod_backup, allow_manual_backup, <<"true">>, Context),
    zb_test_util:hold_queue(),
    ?assertEqual([notice], Start(false, Admin)),
    ?assert(mod_backup:backup_in_progress(Context)),
    ?assertEqual([error], Start(false, Admin)),
    ?assertNotEqual([], zotonic_host:mqtt_messages(?SITE, ?TOPIC)).

download_callbacks(Config) ->
    Context = ?config(context, Config),
    Dir = ?config(dir, Config),
    seed(<<"bcksrv-2">>, {{2024, 1, 2}, {3, 0, 0}}, Config),
    ok = file:write_file(filename:join(Dir, <<"stray.sql.gz">>), <<"x">>),
    Anon = zotonic_host:context(?SITE, anonymous),
    Editor = zotonic_host:context(?SITE, editor),
    Admin = zotonic_host:context(?SITE, admin),
    Good = [ <<"bcksrv-2.sql.gz">>, <<"config-bcksrv-2.tar.gz">>, <<"bcksrv-2.tar.gz">> ],
    Bad = [ <<"stray.sql.gz">>, <<"backup.json">>, <<"../bcksrv-2.sql.gz">>, <<"x/../bcksrv-2.sql.gz">>,
            <<"/etc/passwd">>, <<"..">>, <<".pgpass">>, <<>> ],
    lists:foreach(
        fun(F) ->
            ?assertEqual({true, filename:join(Dir, F)}, mod_backup:file_exists(F, Admin)),
            ?assertNot(mod_backup:file_forbidden(F, Admin)),
            ?assert(mod_backup:file_forbidden(F, Anon)),
            ?assert(mod_backup:file_forbidden(F, Editor))
        end,
        Good),
    lists:foreach(
        fun(F) ->
            ?assertEqual(false, mod_backup:file_exists(F, Admin)),
            ?assert(mod_backup:file_forbidden(F, Admin))
        end,
        Bad),
    ok = m_config:set_value(mod_backup, allow_backup_download, <<"false">>, Context),
    ?assert(mod_backup:file_forbidden(hd(Good), Admin)),
    ok = m_config:set_value(mod_backup, allow_backup_download, <<"true">>, Context).

%% The download dispatch rule as Zotonic serves it: controller_file looks the name up through
%% file_exists/2 and then asks file_forbidden/2 with the request's `path' (undefined for this
%% rule). An admin gets the file, others 403, names not in backup.json 404.
download_through_controller_file_as_zotonic_calls_it(Config) ->
    Context = ?config(context, Config),
    Dir = ?config(dir, Config),
    seed(<<"bcksrv-2">>, {{2024, 1, 2}, {3, 0, 0}}, Config),
    ok = file:write_file(filename:join(Dir, <<"stray.sql.gz">>), <<"x">>),
    {ok, Rules} = file:consult(filename:join([code:priv_dir(zotonic_mod_backup), "dispatch", "backup"])),
    [Opts] = [ O || {backup_download, ["backup", "download", '*'], controller_file, O} <- hd(Rules) ],
    Anon = zotonic_host:context(?SITE, anonymous),
    Editor = zotonic_host:context(?SITE, editor),
    Admin = zotonic_host:context(?SITE, admin),
    File = <<"bcksrv-2.sql.gz">>,
    ?assertEqual({200, filename:join(Dir, File)}, controller_file:get(Opts, File, Admin)),
    ?assertEqual({200, filename:join(Dir, <<"bcksrv-2.tar.gz">>)},
                 controller_file:get(Opts, <<"bcksrv-2.tar.gz">>, Admin)),
    ?assertEqual({403, forbidden}, controller_file:get(Opts, File, Anon)),
    ?assertEqual({403, forbidden}, controller_file:get(Opts, File, Editor)),
    ?assertEqual({404, not_found}, controller_file:get(Opts, <<"stray.sql.gz">>, Admin)),
    ?assertEqual({404, not_found}, controller_file:get(Opts, <<"backup.json">>, Admin)),
    ?assertEqual({404, not_found}, controller_file:get(Opts, <<"../bcksrv-2.sql.gz">>, Admin)),
    ok = m_config:set_value(mod_backup, allow_backup_download, <<"false">>, Context),
    ?assertEqual({403, forbidden}, controller_file:get(Opts, File, Admin)),
    ok = m_config:set_value(mod_backup, allow_backup_download, <<"true">>, Context).

encrypt_generates_password(Config) ->
    Context = ?config(context, Config),
    ok = m_config:set_value(mod_backup, backup_encrypt_password, <<>>, Context),
    ok = m_config:set_value(mod_backup, encrypt_backups, <<"true">>, Context),
    % #m_config_update{} is notified asynchronously, as in Zotonic.
    Password = wait_for_password(Context, 100),
    ct:pal("generated password: ~s", [Password]),
    ?assertMatch({match, _}, re:run(Password, <<"^[A-Za-z0-9]{5}-[A-Za-z0-9]{5}-[A-Za-z0-9]{5}-[A-Za-z0-9]{4}..$">>)),
    Admin = zotonic_host:context(?SITE, admin),
    ?assertEqual({ok, {true, []}}, m_backup:m_get([<<"has_encrypt_password">>], undefined, Admin)),
    % Switching off and on keeps the password.
    ok = m_config:set_value(mod_backup, encrypt_backups, <<"false">>, Context),
    ok = m_config:set_value(mod_backup, encrypt_backups, <<"true">>, Context),
    timer:sleep(200),
    ?assertEqual(Password, z_convert:to_binary(m_config:get_value(mod_backup, backup_encrypt_password, Context))),
    ok = m_config:set_value(mod_backup, encrypt_backups, <<"false">>, Context).

wait_for_password(_Context, 0) ->
    <<>>;
wait_for_password(Context, N) ->
    case z_convert:to_binary(m_config:get_value(mod_backup, backup_encrypt_password, Context)) of
        <<>> -> timer:sleep(20), wait_for_password(Context, N - 1);
        Password -> Password
    end.

%% With a cloud filestore: no media archive, and after the set the database and config files
%% and then backup.json are uploaded, the set marked uploaded; daily_dump 1 acts as 2.
filestore_upload(Config) ->
    Context = ?config(context, Config),
    Dir = ?config(dir, Config),
    ok = zotonic_host:filestore(?SITE, true),
    try
        ok = m_config:set_value(mod_backup, daily_dump, <<"1">>, Context),
        Admin = zotonic_host:context(?SITE, admin),
        ?assertEqual({ok, {<<"2">>, []}}, m_backup:m_get([<<"daily_dump">>], undefined, Admin)),
        ok = mod_backup:start_backup(true, Context),
        ok = zb_test_util:wait_idle(Context),
        [{Name, Entry}] = maps:to_list(backup_json_index:read(Dir)),
        ?assertEqual(undefined, maps:get(<<"files">>, Entry)),
        ?assertEqual(true, maps:get(<<"is_filestore_uploaded">>, Entry)),
        Remote = filename:join(zotonic_host:filestore_dir(?SITE), "backup"),
        {ok, RemoteFiles} = file:list_dir(Remote),
        ?assertEqual(lists:sort([ "backup.json", binary_to_list(Name) ++ ".sql.gz",
                                  "config-" ++ binary_to_list(Name) ++ ".tar.gz" ]),
                     lists:sort(RemoteFiles)),
        {ok, RemoteIndex} = backup_json_index:read_file(filename:join(Remote, "backup.json")),
        ?assertEqual(true, maps:get(<<"is_filestore_uploaded">>, maps:get(Name, RemoteIndex))),
        Uploads = [ R || {filestore, upload, R} <- zotonic_host:render_log(?SITE) ],
        ?assertEqual(<<"backup/backup.json">>, lists:last(Uploads)),
        Statuses = [ S || #{ status := S } <- zotonic_host:mqtt_messages(?SITE, ?TOPIC) ],
        ?assertEqual([<<"completed">>, <<"uploaded">>], lists:nthtail(length(Statuses) - 2, Statuses)),
        ?assertMatch([ #{ is_filestore_uploaded := true } ], mod_backup:list_backups(Context))
    after
        zotonic_host:filestore(?SITE, false)
    end.

admin_menu(Config) ->
    Context = ?config(context, Config),
    Items = mod_backup:observe_admin_menu({admin_menu}, [], Context),
    ?assertEqual(3, length(Items)),
    ?assertEqual([admin_backup, admin_backup_deleted],
                 [ element(2, I) || I <- Items, element(1, I) =:= menu_item ]).

%% ---------------------------------------------------------------------------------------------

fixed(DT) -> fun() -> DT end.

%% Trigger the hourly check now; the call after it returns once the message is handled.
periodic() ->
    Name = z_utils:name_for_site(mod_backup, ?SITE),
    Name ! periodic_backup,
    _ = sys:get_state(Name),
    ok.

%% Register a set with real (dummy) files.
seed(Name, DT, Config) ->
    Context = ?config(context, Config),
    Dir = ?config(dir, Config),
    Files = [ <<Name/binary, ".sql.gz">>, <<"config-", Name/binary, ".tar.gz">>, <<Name/binary, ".tar.gz">> ],
    [ ok = file:write_file(filename:join(Dir, F), F) || F <- Files ],
    Ts = calendar:datetime_to_gregorian_seconds(DT) - 62167219200,
    Entry = #{
        <<"timestamp">> => Ts,
        <<"database">> => lists:nth(1, Files), <<"database_hash">> => <<"00">>,
        <<"config_files">> => lists:nth(2, Files), <<"config_files_hash">> => <<"00">>,
        <<"files">> => lists:nth(3, Files), <<"files_hash">> => <<"00">>,
        <<"is_filestore_uploaded">> => false,
        <<"is_encrypted">> => false
    },
    {ok, _} = mod_backup:update_index(fun(I) -> I#{ Name => Entry } end, Context),
    ok.

%% Run Fun while the site's database options carry another password (what pg_dump gets). The
%% host keeps the options in the state of its pool process; the element equal to the options
%% is swapped, whatever the layout of that state.
with_db_password(Password, Fun) ->
    Context = zotonic_host:context(?SITE, sudo),
    DbOpts = z_db_pool:get_database_options(Context),
    DbOpts1 = lists:keystore(dbpassword, 1, DbOpts, {dbpassword, Password}),
    Pool = zotonic_host_db_pool:name(?SITE),
    Swap = fun(From, To) ->
        fun(S) -> list_to_tuple([ case E of From -> To; _ -> E end || E <- tuple_to_list(S) ]) end
    end,
    _ = sys:replace_state(Pool, Swap(DbOpts, DbOpts1)),
    DbOpts1 = z_db_pool:get_database_options(Context),
    try
        Fun()
    after
        _ = sys:replace_state(Pool, Swap(DbOpts1, DbOpts))
    end.
