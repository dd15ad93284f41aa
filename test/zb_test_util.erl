%% @doc Helpers the suites share: waiting, the state of a site's mod_backup server, the
%% node's backup queue, and the files of a backup dir. One home each, so the suites agree on
%% what "idle" or "a .tmp file" means.
%% @end
-module(zb_test_util).

-export([
    wait_until/1,
    wait_until/3,
    wait_idle/1,
    set_clock/1,
    kill_and_restart/1,
    hold_queue/0,
    release_queue/0,
    dir_files/1,
    is_tmp/1,
    sha256_file/1
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

%% @doc A name of a file still being written (or left by an interrupted write).
-spec is_tmp(binary()) -> boolean().
is_tmp(Name) ->
    binary:longest_common_suffix([Name, <<".tmp">>]) =:= 4.

%% @doc sha256 of a file, lower-case hex, as backup.json records it.
-spec sha256_file(file:filename_all()) -> binary().
sha256_file(File) ->
    {ok, Bin} = file:read_file(File),
    string:lowercase(binary:encode_hex(crypto:hash(sha256, Bin))).
