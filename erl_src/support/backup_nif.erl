%% @doc The stable entry point of the Rust NIF library: every call goes to the library of the
%% build this module was compiled with, loaded beside older builds instead of over them.
%%
%% Why: Zotonic reloads changed modules in a running node (`z:ld()', its dev file watcher), and
%% the BEAM can put a new NIF library into a module that already has one only through the
%% library's `upgrade' callback, which rustler does not have. So every build of the library has
%% its own Erlang module name, `backup_nif_<Build>' (native/build_nif.sh names the build after a
%% hash of the sources and writes it to backup_nif_build.hrl). This module keeps the API and
%% loads that per-build module on first use: it generates the module's stub functions, loads
%% them, and their `-on_load' loads `priv/native/backup_nif_<Build>.so' into them.
%%
%% After a reload of this module with a new build, the next call loads the new library; jobs
%% running on the old one finish there (a job handle carries the module of its library), and the
%% old module is purged once it has no running jobs. When the library is missing or fails to
%% load, the VM keeps running: every function raises
%% `{nif_not_loaded, #{file := File, reason := Reason, build := Command}}'.
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

-module(backup_nif).

-export([
    file_digest/1,
    encrypt_file_start/5,
    decrypt_file_start/5,
    decrypt_verified_start/6,
    file_hmac_start/4,
    archive_dir_start/5,
    archive_list_start/5,
    gzip_command_start/7,
    dump_check_start/3,
    dump_feed_start/9,
    extract_start/5,
    job_cancel/1,
    job_progress/1,
    job_count/0,
    revision_dicts_new/0,
    revision_dict_put/4,
    revision_dict_ids/1,
    revision_keyframe/3,
    revision_delta/4,
    revision_delta_after/4,
    revision_delta_from/5,
    revision_reconstruct/2,
    revision_apply/3,
    revision_rekey/3,
    revision_delta_cost/2,
    revision_train/6,
    revision_diff/2,
    build_id/0,
    is_loaded/0,
    library_path/0,
    loaded_builds/0,
    is_current/1
]).

%% For operators and tests: which build answers, whether it loaded, where its file is.
-ignore_xref([build_id/0, is_loaded/0, library_path/0, loaded_builds/0]).

-export_type([job_handle/0, dicts/0, dict_id/0]).

-include_lib("kernel/include/logger.hrl").
-include("backup_nif_build.hrl").

-define(LIBNAME, "backup_nif_").
-define(BUILD_COMMAND, <<"rebar3 compile (or: sh native/build_nif.sh) in the zotonic_mod_backup app dir">>).
%% persistent_term keys: the module of this build ({Build, Module | {error, Info}}), and the
%% outcome of each generated module's load_nif.
-define(IMPL, {?MODULE, impl}).
-define(LOAD_RESULT(Module), {?MODULE, load_result, Module}).
%% Functions of this module that are not NIFs of the library.
-define(LOCAL, [is_loaded, library_path, loaded_builds, is_current, module_info]).
%% How long an old build's library stays after its last job ended: the job's worker threads
%% exit on their own after the job returns. App env `nif_purge_grace_ms' (tests shorten it).
-define(PURGE_GRACE_MS, 10000).

%% A running job: the library module that runs it and the library's handle.
-opaque job_handle() :: {module(), reference()}.
%% A site's set of loaded revision dictionaries: the library module that made it and its
%% resource. A set made by an older build still works while that build is loaded; callers
%% replace it when is_current/1 says it is not of the current build.
-opaque dicts() :: {module(), reference()}.
%% A revision dictionary's id; 0 for none.
-type dict_id() :: non_neg_integer().

-type job_start() :: {ok, job_handle()} | {error, {atom(), #{message := binary(), path => binary()}}}.
-type progress_to() :: pid() | undefined.

%% @doc sha256 (lower-case hex), crc32 and size of a file, read once on a dirty IO scheduler.
-spec file_digest(Path) -> {ok, #{sha256 := binary(), crc32 := non_neg_integer(), size := non_neg_integer()}}
                         | {error, {Reason :: atom(), #{message := binary(), path => binary()}}}
    when Path :: file:filename_all().
file_digest(Path) ->
    (impl()):file_digest(Path).

%% The job NIFs below are called through backup_job, backup_archive, backup_restore_db and
%% backup_file_crypto,
%% which document them. Each starts a job on a Rust thread and returns at once; the result
%% comes as `{backup_job_done, Ref, Result}' to the calling process.

-spec archive_dir_start(binary(), binary(), map(), reference(), progress_to()) -> job_start().
archive_dir_start(Src, Out, Opts, Ref, Progress) ->
    job(fun(M) -> M:archive_dir_start(Src, Out, Opts, Ref, Progress) end).

-spec archive_list_start([{binary(), binary()}], binary(), map(), reference(), progress_to()) -> job_start().
archive_list_start(Entries, Out, Opts, Ref, Progress) ->
    job(fun(M) -> M:archive_list_start(Entries, Out, Opts, Ref, Progress) end).

-spec gzip_command_start(binary(), [binary()], [{binary(), binary()}], binary(), map(), reference(),
                         progress_to()) -> job_start().
gzip_command_start(Program, Args, Env, Out, Opts, Ref, Progress) ->
    job(fun(M) -> M:gzip_command_start(Program, Args, Env, Out, Opts, Ref, Progress) end).

-spec dump_check_start(binary(), reference(), progress_to()) -> job_start().
dump_check_start(File, Ref, Progress) ->
    job(fun(M) -> M:dump_check_start(File, Ref, Progress) end).

-spec dump_feed_start(binary(), [binary()], [{binary(), binary()}], binary(), binary(), binary(), map(),
                      reference(), progress_to()) -> job_start().
dump_feed_start(Program, Args, Env, File, Prologue, Epilogue, Opts, Ref, Progress) ->
    job(fun(M) -> M:dump_feed_start(Program, Args, Env, File, Prologue, Epilogue, Opts, Ref, Progress) end).

-spec extract_start(binary(), binary(), map(), reference(), progress_to()) -> job_start().
extract_start(File, Dest, Opts, Ref, Progress) ->
    job(fun(M) -> M:extract_start(File, Dest, Opts, Ref, Progress) end).

-spec encrypt_file_start(binary(), binary(), iodata(), reference(), progress_to()) -> job_start().
encrypt_file_start(In, Out, Password, Ref, Progress) ->
    job(fun(M) -> M:encrypt_file_start(In, Out, Password, Ref, Progress) end).

-spec decrypt_file_start(binary(), binary(), iodata(), reference(), progress_to()) -> job_start().
decrypt_file_start(In, Out, Password, Ref, Progress) ->
    job(fun(M) -> M:decrypt_file_start(In, Out, Password, Ref, Progress) end).

-spec decrypt_verified_start(binary(), binary(), iodata(), binary(), reference(), progress_to()) -> job_start().
decrypt_verified_start(In, Out, Password, Hmac, Ref, Progress) ->
    job(fun(M) -> M:decrypt_verified_start(In, Out, Password, Hmac, Ref, Progress) end).

-spec file_hmac_start(binary(), iodata(), reference(), progress_to()) -> job_start().
file_hmac_start(In, Password, Ref, Progress) ->
    job(fun(M) -> M:file_hmac_start(In, Password, Ref, Progress) end).

%% @doc Ask a job to stop, on the library that runs it. A job of a library that was purged in
%% the meantime has ended already.
-spec job_cancel(job_handle()) -> ok.
job_cancel({Module, Handle}) when is_atom(Module) ->
    case erlang:module_loaded(Module) of
        true -> Module:job_cancel(Handle);
        false -> ok
    end;
job_cancel(_) ->
    error(badarg).

-spec job_progress(job_handle()) -> {running | done, map()}.
job_progress({Module, Handle}) when is_atom(Module) ->
    case erlang:module_loaded(Module) of
        true -> Module:job_progress(Handle);
        false -> {done, #{}}
    end;
job_progress(_) ->
    error(badarg).

%% @doc Running jobs in this VM, on every loaded build.
-spec job_count() -> non_neg_integer().
job_count() ->
    _ = impl(),
    lists:sum([ M:job_count() || {_Build, M} <- loaded_builds() ]).

%% Revision codec (called through backup_revision_codec, which documents it). Props travel as
%% term_to_binary/1 bytes; blobs are the rows of backup_revision. Dicts is a site's set of
%% dictionaries (revision_dicts_new/0); Dict the id of the one new rows are written with (0: none).
-type revision_error() :: {error, {Reason :: atom(), #{message := binary(), dictionary => pos_integer()}}}.

-spec revision_dicts_new() -> dicts().
revision_dicts_new() ->
    Module = impl(),
    {Module, Module:revision_dicts_new()}.

-spec revision_dict_put(Dicts :: dicts(), Id :: pos_integer(), Bytes :: binary(), Warm :: boolean()) ->
    ok | revision_error().
revision_dict_put(Dicts, Id, Bytes, Warm) ->
    with_dicts(Dicts, fun(M, D) -> M:revision_dict_put(D, Id, Bytes, Warm) end).

-spec revision_dict_ids(Dicts :: dicts()) -> [pos_integer()].
revision_dict_ids(Dicts) ->
    with_dicts(Dicts, fun(M, D) -> M:revision_dict_ids(D) end).

-spec revision_keyframe(Dicts :: dicts(), Dict :: dict_id(), PropsEtf :: binary()) ->
    {ok, binary()} | revision_error().
revision_keyframe(Dicts, Dict, PropsEtf) ->
    with_dicts(Dicts, fun(M, D) -> M:revision_keyframe(D, Dict, PropsEtf) end).

-spec revision_delta(Dicts :: dicts(), Dict :: dict_id(), BaseEtf :: binary(), NewEtf :: binary()) ->
    {ok, binary()} | revision_error().
revision_delta(Dicts, Dict, BaseEtf, NewEtf) ->
    with_dicts(Dicts, fun(M, D) -> M:revision_delta(D, Dict, BaseEtf, NewEtf) end).

-spec revision_delta_after(Dicts :: dicts(), Dict :: dict_id(), Chain :: [binary()], NewEtf :: binary()) ->
    {ok, binary()} | revision_error().
revision_delta_after(Dicts, Dict, Chain, NewEtf) ->
    with_dicts(Dicts, fun(M, D) -> M:revision_delta_after(D, Dict, Chain, NewEtf) end).

-spec revision_delta_from(Dicts :: dicts(), Dict :: dict_id(), LastBlob :: binary(), BaseEtf :: binary(),
                          NewEtf :: binary()) -> {ok, binary()} | revision_error().
revision_delta_from(Dicts, Dict, LastBlob, BaseEtf, NewEtf) ->
    with_dicts(Dicts, fun(M, D) -> M:revision_delta_from(D, Dict, LastBlob, BaseEtf, NewEtf) end).

-spec revision_reconstruct(Dicts :: dicts(), Chain :: [binary()]) -> {ok, binary()} | revision_error().
revision_reconstruct(Dicts, Chain) ->
    with_dicts(Dicts, fun(M, D) -> M:revision_reconstruct(D, Chain) end).

-spec revision_apply(Dicts :: dicts(), BaseEtf :: binary(), Deltas :: [binary()]) ->
    {ok, binary()} | revision_error().
revision_apply(Dicts, BaseEtf, Deltas) ->
    with_dicts(Dicts, fun(M, D) -> M:revision_apply(D, BaseEtf, Deltas) end).

-spec revision_rekey(Dicts :: dicts(), Dict :: dict_id(), Chain :: [binary()]) -> {ok, binary()} | revision_error().
revision_rekey(Dicts, Dict, Chain) ->
    with_dicts(Dicts, fun(M, D) -> M:revision_rekey(D, Dict, Chain) end).

-spec revision_delta_cost(Dicts :: dicts(), Blob :: binary()) ->
    {ok, #{atom() => non_neg_integer()}} | revision_error().
revision_delta_cost(Dicts, Blob) ->
    with_dicts(Dicts, fun(M, D) -> M:revision_delta_cost(D, Blob) end).

-spec revision_train(Ref :: reference(), Dicts :: dicts(), Current :: dict_id(), Train :: [[binary()]],
                     Holdout :: [[binary()]], MaxBytes :: pos_integer()) ->
    {ok, job_handle()} | revision_error().
revision_train(Ref, Dicts, Current, Train, Holdout, MaxBytes) ->
    with_dicts(Dicts, fun(M, D) ->
        case M:revision_train(Ref, D, Current, Train, Holdout, MaxBytes) of
            {ok, Handle} -> {ok, {M, Handle}};
            {error, _} = Error -> Error
        end
    end).

-spec revision_diff(EtfA :: binary(), EtfB :: binary()) -> {ok, [map()]} | revision_error().
revision_diff(EtfA, EtfB) ->
    (impl()):revision_diff(EtfA, EtfB).

%% @doc The build of the loaded library, as the library itself reports it: equal to the build
%% this module was compiled for.
-spec build_id() -> binary().
build_id() ->
    unicode:characters_to_binary((impl()):build_id()).

%% @doc True when the library of this build is loaded (loading it now if needed).
-spec is_loaded() -> boolean().
is_loaded() ->
    try impl() of
        _ -> true
    catch
        error:{nif_not_loaded, _} -> false
    end.

%% @doc The library file of this build.
-spec library_path() -> file:filename().
library_path() ->
    library_path(?BACKUP_NIF_BUILD).

%% @doc The builds whose libraries are loaded now, with their modules: the current one and older
%% ones that still finish jobs.
-spec loaded_builds() -> [ {Build :: binary(), module()} ].
loaded_builds() ->
    lists:sort([ {list_to_binary(B), M} || {M, _} <- code:all_loaded(),
                                          "backup_nif_" ++ B <- [ atom_to_list(M) ],
                                          persistent_term:get(?LOAD_RESULT(M), undefined) =:= ok ]).

%% @doc Is this set of dictionaries of the build that answers calls now? A set of an older build
%% works until that build is purged, so its holder replaces it when this says false.
-spec is_current(dicts()) -> boolean().
is_current({Module, _}) ->
    try impl() of
        Module -> true;
        _ -> false
    catch
        error:{nif_not_loaded, _} -> false
    end.

%% ---------------------------------------------------------------------------------------------

job(Start) ->
    Module = impl(),
    case Start(Module) of
        {ok, Handle} -> {ok, {Module, Handle}};
        {error, _} = Error -> Error
    end.

with_dicts({Module, Dicts}, Fun) when is_atom(Module) ->
    Fun(Module, Dicts);
with_dicts(_, _Fun) ->
    error(badarg).

%% The module of this build's library; loaded on first use.
impl() ->
    case persistent_term:get(?IMPL, undefined) of
        {?BACKUP_NIF_BUILD, Module} when is_atom(Module) -> Module;
        {?BACKUP_NIF_BUILD, {error, Info}} -> error({nif_not_loaded, Info});
        _ -> load()
    end.

load() ->
    Build = ?BACKUP_NIF_BUILD,
    Result = global:trans({{?MODULE, load}, self()}, fun() -> load_locked(Build) end, [node()], infinity),
    case Result of
        {?BACKUP_NIF_BUILD, Module} when is_atom(Module) -> Module;
        {?BACKUP_NIF_BUILD, {error, Info}} -> error({nif_not_loaded, Info})
    end.

load_locked(Build) ->
    case persistent_term:get(?IMPL, undefined) of
        {Build, _} = Loaded ->
            Loaded;
        _ ->
            Module = binary_to_atom(<<?LIBNAME, Build/binary>>, utf8),
            Loaded = case persistent_term:get(?LOAD_RESULT(Module), undefined) =:= ok
                          andalso erlang:module_loaded(Module) of
                true -> {Build, Module};
                false -> {Build, load_build(Module, Build)}
            end,
            persistent_term:put(?IMPL, Loaded),
            _ = spawn(fun purge_old_builds/0),
            Loaded
    end.

%% Generate the per-build module (a stub per NIF, and an on_load that loads the library into it)
%% and load it.
load_build(Module, Build) ->
    Path = library_path(Build),
    Nifs = [ FA || {F, _} = FA <- ?MODULE:module_info(exports), not lists:member(F, ?LOCAL) ],
    Source = [
        io_lib:format("-module(~p).~n", [Module]),
        "-export([", lists:join(",", [ io_lib:format("~p/~p", [F, A]) || {F, A} <- Nifs ]), "]).\n",
        "-on_load(init/0).\n",
        io_lib:format("init() -> persistent_term:put(~p, erlang:load_nif(~p, 0)), ok.~n",
                      [?LOAD_RESULT(Module), filename:rootname(Path)])
        | [ io_lib:format("~p(~s) -> erlang:nif_error(not_loaded).~n",
                          [F, lists:join(",", lists:duplicate(A, "_"))]) || {F, A} <- Nifs ]
    ],
    case compile_and_load(Module, lists:flatten(Source)) of
        ok ->
            case persistent_term:get(?LOAD_RESULT(Module), undefined) of
                ok ->
                    ?LOG_INFO(#{
                        in => zotonic_mod_backup,
                        text => <<"Backup NIF library loaded">>,
                        result => ok,
                        build => Build,
                        file => unicode:characters_to_binary(Path)
                    }),
                    Module;
                {error, {Reason, Text}} ->
                    remove_module(Module),
                    load_error(Path, Reason, io_lib:format("~s", [Text]));
                Other ->
                    remove_module(Module),
                    load_error(Path, load_failed, io_lib:format("~p", [Other]))
            end;
        {error, Reason} ->
            load_error(Path, load_failed, io_lib:format("~p", [Reason]))
    end.

compile_and_load(Module, Source) ->
    try
        Forms = parse_forms(Source),
        {ok, Module, Bin} = compile:forms(Forms, [binary, return_errors]),
        case code:load_binary(Module, atom_to_list(Module) ++ ".erl", Bin) of
            {module, Module} -> ok;
            {error, _} = Error -> Error
        end
    catch
        Class:Reason -> {error, {Class, Reason}}
    end.

parse_forms(Source) ->
    {ok, Tokens, _} = erl_scan:string(Source),
    [ begin {ok, Form} = erl_parse:parse_form(T), Form end || T <- split_forms(Tokens, [], []) ].

split_forms([], [], Acc) ->
    lists:reverse(Acc);
split_forms([ {dot, _} = Dot | Rest ], Form, Acc) ->
    split_forms(Rest, [], [ lists:reverse([ Dot | Form ]) | Acc ]);
split_forms([ Token | Rest ], Form, Acc) ->
    split_forms(Rest, [ Token | Form ], Acc).

load_error(Path, Reason, Text) ->
    Info = #{
        file => unicode:characters_to_binary(Path),
        reason => Reason,
        message => unicode:characters_to_binary(Text),
        build => ?BUILD_COMMAND
    },
    ?LOG_ERROR(#{
        in => zotonic_mod_backup,
        text => <<"Could not load the backup NIF library; backups are disabled until it is built">>,
        result => error,
        reason => Reason,
        file => maps:get(file, Info),
        build => ?BUILD_COMMAND
    }),
    {error, Info}.

remove_module(Module) ->
    _ = code:delete(Module),
    _ = code:purge(Module),
    persistent_term:erase(?LOAD_RESULT(Module)),
    ok.

%% Purge the modules of older builds once they run no jobs; their libraries are unloaded by the
%% VM when the last of their resources (job handles) is gone. Runs after every load; a purge
%% that waits for a long backup is simply done by the next one if this process is killed.
purge_old_builds() ->
    case persistent_term:get(?IMPL, undefined) of
        {_Build, Current} when is_atom(Current) ->
            Old = [ M || {_, M} <- loaded_builds(), M =/= Current ],
            lists:foreach(fun purge_when_idle/1, Old);
        _ ->
            ok
    end.

purge_when_idle(Module) ->
    case catch Module:job_count() of
        0 ->
            timer:sleep(application:get_env(zotonic_mod_backup, nif_purge_grace_ms, ?PURGE_GRACE_MS)),
            case catch Module:job_count() of
                0 ->
                    persistent_term:erase(?LOAD_RESULT(Module)),
                    _ = code:delete(Module),
                    soft_purge(Module, 60),
                    ?LOG_INFO(#{
                        in => zotonic_mod_backup,
                        text => <<"Backup NIF library of an older build purged">>,
                        result => ok,
                        module => Module
                    }),
                    ok;
                _ ->
                    purge_when_idle(Module)
            end;
        N when is_integer(N) ->
            timer:sleep(1000),
            purge_when_idle(Module);
        _ ->
            ok
    end.

%% Old code is purged once no process runs it any more (a NIF call of a few seconds at most).
soft_purge(Module, 0) ->
    ?LOG_WARNING(#{
        in => zotonic_mod_backup,
        text => <<"Backup NIF library of an older build still in use, not purged">>,
        result => error,
        reason => in_use,
        module => Module
    });
soft_purge(Module, Tries) ->
    case code:soft_purge(Module) of
        true -> ok;
        false -> timer:sleep(1000), soft_purge(Module, Tries - 1)
    end.

library_path(Build) ->
    filename:join([priv_dir(), "native", ?LIBNAME ++ unicode:characters_to_list(Build) ++ ".so"]).

priv_dir() ->
    case code:priv_dir(zotonic_mod_backup) of
        {error, bad_name} ->
            % Not loaded as an application (e.g. `erl -pa ebin'): priv/ is next to ebin/.
            Ebin = filename:dirname(code:which(?MODULE)),
            filename:join(filename:dirname(Ebin), "priv");
        Dir ->
            Dir
    end.
