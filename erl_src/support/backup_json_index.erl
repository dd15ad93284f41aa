%% @doc The index of backup sets, backup.json in the backup directory. A JSON object from set
%% name to #{"timestamp", "database", "database_hash", "config_files", "config_files_hash",
%% "files", "files_hash", "is_filestore_uploaded", "is_encrypted"}, the same file stock
%% Zotonic writes and reads.
%%
%% This module only reads and writes; it does not serialise. All updates of a site's index go
%% through the site's mod_backup server (mod_backup:update_index/2), which calls update/2 in
%% its own process, so two updates can never interleave. A write goes to backup.json.tmp
%% first, is synced, and then renamed over backup.json: readers see the old or the new index,
%% never a torn one.
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

-module(backup_json_index).

-export([
    read/1,
    read_file/1,
    write/2,
    update/2,
    set_files/1,
    file_names/1,
    find_file/2,
    is_plain_name/1
]).

-include_lib("zotonic_core/include/zotonic.hrl").
-include("../backup.hrl").

-type index() :: #{ binary() => entry() }.
-type entry() :: #{ binary() => term() }.
-export_type([index/0, entry/0]).

%% The keys of an entry that name a file in the backup directory.
-define(FILE_KEYS, [<<"database">>, <<"config_files">>, <<"files">>]).

%% @doc Path of backup.json in the given backup directory.
filename(Dir) ->
    filename:join(Dir, ?BACKUP_INDEX).

%% @doc Read the index; a missing file is an empty index, a corrupt one is logged and read as
%% empty (the next write replaces it).
-spec read(Dir) -> index() when
    Dir :: file:filename_all().
read(Dir) ->
    File = filename(Dir),
    case read_file(File) of
        {ok, Index} ->
            Index;
        {error, enoent} ->
            #{};
        {error, Reason} ->
            ?LOG_ERROR(#{
                in => zotonic_mod_backup,
                text => <<"Backup index unreadable, using an empty index">>,
                result => error,
                reason => Reason,
                file => File
            }),
            #{}
    end.

%% @doc Read and check an index file (also used for a backup.json from a filestore). Entries
%% that are not objects with an integer timestamp are dropped.
-spec read_file(File) -> {ok, index()} | {error, Reason} when
    File :: file:filename_all(),
    Reason :: file:posix() | badarg | not_an_object.
read_file(File) ->
    case file:read_file(File) of
        {ok, Bin} ->
            try z_json:decode(Bin) of
                Index when is_map(Index) ->
                    {ok, maps:filter(fun is_valid_entry/2, Index)};
                _ ->
                    {error, not_an_object}
            catch
                _:_ -> {error, badarg}
            end;
        {error, _} = Error ->
            Error
    end.

%% @doc Write the index: backup.json.tmp, sync, rename over backup.json.
-spec write(Dir, Index) -> ok | {error, Reason} when
    Dir :: file:filename_all(),
    Index :: index(),
    Reason :: file:posix() | badarg | terminated | system_limit.
write(Dir, Index) when is_map(Index) ->
    File = filename(Dir),
    Tmp = <<(z_convert:to_binary(File))/binary, ".tmp">>,
    JSON = z_json:encode(Index),
    case write_synced(Tmp, JSON) of
        ok ->
            case file:rename(Tmp, File) of
                ok ->
                    ok;
                {error, _} = Error ->
                    _ = file:delete(Tmp),
                    Error
            end;
        {error, _} = Error ->
            _ = file:delete(Tmp),
            Error
    end.

%% @doc Read, change and write the index. Callers must be serialised (see the module doc).
-spec update(Dir, Fun) -> {ok, index()} | {error, Reason} when
    Dir :: file:filename_all(),
    Fun :: fun((index()) -> index()),
    Reason :: term().
update(Dir, Fun) ->
    Index = read(Dir),
    case Fun(Index) of
        Index ->
            {ok, Index};
        NewIndex when is_map(NewIndex) ->
            case write(Dir, NewIndex) of
                ok -> {ok, NewIndex};
                {error, _} = Error -> Error
            end
    end.

%% @doc The file names of a set, for the keys that are present and non-empty.
-spec set_files(Entry) -> [ binary() ] when
    Entry :: entry().
set_files(Entry) ->
    lists:filtermap(
        fun(Key) ->
            case maps:get(Key, Entry, undefined) of
                F when is_binary(F), F =/= <<>> -> {true, F};
                _ -> false
            end
        end,
        ?FILE_KEYS).

%% @doc All file names referenced by the index.
-spec file_names(Index) -> [ binary() ] when
    Index :: index().
file_names(Index) ->
    lists:usort(lists:flatmap(fun set_files/1, maps:values(Index))).

%% @doc Find the set that names this file.
-spec find_file(File, Index) -> {ok, Name} | error when
    File :: binary(),
    Index :: index(),
    Name :: binary().
find_file(File, Index) ->
    Found = maps:filter(
        fun(_Name, Entry) -> lists:member(File, set_files(Entry)) end,
        Index),
    case maps:keys(Found) of
        [Name | _] -> {ok, Name};
        [] -> error
    end.

%% ---------------------------------------------------------------------------------------------

is_valid_entry(Name, #{ <<"timestamp">> := Ts }) when is_binary(Name), is_integer(Ts) ->
    true;
is_valid_entry(Name, Entry) ->
    ?LOG_WARNING(#{
        in => zotonic_mod_backup,
        text => <<"Backup index entry ignored, not a valid set">>,
        result => error,
        reason => badarg,
        name => Name,
        entry => Entry
    }),
    false.

write_synced(File, Data) ->
    case file:open(File, [write, raw, binary]) of
        {ok, Fd} ->
            Result = case file:write(Fd, Data) of
                ok -> file:sync(Fd);
                {error, _} = Error -> Error
            end,
            case file:close(Fd) of
                ok -> Result;
                {error, _} = CloseError when Result =:= ok -> CloseError;
                {error, _} -> Result
            end;
        {error, _} = Error ->
            Error
    end.

%% @doc Is this a file name as backup.json may hold it: a plain name in the backup dir, with no
%% directory part, not hidden (so never `.' or `..'), no NUL. The download, the deletion of old
%% sets and the standby's downloads all apply this one rule.
-spec is_plain_name(Name) -> boolean() when
    Name :: binary().
is_plain_name(<<>>) -> false;
is_plain_name(<<".", _/binary>>) -> false;
is_plain_name(Name) when is_binary(Name) -> binary:match(Name, [<<"/">>, <<"\\">>, <<0>>]) =:= nomatch;
is_plain_name(_) -> false.
