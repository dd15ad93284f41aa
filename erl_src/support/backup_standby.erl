%% @doc A standby site (`m_site:environment/1' is `backup') follows the sets that its
%% production site uploads to the cloud filestore.
%%
%% download/1 runs in a worker of the site's mod_backup server, every hour or on
%% mod_backup:download_backup/1: it fetches `backup/backup.json' from the filestore, downloads
%% the database and config files of every set that is new or changed (or whose files are
%% missing here), checks each file's sha256 against the index (a mismatch drops the file and is
%% logged), and writes the local backup.json with the sets that are complete here. When the
%% newest set came in with this poll, the site is marked as standby (`priv/BACKUP') and that
%% set is restored with all four options; the restore restarts the site.
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

-module(backup_standby).

-export([
    download/1
]).

-include_lib("zotonic_core/include/zotonic.hrl").
-include_lib("zotonic_core/include/zotonic_file.hrl").
-include("../backup.hrl").

%% Keys of the files a production site uploads (the media live in the filestore itself).
-define(UPLOADED, [ {<<"database">>, <<"database_hash">>}, {<<"config_files">>, <<"config_files_hash">>} ]).

%% @doc Poll the filestore, download what is new and restore the newest set when it is new.
%% Returns `nothing_new' when there was nothing to restore.
-spec download(Context) -> ok | nothing_new | {error, Reason} when
    Context :: z:context(),
    Reason :: term().
download(Context) ->
    Dir = backup_create:dir(Context),
    RemoteTmp = filename:join(Dir, <<"backup.json.remote.tmp">>),
    try
        case fetch(?BACKUP_INDEX, RemoteTmp, Context) of
            ok ->
                case backup_json_index:read_file(RemoteTmp) of
                    {ok, Remote} ->
                        sync(Remote, Dir, Context);
                    {error, Reason} = Error ->
                        ?LOG_ERROR(#{
                            in => zotonic_mod_backup,
                            text => <<"Standby: the backup.json of the filestore is not readable">>,
                            result => error,
                            reason => Reason
                        }),
                        Error
                end;
            {error, _} = Error ->
                Error
        end
    after
        _ = file:delete(RemoteTmp)
    end.

%% Lower-case hex sha256 of a file, as backup.json stores it.
hex_sha256_file(File) ->
    % The engine's digest: one streaming read off the VM's normal schedulers.
    case backup_nif:file_digest(File) of
        {ok, #{ sha256 := Hex }} -> {ok, Hex};
        {error, {Reason, _Info}} -> {error, Reason}
    end.

%% ---------------------------------------------------------------------------------------------

sync(Remote, Dir, Context) ->
    Local = backup_json_index:read(Dir),
    Results = maps:map(
        fun(Name, Entry) ->
            case is_changed(Name, Entry, Local, Context) of
                true ->
                    case download_set(Entry, Dir, Context) of
                        ok -> downloaded;
                        {error, _} -> failed
                    end;
                false ->
                    unchanged
            end
        end,
        Remote),
    Complete = maps:filter(fun(Name, _) -> maps:get(Name, Results) =/= failed end, Remote),
    % Sets that failed now keep their earlier local entry when its files are all still here.
    Kept = maps:filter(
        fun(Name, Entry) ->
            maps:get(Name, Results, undefined) =:= failed
                andalso not lists:any(fun(F) -> backup_restore:is_file_missing(F, Context) end,
                                      backup_json_index:set_files(Entry))
        end,
        Local),
    NewIndex = maps:merge(Complete, Kept),
    {ok, _} = mod_backup:update_index(fun(_) -> NewIndex end, Context),
    remove_unreferenced(Local, NewIndex, Dir),
    Downloaded = [ N || {N, downloaded} <- maps:to_list(Results) ],
    ?LOG_INFO(#{
        in => zotonic_mod_backup,
        text => <<"Standby: backup sets synchronised from the filestore">>,
        result => ok,
        downloaded => Downloaded,
        failed => [ N || {N, failed} <- maps:to_list(Results) ]
    }),
    case backup_restore:newest(NewIndex) of
        {ok, Newest} ->
            [NewestName] = [ N || {N, E} <- maps:to_list(NewIndex), E =:= Newest ],
            case lists:member(NewestName, Downloaded) of
                true ->
                    _ = z_sites_config:maybe_set_backup_env(Context),
                    backup_restore:restore(NewestName, backup_restore:all_options(), Context);
                false ->
                    nothing_new
            end;
        error ->
            nothing_new
    end.

is_changed(Name, Entry, Local, Context) ->
    case maps:find(Name, Local) of
        {ok, Entry} ->
            lists:any(fun({Key, _}) -> backup_restore:is_file_missing(maps:get(Key, Entry, undefined), Context) end,
                      ?UPLOADED);
        _ ->
            true
    end.

download_set(Entry, Dir, Context) ->
    lists:foldl(
        fun({Key, HashKey}, Acc) ->
            case maps:get(Key, Entry, undefined) of
                File when is_binary(File), File =/= <<>> ->
                    case download_file(File, maps:get(HashKey, Entry, undefined), Dir, Context) of
                        ok -> Acc;
                        {error, _} = Error -> Error
                    end;
                _ ->
                    Acc
            end
        end,
        ok,
        ?UPLOADED).

%% Download into File.tmp, check the hash, rename into place.
download_file(File, Hash, Dir, Context) ->
    case backup_json_index:is_plain_name(File) of
        true ->
            Tmp = filename:join(Dir, <<File/binary, ".tmp">>),
            Expected = case Hash of
                H when is_binary(H) -> string:lowercase(H);
                _ -> undefined
            end,
            case fetch(File, Tmp, Context) of
                ok ->
                    case hex_sha256_file(Tmp) of
                        {ok, Expected} ->
                            file:rename(Tmp, filename:join(Dir, File));
                        {ok, _} when Expected =:= undefined ->
                            % Indexes of old versions have no hashes.
                            file:rename(Tmp, filename:join(Dir, File));
                        {ok, Other} ->
                            ?LOG_ERROR(#{
                                in => zotonic_mod_backup,
                                text => <<"Standby: downloaded backup file does not match its hash, dropped">>,
                                result => error,
                                reason => hash_mismatch,
                                file => File,
                                expected => Hash,
                                hash => Other
                            }),
                            _ = file:delete(Tmp),
                            {error, hash_mismatch};
                        {error, _} = Error ->
                            _ = file:delete(Tmp),
                            Error
                    end;
                {error, _} = Error ->
                    Error
            end;
        false ->
            ?LOG_ERROR(#{
                in => zotonic_mod_backup,
                text => <<"Standby: backup.json names a file outside the backup dir, ignored">>,
                result => error,
                reason => bad_name,
                file => File
            }),
            {error, bad_name}
    end.

fetch(File, Local, Context) ->
    Request = #filestore_request{
        action = download,
        remote = <<"backup/", File/binary>>,
        local = Local
    },
    case z_notifier:first(Request, Context) of
        ok ->
            ok;
        undefined ->
            {error, no_filestore};
        Other ->
            ?LOG_ERROR(#{
                in => zotonic_mod_backup,
                text => <<"Standby: download from the filestore failed">>,
                result => error,
                reason => Other,
                file => File
            }),
            _ = file:delete(Local),
            {error, download}
    end.

%% Files of sets no longer in the index are removed.
remove_unreferenced(Old, New, Dir) ->
    Keep = backup_json_index:file_names(New),
    Drop = backup_json_index:file_names(Old) -- Keep,
    lists:foreach(
        fun(F) ->
            case backup_json_index:is_plain_name(F) of
                true -> _ = file:delete(filename:join(Dir, F)), ok;
                false -> ok
            end
        end,
        Drop).
