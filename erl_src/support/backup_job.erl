%% @doc Jobs of the Rust engine: long work on a Rust thread that reports by message, so no
%% scheduler is held while gigabytes are read, written, compressed or encrypted.
%%
%% A `*_start' NIF returns a handle at once. The job sends `{backup_archive, Ref, Progress}' to
%% its progress pid at most every 250 ms and `{backup_job_done, Ref, Result}' to the process
%% that started it. It is cancelled (and its `.tmp' output removed) by `cancel/1', when the
%% starting process dies, and when its handle is garbage collected unfinished.
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

-module(backup_job).

-export([
    start/1,
    run/2,
    await/2,
    cancel/1,
    progress/1,
    running/0
]).

-export_type([job/0, progress/0, error_reason/0, start_fun/0]).

-include_lib("kernel/include/logger.hrl").

%% How long await/2 waits, after its timeout cancelled a job, for the job to confirm. Every job
%% checks for cancel at least once per buffer of data, so it stops within milliseconds; this is
%% the backstop that keeps a caller's deadline whatever happens in the engine.
-define(CANCEL_GRACE_MS, 900).

-type job() :: #{ref := reference(), handle := backup_nif:job_handle()}.
-type progress() :: #{
    files_done := non_neg_integer(),
    files_total := non_neg_integer(),
    bytes_done := non_neg_integer(),
    bytes_total := non_neg_integer()
}.
-type error_reason() :: {atom(), #{message := binary(), path => binary()}}.
%% Calls a `*_start' NIF with the job's reference.
-type start_fun() :: fun((reference()) -> {ok, backup_nif:job_handle()} | {error, error_reason()}).

%% @doc Starts a job; `{error, {busy, _}}' when all job slots are taken or another job writes
%% the same output file.
-spec start(start_fun()) -> {ok, job()} | {error, error_reason()}.
start(StartFun) ->
    Ref = make_ref(),
    case StartFun(Ref) of
        {ok, Handle} -> {ok, #{ref => Ref, handle => Handle}};
        {error, _} = Error -> Error
    end.

%% @doc Starts a job and waits for its result, within Timeout. A busy engine is waited for
%% (backing off up to 100 ms) rather than reported.
-spec run(start_fun(), timeout()) -> {ok, term()} | {error, error_reason()}.
run(StartFun, Timeout) ->
    Deadline = case Timeout of
        infinity -> infinity;
        Ms -> erlang:monotonic_time(millisecond) + Ms
    end,
    run(StartFun, Deadline, 5).

run(StartFun, Deadline, Backoff) ->
    case start(StartFun) of
        {ok, Job} ->
            await(Job, remaining(Deadline));
        {error, {busy, _}} ->
            case remaining(Deadline) of
                0 ->
                    {error, {timeout, #{message => <<"timeout; all job slots stayed busy">>}}};
                Left ->
                    timer:sleep(min(Backoff, Left)),
                    run(StartFun, Deadline, min(Backoff * 2, 100))
            end;
        {error, _} = Error ->
            Error
    end.

%% @doc Waits for the job's result. On timeout the job is cancelled and `{error, {timeout, _}}'
%% returned once it confirms (its partial output removed), or at the latest 900 ms after the
%% timeout: a job that has not stopped by then is left to end on its own (its slot stays taken
%% until it does, and its late result message is dropped by no one). Only the process that
%% started the job gets its result.
-spec await(job(), timeout()) -> {ok, term()} | {error, error_reason()}.
await(#{ref := Ref} = Job, Timeout) ->
    receive
        {backup_job_done, Ref, Result} -> Result
    after Timeout ->
        cancel(Job),
        receive
            {backup_job_done, Ref, {ok, _}} ->
                % Finished in the meantime: the output is complete, but the caller gave up.
                {error, {timeout, #{message => <<"timeout; the job finished after the deadline">>}}};
            {backup_job_done, Ref, _} ->
                {error, {timeout, #{message => <<"timeout; the job was cancelled">>}}}
        after ?CANCEL_GRACE_MS ->
            ?LOG_ERROR(#{
                in => zotonic_mod_backup,
                text => <<"Backup job did not stop after its cancel; abandoned">>,
                result => error,
                reason => timeout,
                grace_ms => ?CANCEL_GRACE_MS
            }),
            {error, {timeout, #{message => <<"timeout; the job did not stop after its cancel and was abandoned">>}}}
        end
    end.

%% @doc Asks the job to stop; `await/2' then returns `{error, {cancelled, _}}' once the partial
%% output is removed.
-spec cancel(job()) -> ok.
cancel(#{handle := Handle}) ->
    backup_nif:job_cancel(Handle).

%% @doc The job's state and counters now.
-spec progress(job()) -> {running | done, progress()}.
progress(#{handle := Handle}) ->
    backup_nif:job_progress(Handle).

%% @doc How many jobs run now in this VM.
-spec running() -> non_neg_integer().
running() ->
    backup_nif:job_count().

remaining(infinity) -> infinity;
remaining(Deadline) -> max(0, Deadline - erlang:monotonic_time(millisecond)).
