%% @doc Helpers the suites share: waiting, the state of a site's mod_backup server, the
%% node's backup queue, and the files of a backup dir. One home each, so the suites agree on
%% what "idle" or "a .tmp file" means.
%% @end
-module(zb_test_util).

-export([
    wait_until/1,
    wait_until/3,
    wait_idle/1,
    start_site/2,
    end_case/1,
    set_clock/1,
    kill_and_restart/1,
    hold_queue/0,
    release_queue/0,
    dir_files/1,
    empty_backup_dir/1,
    fresh_case/2,
    is_tmp/1,
    sha256_hex/1,
    sha256_file/1,
    memo/2,
    populate_database/1,
    make_media_tree/2,
    count_files/1
]).

%% @doc Fun() is true within 60 s (polled every 100 ms), or `{error, timeout}'.
-spec wait_until(fun(() -> boolean())) -> ok | {error, timeout}.
wait_until(Fun) ->
    wait_until(Fun, 600, 100).

-spec wait_until(fun(() -> boolean()), non_neg_integer(), non_neg_integer()) -> ok | {error, timeout}.
wait_until(_Fun, 0, _SleepMs) ->
    {error, timeout};
wait_until(Fun, Tries, SleepMs) ->
    case Fun() of
        true -> ok;
        false -> timer:sleep(SleepMs), wait_until(Fun, Tries - 1, SleepMs)
    end.

%% @doc No backup and no upload runs for the context's site (within 5 minutes).
-spec wait_idle(z:context()) -> ok | {error, timeout}.
wait_idle(Context) ->
    wait_until(fun() -> not (mod_backup:backup_in_progress(Context) orelse mod_backup:is_uploading(Context)) end,
               6000, 50).

%% @doc The start of a suite on one site: Site started with its modules (mod_backup), its
%% context under `context' in the returned Config.
-spec start_site(atom(), proplists:proplist()) -> proplists:proplist().
start_site(Site, Config) ->
    {ok, Context} = zotonic_host:start_site(Site, #{}),
    [ {context, Context} | Config ].

%% @doc The end of a test case on the site under `context' in Config: the node's backup queue
%% released (when a case held it) and the site idle again.
-spec end_case(proplists:proplist()) -> ok | {error, timeout}.
end_case(Config) ->
    release_queue(),
    wait_idle(proplists:get_value(context, Config)).

%% @doc Put mod_backup's clock on a fixed time (a fun returning the UTC datetime), or back on
%% the system clock with undefined (the app env key `clock').
-spec set_clock(fun(() -> calendar:datetime()) | undefined) -> ok.
set_clock(undefined) ->
    application:unset_env(zotonic_mod_backup, clock);
set_clock(Clock) when is_function(Clock, 0) ->
    application:set_env(zotonic_mod_backup, clock, Clock).

%% @doc Kill the site's mod_backup server (no terminate/2 runs) and start it again, as Zotonic's
%% module manager does for a crashed module; returns the new server.
-spec kill_and_restart(atom()) -> pid().
kill_and_restart(Site) ->
    Name = z_utils:name_for_site(mod_backup, Site),
    Old = whereis(Name),
    MRef = monitor(process, Old),
    exit(Old, kill),
    receive {'DOWN', MRef, process, Old, _} -> ok end,
    ok = z_module_manager:start_modules(Site, [mod_backup], z_module_manager:scan()),
    New = whereis(Name),
    true = is_pid(New) andalso New =/= Old,
    New.

%% @doc Hold the node's backup queue (Zotonic's jobs queue mod_backup), as a backup of another
%% site would, until release_queue/0.
-spec hold_queue() -> ok.
hold_queue() ->
    Self = self(),
    Pid = spawn(fun() -> jobs:run(mod_backup, fun() -> Self ! queue_held, receive release -> ok end end) end),
    register(zb_queue_holder, Pid),
    receive queue_held -> ok after 5000 -> error(queue_not_held) end.

-spec release_queue() -> ok.
release_queue() ->
    case whereis(zb_queue_holder) of
        undefined -> ok;
        Pid -> unregister(zb_queue_holder), Pid ! release, ok
    end.

%% @doc The names in a directory, sorted, as binaries.
-spec dir_files(file:filename_all()) -> [binary()].
dir_files(Dir) ->
    {ok, Names} = file:list_dir(Dir),
    lists:sort([ unicode:characters_to_binary(N) || N <- Names ]).

