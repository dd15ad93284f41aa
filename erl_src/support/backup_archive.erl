%% @doc Archives, compressed dumps and safe extraction, done by the Rust engine
%% (backup_nif) on threads of its own so that no scheduler is held while gigabytes are read.
%%
%% Every long operation is an engine job (backup_job): each function here starts one and awaits
%% it, so the caller blocks but no scheduler does. The job sends progress messages
%% `{backup_archive, Ref, #{files_done, files_total, bytes_done, bytes_total}}' to the
%% `progress' pid at most every 250 ms. A job is cancelled (and its `.tmp' output removed) at
%% its timeout, when the calling process dies, and when its handle is garbage collected
%% unfinished.
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

-module(backup_archive).

-export([
    create/3,
    create_from_list/3,
    gzip_command/5,
    extract/3
]).

%% The job API of the engine as the suites drive it (start, watch, cancel, await); the product
%% only uses the blocking forms above.
-ifdef(TEST).
-export([
    start/3,
    progress/1,
    cancel/1,
    await/2,
    running_jobs/0
]).
-ignore_xref([start/3, progress/1, cancel/1, await/2, running_jobs/0]).
-endif.

-export_type([
    job/0,
    options/0,
    summary/0,
    reuse_summary/0,
    error_reason/0
]).

-type options() :: #{
    format => gzip,
    threads => non_neg_integer(),
    level => non_neg_integer(),
    progress => pid(),
    timeout => timeout(),
    overwrite => boolean(),
    reuse => file:filename_all() | undefined
}.
-type job() :: backup_job:job().
-type summary() :: #{
    files := non_neg_integer(),
    bytes_in := non_neg_integer(),
    bytes_out := non_neg_integer(),
    sha256 := binary(),
    skipped := [{binary(), binary()}],
    seconds := float(),
    reuse => undefined | reuse_summary()
}.
-type reuse_summary() :: #{
    used := boolean(),
    unusable := binary() | undefined,
    reused_entries := non_neg_integer(),
    reused_bytes := non_neg_integer(),
    reused_units := non_neg_integer(),
    prefix_units := non_neg_integer(),
    tail_pieces := non_neg_integer(),
    rejected_units := non_neg_integer(),
    rejected := [{binary(), binary()}],
    method := clone | copy_file_range | clone_and_copy_file_range | write
            | write_and_copy_file_range | none,
    cloned_bytes := non_neg_integer(),
    copied_bytes := non_neg_integer(),
    written_bytes := non_neg_integer()
}.
-type error_reason() :: backup_job:error_reason().

%% @doc Archives the tree under SrcDir into OutFile (entries `./rel/path', sorted), blocking the
%% caller but no scheduler. With `reuse => PrevArchive' (a `.tar.gz' this engine wrote), the
%% compressed bytes of every file unchanged since PrevArchive are copied from it after they
%% are checked, and only the rest is compressed; the summary's `reuse' map says what was
%% reused and how (`method': `clone' where the file system shares extents, else `write': the
%% bytes read once for their check and written). A PrevArchive that is missing, foreign,
%% encrypted or damaged is not used (in whole or for the damaged files), never an error.
-spec create(SrcDir, OutFile, Options) -> {ok, summary()} | {error, error_reason()} when
    SrcDir :: file:filename_all(),
    OutFile :: file:filename_all(),
    Options :: options().
create(SrcDir, OutFile, Options) ->
    run(dir_job(SrcDir, OutFile, Options), Options).

