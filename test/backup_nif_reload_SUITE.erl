%% @doc Upgrading the NIF in a running VM, the way Zotonic does it: a second build of the
%% library is compiled, backup_nif is recompiled for it, and the VM runs what `z:ld()' runs
%% (`code:purge/1' then `code:load_file/1' of every changed module). The new build must load
%% beside the old one: a job started on the old build finishes there, new calls go to the new
%% build, and the old build's module is purged once it is idle -- all without a VM restart.
%%
%% Runs in a peer VM whose code path holds only a copy of the app (ebin + priv), so the test
%% VM's own library is never touched.
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

-module(backup_nif_reload_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1]).
-export([
    z_ld_of_a_new_build_loads_it_beside_the_running_one/1,
    reloading_the_same_build_keeps_the_loaded_library/1
]).
%% Run in the peer.
-export([run_slow_job/3, hold_dicts/0, held_dicts_check/1, new_dicts_round_trip/1]).

all() ->
    [
        z_ld_of_a_new_build_loads_it_beside_the_running_one,
        reloading_the_same_build_keeps_the_loaded_library
    ].

init_per_suite(Config) ->
    Config.

end_per_suite(_Config) ->
    ok.

%% ---------------------------------------------------------------------------------------------

z_ld_of_a_new_build_loads_it_beside_the_running_one(_Config) ->
    Build1 = backup_nif:build_id(),
    {AppDir, Peer} = start_peer_with_app_copy(),
    try
        ?assertEqual(Build1, peer:call(Peer, backup_nif, build_id, [])),
        % A job on the first build that runs until the flag file exists, owned by a process of
        % the peer.
        Out = filename:join(AppDir, "slow.gz"),
        Flag = filename:join(AppDir, "flag"),
        ResultFile = filename:join(AppDir, "slow.result"),
        _ = peer:call(Peer, erlang, spawn, [?MODULE, run_slow_job, [Out, Flag, ResultFile]]),
        ok = zb_test_util:wait_until(fun() -> peer:call(Peer, backup_nif, job_count, []) =:= 1 end),
        % A site's revision dictionaries, made by the first build and held in the peer.
        ok = peer:call(Peer, ?MODULE, hold_dicts, []),
        Props = term_to_binary(#{ <<"title">> => <<"reload">> }),

        % A second build: its own library name, and backup_nif recompiled to load it.
        Build2 = <<"reloadtest", (integer_to_binary(erlang:unique_integer([positive])))/binary>>,
        ok = build_library(Build2, AppDir),
        ok = recompile_backup_nif(Build2, AppDir),

        % What z:ld() does for a changed module.
        _ = peer:call(Peer, code, purge, [backup_nif]),
        {module, backup_nif} = peer:call(Peer, code, load_file, [backup_nif]),

        % New calls go to the new build; the old one still runs its job.
        ?assertEqual(Build2, peer:call(Peer, backup_nif, build_id, [])),
        ?assertEqual(true, peer:call(Peer, backup_nif, is_loaded, [])),
        Builds = [ B || {B, _} <- peer:call(Peer, backup_nif, loaded_builds, []) ],
        ?assertEqual(lists:sort([Build1, Build2]), Builds),
        ?assertEqual(1, peer:call(Peer, backup_nif, job_count, [])),
        Digest = peer:call(Peer, backup_nif, file_digest, [filename:join(AppDir, "ebin/backup_nif.beam")]),
        % The old build's dictionaries are no longer current (their holder replaces them), but
        % work while that build is loaded; a new set is of the new build.
        ?assertMatch({false, {ok, _}}, peer:call(Peer, ?MODULE, held_dicts_check, [Props])),
        ?assertEqual({true, {ok, Props}}, peer:call(Peer, ?MODULE, new_dicts_round_trip, [Props])),
        ?assertMatch({ok, #{ sha256 := _ }}, Digest),

        % The old job ends normally, on the old build.
        ok = file:write_file(Flag, <<>>),
        ok = zb_test_util:wait_until(fun() -> filelib:is_regular(ResultFile) end),
        {ok, ResultBin} = file:read_file(ResultFile),
        ?assertMatch({ok, #{ sha256 := _ }}, binary_to_term(ResultBin)),
        {0, Gunzip} = zb_test_cmd:cmd(["gzip", "-dc", Out]),
        ?assertEqual(<<"done\n">>, Gunzip),

        % Then the old build's module is purged; the new one keeps working.
        ok = zb_test_util:wait_until(fun() ->
            [ B || {B, _} <- peer:call(Peer, backup_nif, loaded_builds, []) ] =:= [Build2]
        end),
        OldModule = binary_to_atom(<<"backup_nif_", Build1/binary>>, utf8),
        ?assertNot(peer:call(Peer, erlang, module_loaded, [OldModule])),
        ?assertEqual(0, peer:call(Peer, backup_nif, job_count, [])),
        Out2 = filename:join(AppDir, "after.gz"),
        ?assertMatch({ok, #{ sha256 := _ }},
                     peer:call(Peer, backup_archive, gzip_command,
                               [<<"/bin/echo">>, [<<"again">>], [], Out2, #{}], 20000)),
        {0, <<"again\n">>} = zb_test_cmd:cmd(["gzip", "-dc", Out2])
    after
        catch peer:stop(Peer)
    end.

%% Zotonic reloads every module whose beam changed; a rebuild that gives the same build id
%% (same sources) gives the same library, which stays loaded and is not loaded twice.
reloading_the_same_build_keeps_the_loaded_library(_Config) ->
    Build1 = backup_nif:build_id(),
    {_AppDir, Peer} = start_peer_with_app_copy(),
    try
        ?assertEqual(Build1, peer:call(Peer, backup_nif, build_id, [])),
        _ = peer:call(Peer, code, purge, [backup_nif]),
        {module, backup_nif} = peer:call(Peer, code, load_file, [backup_nif]),
        ?assertEqual(Build1, peer:call(Peer, backup_nif, build_id, [])),
        ?assertMatch([{Build1, _}], peer:call(Peer, backup_nif, loaded_builds, []))
    after
        catch peer:stop(Peer)
    end.

%% ---------------------------------------------------------------------------------------------

%% @private In the peer: a job that runs until Flag exists; its result is written to ResultFile
%% (the peer is not connected by distribution, so it cannot send to the test process).
%% In the peer: a process holding a set of revision dictionaries made now. A resource cannot
%% leave its node (a copy sent to this node and back is a plain reference), so the checks run
%% there too.
hold_dicts() ->
    Self = self(),
    Pid = spawn(fun() ->
        Dicts = backup_nif:revision_dicts_new(),
        Self ! {held, self()},
        dicts_holder(Dicts)
    end),
    receive {held, Pid} -> true = register(zb_dicts_holder, Pid), ok end.

dicts_holder(Dicts) ->
    receive
        {From, Fun} -> From ! {dicts, Fun(Dicts)}, dicts_holder(Dicts)
    end.

%% In the peer: whether the held set is of the current build, and a keyframe written with it.
held_dicts_check(Props) ->
    zb_dicts_holder ! {self(), fun(D) -> {backup_nif:is_current(D), backup_nif:revision_keyframe(D, 0, Props)} end},
    receive {dicts, Result} -> Result after 10000 -> timeout end.

%% In the peer: a new set is current, and a keyframe written with it reads back.
new_dicts_round_trip(Props) ->
    Dicts = backup_nif:revision_dicts_new(),
    {ok, Blob} = backup_nif:revision_keyframe(Dicts, 0, Props),
    {backup_nif:is_current(Dicts), backup_nif:revision_reconstruct(Dicts, [Blob])}.

run_slow_job(Out, Flag, ResultFile) ->
    Script = <<"while [ ! -e \"$1\" ]; do sleep 0.05; done; echo done">>,
    Result = backup_archive:gzip_command(<<"/bin/sh">>, [<<"-c">>, Script, <<"sh">>, Flag], [],
                                         Out, #{}),
    ok = file:write_file(ResultFile, term_to_binary(Result)).

%% A copy of the app as Zotonic would have it (ebin with the .app, priv/native with the
%% library), in a peer VM with a short purge grace.
start_peer_with_app_copy() ->
    Root = filename:join(["/tmp", "zb-nif-reload-" ++ os:getpid() ++ "-"
                                  ++ integer_to_list(erlang:unique_integer([positive]))]),
    _ = file:del_dir_r(Root),
    AppDir = filename:join(Root, "zotonic_mod_backup"),
    Ebin = filename:join(AppDir, "ebin"),
    Native = filename:join([AppDir, "priv", "native"]),
    ok = filelib:ensure_dir(filename:join(Ebin, "x")),
    ok = filelib:ensure_dir(filename:join(Native, "x")),
    OrigEbin = filename:dirname(code:which(backup_nif)),
    lists:foreach(
        fun(F) -> {ok, _} = file:copy(F, filename:join(Ebin, filename:basename(F))) end,
        filelib:wildcard(filename:join(OrigEbin, "*.{beam,app}"))),
    Lib = backup_nif:library_path(),
    {ok, _} = file:copy(Lib, filename:join(Native, filename:basename(Lib))),
    TestEbin = filename:dirname(code:which(?MODULE)),
    {ok, Peer, _Node} = peer:start_link(#{
        name => peer:random_name(),
        connection => standard_io,
        args => [ "-pa", Ebin, "-pa", TestEbin ]
    }),
    ok = peer:call(Peer, application, load, [zotonic_mod_backup]),
    ok = peer:call(Peer, application, set_env, [zotonic_mod_backup, nif_purge_grace_ms, 200]),
    {AppDir, Peer}.

%% build_nif.sh builds the NIF crate again under another build name (only that crate is
%% recompiled, in the profile and with the features of the first build); the library goes into
%% the copy's priv/native as build_nif.sh would install it.
build_library(Build, AppDir) ->
    Root = project_root(),
    Cmd = "cd '" ++ Root ++ "' && BACKUP_NIF_BUILD=" ++ binary_to_list(Build)
          ++ " sh native/build_nif.sh --library-only 2>&1; echo \"exit=$?\"",
    Output = os:cmd(Cmd),
    Library = case re:run(Output, "^library=(.*)$", [multiline, {capture, all_but_first, list}]) of
        {match, [L]} when is_list(L) -> L;
        _ -> ct:fail({cargo_build_failed, Output})
    end,
    case string:find(Output, "exit=0") of
        nomatch -> ct:fail({cargo_build_failed, Output});
        _ -> ok
    end,
    Dest = filename:join([AppDir, "priv", "native", "backup_nif_" ++ binary_to_list(Build) ++ ".so"]),
    {ok, _} = file:copy(filename:join(Root, Library), Dest),
    ok.

%% backup_nif.erl with a header naming the new build, compiled into the copy's ebin.
recompile_backup_nif(Build, AppDir) ->
    Src = filename:join(AppDir, "src"),
    ok = filelib:ensure_dir(filename:join(Src, "x")),
    {ok, _} = file:copy(filename:join([project_root(), "erl_src", "support", "backup_nif.erl"]),
                        filename:join(Src, "backup_nif.erl")),
    ok = file:write_file(filename:join(Src, "backup_nif_build.hrl"),
                         ["-define(BACKUP_NIF_BUILD, <<\"", Build, "\">>).\n"]),
    {ok, backup_nif} = compile:file(filename:join(Src, "backup_nif.erl"),
                                    [{outdir, filename:join(AppDir, "ebin")}, debug_info, return_errors]),
    ok.

%% The checkout: _build/test/lib/zotonic_mod_backup is four levels below it.
project_root() ->
    LibDir = filename:dirname(filename:dirname(code:which(backup_nif))),
    filename:absname(filename:join([LibDir, "..", "..", "..", ".."])).