%% @doc The site's backup directory with every regular file in it deleted (a case starts
%% without sets); the directory itself.
-spec empty_backup_dir(z:context()) -> file:filename_all().
empty_backup_dir(Context) ->
    Dir = backup_create:dir(Context),
    {ok, Names} = file:list_dir(Dir),
    [ ok = file:delete(filename:join(Dir, N)) || N <- Names, filelib:is_regular(filename:join(Dir, N)) ],
    Dir.

%% @doc The start of a test case of a backup suite: no backup running, no sets in the site's
%% backup dir (which is returned), the mod_backup config `Settings' set, no MQTT messages left.
-spec fresh_case(z:context(), [{atom(), binary()}]) -> file:filename_all().
fresh_case(Context, Settings) ->
    ok = wait_idle(Context),
    Dir = empty_backup_dir(Context),
    [ ok = m_config:set_value(mod_backup, Key, Value, Context) || {Key, Value} <- Settings ],
    zotonic_host:mqtt_flush(z_context:site(Context)),
    Dir.

%% @doc A name of a file still being written (or left by an interrupted write).
-spec is_tmp(binary()) -> boolean().
is_tmp(Name) ->
    binary:longest_common_suffix([Name, <<".tmp">>]) =:= 4.

%% @doc sha256 of data, lower-case hex, as backup.json records it: OTP's, an oracle apart from
%% the engine under test.
-spec sha256_hex(iodata()) -> binary().
sha256_hex(Data) ->
    string:lowercase(binary:encode_hex(crypto:hash(sha256, Data))).

%% @doc sha256_hex/1 of a file's content.
-spec sha256_file(file:filename_all()) -> binary().
sha256_file(File) ->
    {ok, Bin} = file:read_file(File),
    sha256_hex(Bin).

%% @doc The value under Key in persistent_term, made by Make() on first use (the benchmarks'
%% generated vocabularies).
-spec memo(term(), fun(() -> T)) -> T.
memo(Key, Make) ->
    case persistent_term:get(Key, undefined) of
        undefined ->
            Value = Make(),
            persistent_term:put(Key, Value),
            Value;
        Value ->
            Value
    end.

%% @doc A site database with some weight: 200,000 rows of text and bytea, and a table with
%% mixed-case and reserved names (what pg_dump must quote).
-spec populate_database(z:context()) -> ok.
populate_database(Context) ->
    z_db:q("create table backup_test_rows (id serial primary key, title text, body text, n bigint,
                                            created timestamptz default now(), data bytea)", Context),
    z_db:q("insert into backup_test_rows (title, body, n, data)
            select 'row ' || i, repeat(md5(i::text), 20), i * 7, decode(md5(i::text), 'hex')
            from generate_series(1, 200000) as i", Context),
    z_db:q("create table \"Mixed Case\" (\"Key\" text primary key, \"select\" int)", Context),
    z_db:q(<<"insert into \"Mixed Case\" values ('a', 1), ('b''s', 2), ('ç', 3)"/utf8>>, Context),
    ok.

%% @doc About MiB MiB of media under Archive/2024/MM/DD: mostly incompressible (like JPEG/MP4),
%% a quarter text. Deterministic names and sizes; returns the bytes written.
-spec make_media_tree(file:filename_all(), pos_integer()) -> non_neg_integer().
make_media_tree(Archive, MiB) ->
    rand:seed(exsss, {1, 2, 3}),
    Total = MiB * 1048576,
    % Mostly incompressible (like JPEG/MP4), some text.
    make_files(Archive, 0, 0, Total).

make_files(_Archive, _N, Bytes, Total) when Bytes >= Total ->
    Bytes;
make_files(Archive, N, Bytes, Total) ->
    Dir = filename:join([Archive, "2024", io_lib:format("~2..0B", [N rem 12 + 1]), io_lib:format("~2..0B", [N rem 28 + 1])]),
    ok = filelib:ensure_path(Dir),
    {Name, Data} = case N rem 4 of
        3 ->
            Text = iolist_to_binary([ io_lib:format("line ~p of file ~p: lorem ipsum dolor sit amet~n", [L, N])
                                      || L <- lists:seq(1, 400) ]),
            {io_lib:format("doc-~p.txt", [N]), Text};
        _ ->
            {io_lib:format("img-~p.jpg", [N]), crypto:strong_rand_bytes(256 * 1024 + rand:uniform(512 * 1024))}
    end,
    ok = file:write_file(filename:join(Dir, Name), Data),
    make_files(Archive, N + 1, Bytes + byte_size(Data), Total).

%% @doc The number of regular files below Dir.
-spec count_files(file:filename_all()) -> non_neg_integer().
count_files(Dir) ->
    filelib:fold_files(Dir, ".*", true, fun(_, N) -> N + 1 end, 0).
