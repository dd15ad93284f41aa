%% @doc The stable stub of the Rust NIF library `backup_nif'.
%%
%% Kept apart from mod_backup on purpose: Zotonic hot-reloads changed modules, and a NIF
%% library cannot be re-attached to a new version of its module. This stub rarely changes.
%%
%% When the library is missing or fails to load the VM keeps running: every function then
%% raises `{nif_not_loaded, #{file := File, reason := Reason, build := Command}}'.
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
    gzip_file_start/5,
    gzip_command_start/7,
    verify_start/3,
    list_start/3,
    extract_start/5,
    job_cancel/1,
    job_progress/1,
    job_count/0,
    revision_keyframe/1,
    revision_delta/2,
    revision_delta_after/2,
    revision_delta_from/3,
    revision_reconstruct/1,
    revision_apply/2,
    revision_rekey/1,
    revision_diff/2,
    is_loaded/0,
    library_path/0
]).

-on_load(init/0).

-include_lib("kernel/include/logger.hrl").

-define(LIBNAME, "backup_nif").
-define(BUILD_COMMAND, <<"rebar3 compile (or: sh native/build_nif.sh) in the zotonic_mod_backup app dir">>).

%% @doc sha256 (lower-case hex), crc32 and size of a file, read once on a dirty IO scheduler.
-spec file_digest(Path) -> {ok, #{sha256 := binary(), crc32 := non_neg_integer(), size := non_neg_integer()}}
                         | {error, {Reason :: atom(), #{message := binary(), path => binary()}}}
    when Path :: file:filename_all().
file_digest(_Path) ->
    not_loaded().

%% The job NIFs below are called through backup_job, backup_archive and backup_crypto, which
%% document them. Each starts a
%% job on a Rust thread and returns at once; the result comes as
%% `{backup_job_done, Ref, Result}' to the calling process.

-type job_start() :: {ok, reference()} | {error, {atom(), #{message := binary(), path => binary()}}}.
-type progress_to() :: pid() | undefined.

-spec archive_dir_start(binary(), binary(), map(), reference(), progress_to()) -> job_start().
archive_dir_start(_Src, _Out, _Opts, _Ref, _Progress) ->
    not_loaded().

-spec archive_list_start([{binary(), binary()}], binary(), map(), reference(), progress_to()) -> job_start().
archive_list_start(_Entries, _Out, _Opts, _Ref, _Progress) ->
    not_loaded().

-spec gzip_file_start(binary(), binary(), map(), reference(), progress_to()) -> job_start().
gzip_file_start(_In, _Out, _Opts, _Ref, _Progress) ->
    not_loaded().

-spec gzip_command_start(binary(), [binary()], [{binary(), binary()}], binary(), map(), reference(),
                         progress_to()) -> job_start().
gzip_command_start(_Program, _Args, _Env, _Out, _Opts, _Ref, _Progress) ->
    not_loaded().

-spec verify_start(binary(), reference(), progress_to()) -> job_start().
verify_start(_File, _Ref, _Progress) ->
    not_loaded().

-spec list_start(binary(), reference(), progress_to()) -> job_start().
list_start(_File, _Ref, _Progress) ->
    not_loaded().

-spec extract_start(binary(), binary(), map(), reference(), progress_to()) -> job_start().
extract_start(_File, _Dest, _Opts, _Ref, _Progress) ->
    not_loaded().

-spec encrypt_file_start(binary(), binary(), iodata(), reference(), progress_to()) -> job_start().
encrypt_file_start(_In, _Out, _Password, _Ref, _Progress) ->
    not_loaded().

-spec decrypt_file_start(binary(), binary(), iodata(), reference(), progress_to()) -> job_start().
decrypt_file_start(_In, _Out, _Password, _Ref, _Progress) ->
    not_loaded().

-spec decrypt_verified_start(binary(), binary(), iodata(), binary(), reference(), progress_to()) -> job_start().
decrypt_verified_start(_In, _Out, _Password, _Hmac, _Ref, _Progress) ->
    not_loaded().

-spec file_hmac_start(binary(), iodata(), reference(), progress_to()) -> job_start().
file_hmac_start(_In, _Password, _Ref, _Progress) ->
    not_loaded().

-spec job_cancel(reference()) -> ok.
job_cancel(_Job) ->
    not_loaded().

-spec job_progress(reference()) -> {running | done, map()}.
job_progress(_Job) ->
    not_loaded().

-spec job_count() -> non_neg_integer().
job_count() ->
    not_loaded().

%% Revision codec (called through backup_revision_codec, which documents it). Props travel as
%% term_to_binary/1 bytes; blobs are the zkey1/zdelta1 rows of backup_revision.
-type revision_error() :: {error, {Reason :: atom(), #{message := binary()}}}.

-spec revision_keyframe(PropsEtf :: binary()) -> {ok, binary()} | revision_error().
revision_keyframe(_PropsEtf) ->
    not_loaded().

-spec revision_delta(BaseEtf :: binary(), NewEtf :: binary()) -> {ok, binary()} | revision_error().
revision_delta(_BaseEtf, _NewEtf) ->
    not_loaded().

-spec revision_delta_after(Chain :: [binary()], NewEtf :: binary()) -> {ok, binary()} | revision_error().
revision_delta_after(_Chain, _NewEtf) ->
    not_loaded().

-spec revision_delta_from(LastBlob :: binary(), BaseEtf :: binary(), NewEtf :: binary()) ->
    {ok, binary()} | revision_error().
revision_delta_from(_LastBlob, _BaseEtf, _NewEtf) ->
    not_loaded().

-spec revision_reconstruct(Chain :: [binary()]) -> {ok, binary()} | revision_error().
revision_reconstruct(_Chain) ->
    not_loaded().

-spec revision_apply(BaseEtf :: binary(), Deltas :: [binary()]) -> {ok, binary()} | revision_error().
revision_apply(_BaseEtf, _Deltas) ->
    not_loaded().

-spec revision_rekey(Chain :: [binary()]) -> {ok, binary()} | revision_error().
revision_rekey(_Chain) ->
    not_loaded().

-spec revision_diff(EtfA :: binary(), EtfB :: binary()) -> {ok, [map()]} | revision_error().
revision_diff(_EtfA, _EtfB) ->
    not_loaded().

%% @doc True when the native library is loaded.
-spec is_loaded() -> boolean().
is_loaded() ->
    persistent_term:get({?MODULE, load_error}, undefined) =:= undefined.

%% @doc The library file this module loads (or tried to load), with its extension.
-spec library_path() -> file:filename().
library_path() ->
    library_base() ++ ".so".

%% ---------------------------------------------------------------------------------------------

init() ->
    case erlang:load_nif(library_base(), 0) of
        ok ->
            persistent_term:erase({?MODULE, load_error}),
            ok;
        {error, {Reason, Text}} ->
            Info = #{
                file => unicode:characters_to_binary(library_path()),
                reason => Reason,
                message => unicode:characters_to_binary(io_lib:format("~s", [Text])),
                build => ?BUILD_COMMAND
            },
            persistent_term:put({?MODULE, load_error}, Info),
            ?LOG_ERROR(#{
                in => zotonic_mod_backup,
                text => <<"Could not load the backup NIF library; backups are disabled until it is built">>,
                result => error,
                reason => Reason,
                file => maps:get(file, Info),
                build => ?BUILD_COMMAND
            }),
            % Stay loaded with the stubs so callers get a clear error instead of `undef'.
            ok
    end.

-spec not_loaded() -> no_return().
not_loaded() ->
    Info = persistent_term:get({?MODULE, load_error}, #{
        file => unicode:characters_to_binary(library_path()),
        build => ?BUILD_COMMAND
    }),
    erlang:nif_error({nif_not_loaded, Info}).

library_base() ->
    filename:join([priv_dir(), "native", ?LIBNAME]).

priv_dir() ->
    case code:priv_dir(zotonic_mod_backup) of
        {error, bad_name} ->
            % Not loaded as an application (e.g. `erl -pa ebin'): priv/ is next to ebin/.
            Ebin = filename:dirname(code:which(?MODULE)),
            filename:join(filename:dirname(Ebin), "priv");
        Dir ->
            Dir
    end.