%% @doc Archives a list of `{NameInArchive, PathOnDisk}' files (the config archive).
-spec create_from_list(Entries, OutFile, Options) -> {ok, summary()} | {error, error_reason()} when
    Entries :: [{file:filename_all(), file:filename_all()}],
    OutFile :: file:filename_all(),
    Options :: options().
create_from_list(Entries, OutFile, Options) ->
    run(list_job(Entries, OutFile, Options), Options).

%% @doc Runs Program with Args and extra Env, and gzips its standard output into OutFile (how
%% pg_dump's output becomes `<name>.sql.gz' without an uncompressed copy on disk). A non-zero
%% exit gives `{error, {command_failed, #{message := StderrTail}}}' and no OutFile.
-spec gzip_command(Program, Args, Env, OutFile, Options) -> {ok, summary()} | {error, error_reason()} when
    Program :: file:filename_all(),
    Args :: [iodata()],
    Env :: [{iodata(), iodata()}],
    OutFile :: file:filename_all(),
    Options :: options().
gzip_command(Program, Args, Env, OutFile, Options) ->
    run(command_job(Program, Args, Env, OutFile, Options), Options).

%% @doc Extracts an archive into DestDir, checking it end to end on the way (the same verdict as
%% `zbackup verify'), through a private staging dir next to DestDir that is swapped into place only
%% when the whole archive checked out; absolute paths, `..' and links leaving DestDir are
%% refused (`unsafe_path'), and archives that claim more than the reader's fixed limits
%% (`limit_exceeded'). `overwrite => true' replaces a non-empty DestDir as a whole, or leaves
%% it exactly as it was on any error. With `timeout => Ms' the job also stops itself at that
%% deadline (`{error, {timeout, _}}' within a second of it).
-spec extract(File, DestDir, Options) -> {ok, map()} | {error, error_reason()} when
    File :: file:filename_all(),
    DestDir :: file:filename_all(),
    Options :: options().
extract(File, DestDir, Options) ->
    run(fun(Ref) ->
            backup_nif:extract_start(name(File), name(DestDir), nif_options(Options), Ref, progress_pid(Options))
        end,
        Options).

-ifdef(TEST).
%% @doc Starts archiving SrcDir into OutFile; the result comes with `await/2'.
-spec start(SrcDir, OutFile, Options) -> {ok, job()} | {error, error_reason()} when
    SrcDir :: file:filename_all(),
    OutFile :: file:filename_all(),
    Options :: options().
start(SrcDir, OutFile, Options) ->
    backup_job:start(dir_job(SrcDir, OutFile, Options)).

%% @doc The job's state and counters now.
-spec progress(job()) -> {running | done, backup_job:progress()}.
progress(Job) ->
    backup_job:progress(Job).

%% @doc Asks the job to stop; `await/2' then returns `{error, {cancelled, _}}' once the partial
%% output is removed.
-spec cancel(job()) -> ok.
cancel(Job) ->
    backup_job:cancel(Job).

%% @doc Waits for the job's result. On timeout the job is cancelled, its cleanup awaited, and
%% `{error, {timeout, _}}' returned. Only the process that started the job gets its result.
-spec await(job(), timeout()) -> {ok, term()} | {error, error_reason()}.
await(Job, Timeout) ->
    backup_job:await(Job, Timeout).

%% @doc How many jobs run now in this VM.
-spec running_jobs() -> non_neg_integer().
running_jobs() ->
    backup_job:running().

-endif.

%% ---------------------------------------------------------------------------------------------

%% The blocking forms wait for a free job slot (or for another job on the same output file to
%% end) instead of failing with `busy', within their timeout.
run(StartFun, Options) ->
    backup_job:run(StartFun, maps:get(timeout, Options, infinity)).

dir_job(SrcDir, OutFile, Options) ->
    fun(Ref) ->
        backup_nif:archive_dir_start(name(SrcDir), name(OutFile), nif_options(Options), Ref, progress_pid(Options))
    end.

list_job(Entries, OutFile, Options) ->
    Pairs = [{name(N), name(P)} || {N, P} <- Entries],
    fun(Ref) ->
        backup_nif:archive_list_start(Pairs, name(OutFile), nif_options(Options), Ref, progress_pid(Options))
    end.

command_job(Program, Args, Env, OutFile, Options) ->
    Args1 = [iolist_to_binary(A) || A <- Args],
    Env1 = [{iolist_to_binary(K), iolist_to_binary(V)} || {K, V} <- Env],
    fun(Ref) ->
        backup_nif:gzip_command_start(name(Program), Args1, Env1, name(OutFile), nif_options(Options), Ref,
                                      progress_pid(Options))
    end.

progress_pid(#{progress := Pid}) when is_pid(Pid) -> Pid;
progress_pid(_) -> undefined.

%% Only what the engine reads; progress is handled here. A timeout is also given to the job
%% itself, which stops at its deadline on its own (await/2 cancels it at the same time).
nif_options(Options) ->
    Opts = maps:with([format, threads, level, overwrite, timeout], Options),
    case maps:get(reuse, Options, undefined) of
        undefined -> Opts;
        Prev -> Opts#{ reuse => name(Prev) }
    end.

name(Name) when is_binary(Name) -> Name;
name(Name) -> unicode:characters_to_binary(Name).
