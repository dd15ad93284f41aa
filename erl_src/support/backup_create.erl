%% Size: over 600 lines because one set is one transaction: its parts, the commit that swaps a
%% set in whole (commit_set/5, recover_commit/1) and the stock helpers sites call
%% (make_backup/4, read_admin_file/1, ...) must see the same file rules.
%%
%% @doc Make one backup set: the database dump (name.sql.gz), the site's config and security
%% files (config-name.tar.gz) and, for a full backup, the media archive (name.tar.gz); each
%% optionally encrypted to file.enc. Every compression and tar step runs in the Rust engine
%% (backup_archive), which also returns the sha256 of what it wrote, so no file is read twice.
%%
%% All parts are written as "<file>.tmp"; on any error every temporary file is removed and the
%% caller gets {error, Reason}. A made set replaces the set of the same name only in
%% commit_set/5, which mod_backup's server runs: the old files stay in place and listed until
%% the new set is whole, and are put back if the swap or the index write fails (a crash in
%% between is repaired by recover_commit/1 at the next start). A failed backup never costs the
%% previous set of its name.
%%
%% The worker reports its phases to the mod_backup server as
%% {mod_backup_phase, self(), Phase, FromPercent, ToPercent}; the engine sends its byte
%% progress ({backup_archive, Ref, Progress}) to that server too, which turns both into the
%% "progress" status on MQTT.
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

-module(backup_create).

-export([
    make_backup/4,
    make_set/1,
    commit_set/5,
    recover_commit/1,
    dir/1,
    name/2,
    command_configuration/0,
    pg_passfile/2,
    cleanup_tmp_files/1,
    regular_files/1,
    read_admin_file/1,
    read_json_file/1,
    update_admin_file/2
]).

%% The stock module's API, for sites that call it.
-ignore_xref([make_backup/4, pg_passfile/2, read_admin_file/1, read_json_file/1, update_admin_file/2]).

%% Pure parts the unit tests check directly.
-ifdef(TEST).
-export([config_file_list/1, config_file_list/3, delete_set_files/2]).
-ignore_xref([config_file_list/1, config_file_list/3, delete_set_files/2]).
-endif.

-include_lib("kernel/include/file.hrl").
-include_lib("zotonic_core/include/zotonic.hrl").
-include("../backup.hrl").

%% Weekly sets rotate over this many names.
-define(WEEKLY_BACKUPS, 5).

-type spec() :: #{
    name := binary(),
    is_full_backup := boolean(),
    context := z:context(),
    server => pid() | undefined
}.
-type part() :: #{
    key := database | config_files | files,
    file := binary(),
    tmp := file:filename_all(),
    hash := binary(),
    hmac => binary() | undefined
}.
-type made() :: #{ fields := map(), parts := [ part() ] }.
-export_type([spec/0, made/0]).

%% Sets from older versions named <site>-7 are dropped once this old.
-define(OLD_SUNDAY_MAX_AGE, 7 * 24 * 3600).
%% The old file of a set part while the new one is put in its place.
-define(ASIDE_EXT, ".prev").

%% @doc Make a set and register it in backup.json (the stock API): the set named Name, made
%% now, with the media archive when IsFullBackup and no cloud filestore is used. The set is put
%% in place by the site's mod_backup server (or here, when it does not run). Returns the new
%% index, as the stock function returns the new backup.json data.
-spec make_backup(DT, Name, IsFullBackup, Context) -> {ok, Index} | {error, Reason} when
    DT :: calendar:datetime(),
    Name :: binary(),
    IsFullBackup :: boolean(),
    Context :: z:context(),
    Index :: backup_json_index:index(),
    Reason :: term().
make_backup(DT, Name, IsFullBackup, Context) ->
    Spec = #{ name => Name, is_full_backup => z_convert:to_bool(IsFullBackup), context => Context },
    case make_set(Spec) of
        {ok, Made} ->
            Timestamp = calendar:datetime_to_gregorian_seconds(DT) - 62167219200,
            mod_backup:commit_set(Name, Timestamp, Made, Context);
        {error, _} = Error ->
            Error
    end.

%% @doc Make the set named in Spec in the backup directory, as `.tmp' files: the index entry
%% fields (atoms as keys, file names relative to the backup dir) and the parts, for
%% commit_set/5. On an error nothing of the set is left.
-spec make_set(Spec) -> {ok, made()} | {error, Reason} when
    Spec :: spec(),
    Reason :: not_configured | database_archive | config_archive | files_archive
            | encrypt | file:posix() | term().
make_set(#{ name := Name, is_full_backup := IsFull, context := Context } = Spec) ->
    Dir = dir(Context),
    Server = maps:get(server, Spec, undefined),
    IsFiles = IsFull andalso not backup_config:is_filestore_enabled(Context),
    IsEncrypt = backup_config:is_encrypting(Context),
    case IsEncrypt =:= false andalso backup_config:encrypt_backups(Context) of
        true ->
            ?LOG_WARNING(#{
                in => zotonic_mod_backup,
                text => <<"Backup not encrypted: encryption is on, but there is no backup password">>,
                result => error,
                reason => no_backup_encrypt_password,
                name => Name
            });
        false ->
            ok
    end,
    Phases = phases(IsFiles, IsEncrypt),
    ?LOG_INFO(#{
        in => zotonic_mod_backup,
        text => <<"Backup starting">>,
        name => Name,
        full_backup => IsFiles,
        encrypt => IsEncrypt
    }),
    Steps = [
        fun(Acc) -> step_database(Name, Dir, Server, Phases, Context, Acc) end,
        fun(Acc) -> step_config(Name, Dir, Server, Phases, Context, Acc) end,
        fun(Acc) when IsFiles -> step_files(Name, Dir, Server, Phases, IsEncrypt, Context, Acc);
           (Acc) -> {ok, Acc}
        end,
        fun(Acc) when IsEncrypt -> step_encrypt(Dir, Server, Phases, Context, Acc);
           (Acc) -> {ok, Acc}
        end
    ],
    case run_steps(Steps, []) of
        {ok, Parts} ->
            Parts1 = lists:reverse(Parts),
            Files = entry_fields(Parts1, IsEncrypt),
            ?LOG_INFO(#{
                in => zotonic_mod_backup,
                text => <<"Backup made">>,
                result => ok,
                name => Name,
                files => Files
            }),
            {ok, #{ fields => Files, parts => Parts1 }};
        {error, Reason, Parts} ->
            remove_tmp_parts(Parts),
            ?LOG_ERROR(#{
                in => zotonic_mod_backup,
                text => <<"Backup failed">>,
                result => error,
                reason => Reason,
                name => Name
            }),
            {error, Reason}
    end.

%% @doc Put a made set in place under Name and in backup.json. Every file of the set that
%% replaces an existing one is first linked aside (`<file>.prev'); if a rename or the write of
%% backup.json fails, the old files are put back and the new ones removed, so the backup dir
%% and its index are as before. Only after backup.json names the new set are the files that no
%% set names any more removed: the old set's leftovers and Sunday sets of older versions that
%% are over a week old (NowTs is the current time in Unix seconds). Runs in the site's
%% mod_backup server, which serialises all index changes.
-spec commit_set(Name, Timestamp, Made, Dir, NowTs) -> {ok, Index} | {error, Reason} when
    Name :: binary(),
    Timestamp :: integer(),
    Made :: made(),
    Dir :: file:filename_all(),
    NowTs :: integer(),
    Index :: backup_json_index:index(),
    Reason :: term().
commit_set(Name, Timestamp, #{ fields := Fields, parts := Parts }, Dir, NowTs) ->
    Index = backup_json_index:read(Dir),
    {NewIndex, Dropped} = drop_old_sunday_sets(Index#{ Name => index_entry(Timestamp, Fields) }, NowTs),
    case swap_in(Parts, Dir, []) of
        {ok, Swapped} ->
            case backup_json_index:write(Dir, NewIndex) of
                ok ->
                    lists:foreach(fun({_Target, Aside, _}) -> _ = file:delete(Aside) end, Swapped),
                    Replaced = case maps:find(Name, Index) of
                        {ok, Old} -> [ Old ];
                        error -> []
                    end,
                    Keep = backup_json_index:file_names(NewIndex),
                    lists:foreach(fun(E) -> delete_set_files({E, Keep}, Dir) end, Replaced ++ Dropped),
                    {ok, NewIndex};
                {error, Reason} ->
                    undo_swap(Swapped),
                    commit_failed(Name, Reason)
            end;
        {error, Reason, Swapped} ->
            undo_swap(Swapped),
            remove_tmp_parts(Parts),
            commit_failed(Name, Reason)
    end.

%% @doc Repair an interrupted commit_set/5 (the VM died between its renames and the write of
%% backup.json): a `<file>.prev' left in Dir is the old file. When backup.json names `<file>'
%% with the sha256 of its current content the commit finished and the old file goes; otherwise
%% the old file is put back. Returns the names of the files put back.
-spec recover_commit(Dir) -> [ binary() ] when
    Dir :: file:filename_all().
recover_commit(Dir) ->
    case file:list_dir(Dir) of
        {ok, Names} ->
            Asides = [ N || N0 <- Names,
                            N <- [ unicode:characters_to_binary(N0) ],
                            binary:longest_common_suffix([N, <<?ASIDE_EXT>>]) =:= byte_size(<<?ASIDE_EXT>>) ],
            case Asides of
                [] -> [];
                _ -> recover_asides(Asides, Dir, backup_json_index:read(Dir))
            end;
        {error, _} ->
            []
    end.

%% @doc The backup directory of the site, created when missing.
-spec dir(Context) -> file:filename_all() when
    Context :: z:context().
dir(Context) ->
    case z_path:files_subdir_ensure(<<"backup">>, Context) of
        {error, Reason} -> error({backup_dir, Reason});
        Dir -> unicode:characters_to_binary(Dir)
    end.

%% @doc The name of the set for a (UTC) date: Mon..Sat "<site>-1".."<site>-6", Sundays a
%% weekly set "<site>-w<K>" with K = (Gregorian days div 7) rem 5.
-spec name(Site, Date) -> binary() when
    Site :: atom() | binary(),
    Date :: calendar:date().
name(Site, Date) ->
    SiteB = z_convert:to_binary(Site),
    case calendar:day_of_the_week(Date) of
        7 ->
            K = (calendar:date_to_gregorian_days(Date) div 7) rem ?WEEKLY_BACKUPS,
            <<SiteB/binary, "-w", (integer_to_binary(K))/binary>>;
        Day ->
            <<SiteB/binary, "-", (integer_to_binary(Day))/binary>>
    end.

%% @doc Can backups be made here? The archive engine is part of this module; only pg_dump is
%% external (Zotonic config key pg_dump, default "pg_dump" on the PATH). The map has the keys
%% the admin template checks: db_dump (path or false) and archive (always true).
-spec command_configuration() -> {ok, Config} | {error, not_configured} when
    Config :: #{ db_dump := string(), archive := true }.
command_configuration() ->
    case backup_pg:pg_dump_executable() of
        false ->
            ?LOG_WARNING(#{
                in => zotonic_mod_backup,
                text => <<"Backup not possible: pg_dump not found">>,
                result => error,
                reason => not_configured,
                db_dump_config => backup_pg:pg_dump_command()
            }),
            {error, not_configured};
        PgDump ->
            {ok, #{ db_dump => PgDump, archive => true }}
    end.

%% @doc Write the site's database password to `.pgpass' in the backup dir, 0600 (the stock
%% API; the module's own dumps use a passfile per run that is removed afterwards).
-spec pg_passfile(DbOpts, Context) -> {ok, PassFile} | {error, Reason} when
    DbOpts :: proplists:proplist(),
    Context :: z:context(),
    PassFile :: file:filename_all(),
    Reason :: file:posix() | term().
pg_passfile(DbOpts, Context) ->
    PassFile = filename:join(dir(Context), <<".pgpass">>),
    _ = file:delete(PassFile),
    case backup_pg:write_passfile(PassFile, DbOpts) of
        ok -> {ok, PassFile};
        {error, _} = Error -> Error
    end.

%% @doc The site's backup.json (the stock API): its sets by name, `#{}' when it is missing or
%% unreadable.
-spec read_admin_file(Context) -> backup_json_index:index() when
    Context :: z:context().
read_admin_file(Context) ->
    backup_json_index:read(dir(Context)).

%% @doc A JSON file, decoded (the stock API).
-spec read_json_file(Filename) -> {ok, term()} | {error, Reason} when
    Filename :: file:filename_all(),
    Reason :: file:posix() | term().
read_json_file(Filename) ->
    case file:read_file(Filename) of
        {ok, Bin} ->
            try
                {ok, z_json:decode(Bin)}
            catch
                _:Reason -> {error, Reason}
            end;
        {error, _} = Error ->
            Error
    end.

%% @doc Change backup.json with UpdateFun (the stock API): through the site's mod_backup server
%% when it runs, so updates never interleave.
-spec update_admin_file(UpdateFun, Context) -> {ok, Index} | {error, Reason} when
    UpdateFun :: fun((backup_json_index:index()) -> backup_json_index:index()),
    Context :: z:context(),
    Index :: backup_json_index:index(),
    Reason :: term().
update_admin_file(UpdateFun, Context) ->
    mod_backup:update_index(UpdateFun, Context).

%% @doc Dump the site's database (its schema, when one is configured) as plain SQL, gzipped by
%% the engine as it streams out of pg_dump, into OutFile. The engine stops pg_dump when the
%% calling process dies. The password goes through a 0600 PGPASSFILE in the backup dir that is
%% removed whatever happens; PGPASSWORD is passed empty so that a password in the VM's
%% environment cannot take the place of the site's (libpq then reads the passfile).
-spec pg_dump(OutFile, Options) -> {ok, Summary} | {error, Reason} when
    OutFile :: file:filename_all(),
    Options :: #{ context := z:context(), progress => pid() },
    Summary :: map(),
    Reason :: not_configured | {command_failed, map()} | file:posix() | term().
pg_dump(OutFile, #{ context := Context } = Options) ->
    case backup_pg:pg_dump_executable() of
        false ->
            {error, not_configured};
        PgDump ->
            DbOpts = z_db_pool:get_database_options(Context),
            backup_pg:with_passfile(filename:dirname(OutFile), DbOpts, fun(Env) ->
                backup_archive:gzip_command(PgDump, pg_dump_args(DbOpts), Env, OutFile,
                                            archive_opts(maps:get(progress, Options, undefined)))
            end)
    end.

%% @doc The config tar's contents for a site: [{NameInArchive, PathOnDisk}], the config files
%% as config-<site>/config/<parent dir>/<file>, every file of the security dir as
%% config-<site>/security/<relative path>.
-spec config_file_list(Context) -> [{binary(), file:filename_all()}] when
    Context :: z:context().
config_file_list(Context) ->
    Site = z_context:site(Context),
    ConfigFiles = z_sites_config:config_files(Site),
    SecurityDir = case z_sites_config:security_dir(Site) of
        {ok, SD} -> SD;
        {error, _} -> undefined
    end,
    config_file_list(Site, ConfigFiles, SecurityDir).

%% @doc As config_file_list/1, from the site name, its config files and its security dir.
-spec config_file_list(Site, ConfigFiles, SecurityDir) -> [{binary(), file:filename_all()}] when
    Site :: atom() | binary(),
    ConfigFiles :: [ file:filename_all() ],
    SecurityDir :: file:filename_all() | undefined.
config_file_list(Site, ConfigFiles, SecurityDir) ->
    Prefix = <<"config-", (z_convert:to_binary(Site))/binary>>,
    Configs = lists:map(
        fun(Path) ->
            Parts = filename:split(unicode:characters_to_binary(Path)),
            Last2 = lists:nthtail(max(0, length(Parts) - 2), Parts),
            {join([Prefix, <<"config">> | Last2]), Path}
        end,
        ConfigFiles),
    Security = case SecurityDir of
        undefined -> [];
        _ ->
            [ {join([Prefix, <<"security">>, Rel]), filename:join(SecurityDir, Rel)}
              || Rel <- regular_files(SecurityDir) ]
    end,
    Configs ++ Security.

%% @doc Remove leftovers of an interrupted backup: every regular file ending in ".tmp" in
%% the backup directory. Returns the removed names.
-spec cleanup_tmp_files(Dir) -> [ binary() ] when
    Dir :: file:filename_all().
cleanup_tmp_files(Dir) ->
    case file:list_dir(Dir) of
        {ok, Names} ->
            lists:filtermap(
                fun(N) ->
                    NB = unicode:characters_to_binary(N),
                    Path = filename:join(Dir, NB),
                    case is_tmp(NB) andalso filelib:is_regular(Path) of
                        true ->
                            _ = file:delete(Path),
                            {true, NB};
                        false ->
                            false
                    end
                end,
                Names);
        {error, _} ->
            []
    end.

%% @doc Delete the files of an index entry, except those in Keep.
-spec delete_set_files(Entry, Dir) -> ok when
    Entry :: backup_json_index:entry() | {backup_json_index:entry(), Keep :: [binary()]},
    Dir :: file:filename_all().
delete_set_files({Entry, Keep}, Dir) ->
    lists:foreach(
        fun(F) ->
            case lists:member(F, Keep) orelse not backup_json_index:is_plain_name(F) of
                true -> ok;
                false -> _ = file:delete(filename:join(Dir, F)), ok
            end
        end,
        backup_json_index:set_files(Entry));
delete_set_files(Entry, Dir) ->
    delete_set_files({Entry, []}, Dir).

%% ---------------------------------------------------------------------------------------------
%% Steps; each returns {ok, Parts} or {error, Reason, Parts} with the parts made so far, so
%% the caller can remove them.

run_steps([], Parts) ->
    {ok, Parts};
run_steps([Step | Rest], Parts) ->
    case Step(Parts) of
        {ok, Parts1} -> run_steps(Rest, Parts1);
        {error, Reason, Parts1} -> {error, Reason, Parts1}
    end.

step_database(Name, Dir, Server, Phases, Context, Parts) ->
    phase(Server, database, Phases),
    mqtt_status(<<"sql_backup_started">>, Context),
    File = <<Name/binary, ".sql.gz">>,
    Tmp = tmp_path(Dir, File),
    case pg_dump(Tmp, #{ context => Context, progress => Server }) of
        {ok, #{ sha256 := Hash } = Stats} ->
            ?LOG_INFO(#{
                in => zotonic_mod_backup,
                text => <<"Backup of the database done">>,
                result => ok,
                bytes_in => maps:get(bytes_in, Stats, undefined),
                bytes_out => maps:get(bytes_out, Stats, undefined)
            }),
            {ok, [ #{ key => database, file => File, tmp => Tmp, hash => Hash } | Parts ]};
        {error, not_configured} ->
            _ = file:delete(Tmp),
            {error, not_configured, Parts};
        {error, Reason} ->
            log_engine_error(<<"Backup failed: pg_dump error">>, Reason),
            _ = file:delete(Tmp),
            {error, database_archive, Parts}
    end.

step_config(Name, Dir, Server, Phases, Context, Parts) ->
    phase(Server, config_files, Phases),
    File = <<"config-", Name/binary, ".tar.gz">>,
    Tmp = tmp_path(Dir, File),
    List = config_file_list(Context),
    case backup_archive:create_from_list(List, Tmp, archive_opts(Server)) of
        {ok, #{ sha256 := Hash }} ->
            {ok, [ #{ key => config_files, file => File, tmp => Tmp, hash => Hash } | Parts ]};
        {error, Reason} ->
            log_engine_error(<<"Backup failed: config files archive">>, Reason),
            _ = file:delete(Tmp),
            {error, config_archive, Parts}
    end.

step_files(Name, Dir, Server, Phases, IsEncrypt, Context, Parts) ->
    ArchiveDir = z_path:media_archive(Context),
    case filelib:is_dir(ArchiveDir) of
        true ->
            phase(Server, files, Phases),
            mqtt_status(<<"archive_backup_started">>, Context),
            File = <<Name/binary, ".tar.gz">>,
            Tmp = tmp_path(Dir, File),
            % An encrypted set keeps no plaintext archive to reuse (decided once per set).
            Prev = case IsEncrypt of
                true -> undefined;
                false -> previous_files_archive(Dir)
            end,
            Opts = (archive_opts(Server))#{ reuse => Prev },
            case backup_archive:create(ArchiveDir, Tmp, Opts) of
                {ok, #{ sha256 := Hash } = Stats} ->
                    ?LOG_INFO(#{
                        in => zotonic_mod_backup,
                        text => <<"Backup of media files done">>,
                        result => ok,
                        files => maps:get(files, Stats, undefined),
                        bytes_in => maps:get(bytes_in, Stats, undefined),
                        bytes_out => maps:get(bytes_out, Stats, undefined),
                        skipped => maps:get(skipped, Stats, undefined),
                        previous => Prev,
                        reuse => maps:get(reuse, Stats, undefined)
                    }),
                    {ok, [ #{ key => files, file => File, tmp => Tmp, hash => Hash } | Parts ]};
                {error, Reason} ->
                    log_engine_error(<<"Backup failed: media files archive">>, Reason),
                    _ = file:delete(Tmp),
                    {error, files_archive, Parts}
            end;
        false ->
            % No media uploaded yet: not an error, the set has no files archive.
            {ok, Parts}
    end.

%% @doc The media archive of the newest set in backup.json that has one on disk unencrypted:
%% the next archive copies from it the compressed bytes of every file unchanged since (each
%% checked first; a damaged one only costs compressing those files again). Encrypted sets keep
%% no plaintext archive, so with encryption on there is none. undefined when there is none.
-spec previous_files_archive(Dir) -> file:filename_all() | undefined when
    Dir :: file:filename_all().
previous_files_archive(Dir) ->
    Index = backup_json_index:read(Dir),
    Sets = lists:reverse(lists:sort([ {Ts, F} || {_Name, #{ <<"timestamp">> := Ts, <<"files">> := F }}
                                                  <- maps:to_list(Index),
                                                 is_integer(Ts), is_binary(F) ])),
    first_archive(Sets, Dir).

first_archive([], _Dir) ->
    undefined;
first_archive([{_Ts, F} | Rest], Dir) ->
    Path = filename:join(Dir, F),
    IsGz = binary:longest_common_suffix([F, <<".tar.gz">>]) =:= 7,
    case IsGz andalso backup_json_index:is_plain_name(F) andalso filelib:is_regular(Path) of
        true -> Path;
        false -> first_archive(Rest, Dir)
    end.

step_encrypt(Dir, Server, Phases, Context, Parts) ->
    phase(Server, encrypt, Phases),
    Password = backup_config:encrypt_password(Context),
    encrypt_parts(lists:reverse(Parts), Dir, Password, []).

encrypt_parts([], _Dir, _Password, Done) ->
    {ok, Done};
encrypt_parts([#{ file := File, tmp := Tmp } = Part | Rest], Dir, Password, Done) ->
    EncFile = <<File/binary, ".enc">>,
    EncTmp = tmp_path(Dir, EncFile),
    case backup_file_crypto:encrypt_file(Tmp, EncTmp, Password) of
        {ok, #{ sha256 := Hash } = Sealed} ->
            _ = file:delete(Tmp),
            Part1 = Part#{ file => EncFile, tmp => EncTmp, hash => Hash,
                           hmac => maps:get(hmac, Sealed, undefined) },
            encrypt_parts(Rest, Dir, Password, [ Part1 | Done ]);
        {error, Reason} ->
            ?LOG_ERROR(#{
                in => zotonic_mod_backup,
                text => <<"Backup failed: encryption">>,
                result => error,
                reason => Reason,
                file => File
            }),
            _ = file:delete(EncTmp),
            {error, encrypt, lists:reverse(Rest, [ Part | Done ])}
    end.

remove_tmp_parts(Parts) ->
    lists:foreach(fun(#{ tmp := Tmp }) -> _ = file:delete(Tmp) end, Parts).

%% Each part's file is linked aside (when it exists) and then replaced by the part's .tmp.
%% Returns what was done, for undo_swap/1.
swap_in([], _Dir, Swapped) ->
    {ok, Swapped};
swap_in([#{ file := File, tmp := Tmp } | Rest], Dir, Swapped) ->
    Target = filename:join(Dir, File),
    Aside = <<Target/binary, ?ASIDE_EXT>>,
    _ = file:delete(Aside),
    HasOld = case file:make_link(Target, Aside) of
        ok -> true;
        {error, enoent} -> false;
        {error, _} ->
            % No hard links here: move the old file aside instead.
            case file:rename(Target, Aside) of
                ok -> true;
                {error, _} -> error
            end
    end,
    case HasOld of
        error ->
            {error, aside_failed, Swapped};
        _ ->
            case file:rename(Tmp, Target) of
                ok ->
                    swap_in(Rest, Dir, [ {Target, Aside, HasOld} | Swapped ]);
                {error, Reason} ->
                    case HasOld of
                        true -> _ = file:rename(Aside, Target);
                        false -> ok
                    end,
                    {error, Reason, Swapped}
            end
    end.

undo_swap(Swapped) ->
    lists:foreach(
        fun({Target, Aside, true}) -> _ = file:rename(Aside, Target);
           ({Target, _Aside, false}) -> _ = file:delete(Target)
        end,
        Swapped).

commit_failed(Name, Reason) ->
    ?LOG_ERROR(#{
        in => zotonic_mod_backup,
        text => <<"Backup could not be put in place; the previous set is kept">>,
        result => error,
        reason => Reason,
        name => Name
    }),
    {error, Reason}.

recover_asides(Asides, Dir, Index) ->
    Hashes = maps:from_list([ {File, maps:get(hash_key_bin(Key), E, undefined)}
                              || E <- maps:values(Index),
                                 Key <- [ <<"database">>, <<"config_files">>, <<"files">> ],
                                 File <- [ maps:get(Key, E, undefined) ],
                                 is_binary(File) ]),
    lists:filtermap(
        fun(AsideName) ->
            File = binary:part(AsideName, 0, byte_size(AsideName) - byte_size(<<?ASIDE_EXT>>)),
            Target = filename:join(Dir, File),
            Aside = filename:join(Dir, AsideName),
            IsCommitted = case maps:get(File, Hashes, undefined) of
                Hash when is_binary(Hash) ->
                    % Without the engine (library missing) the old file is put back.
                    case catch backup_nif:file_digest(Target) of
                        {ok, #{ sha256 := Hash }} -> true;
                        _ -> false
                    end;
                _ ->
                    false
            end,
            case IsCommitted of
                true ->
                    _ = file:delete(Aside),
                    false;
                false ->
                    _ = file:rename(Aside, Target),
                    ?LOG_NOTICE(#{
                        in => zotonic_mod_backup,
                        text => <<"Backup put back a file of the previous set after an interrupted backup">>,
                        result => ok,
                        file => File
                    }),
                    {true, File}
            end
        end,
        Asides).

hash_key_bin(<<"database">>) -> <<"database_hash">>;
hash_key_bin(<<"config_files">>) -> <<"config_files_hash">>;
hash_key_bin(<<"files">>) -> <<"files_hash">>.

index_entry(Timestamp, Files) ->
    Entry = #{
        <<"timestamp">> => Timestamp,
        <<"database">> => maps:get(database, Files, undefined),
        <<"database_hash">> => maps:get(database_hash, Files, undefined),
        <<"config_files">> => maps:get(config_files, Files, undefined),
        <<"config_files_hash">> => maps:get(config_files_hash, Files, undefined),
        <<"files">> => maps:get(files, Files, undefined),
        <<"files_hash">> => maps:get(files_hash, Files, undefined),
        <<"is_filestore_uploaded">> => false,
        <<"is_encrypted">> => maps:get(is_encrypted, Files, false)
    },
    % The HMACs of encrypted parts, under keys the stock module ignores; only where present.
    maps:merge(Entry, maps:from_list([ {atom_to_binary(K), V} || K <- [database_hmac, config_files_hmac, files_hmac],
                                                                 V <- [maps:get(K, Files, undefined)], is_binary(V) ])).

%% Sets named <site>-7 come from older versions that made Sunday sets; they go after a week.
drop_old_sunday_sets(Index, NowTs) ->
    maps:fold(
        fun(Name, #{ <<"timestamp">> := Ts } = Entry, {Keep, Dropped}) ->
            IsOldSunday = binary:longest_common_suffix([Name, <<"-7">>]) =:= 2
                andalso Ts =< NowTs - ?OLD_SUNDAY_MAX_AGE,
            case IsOldSunday of
                true -> {maps:remove(Name, Keep), [ Entry | Dropped ]};
                false -> {Keep, Dropped}
            end
        end,
        {Index, []},
        Index).

-spec entry_fields([part()], boolean()) -> map().
entry_fields(Parts, IsEncrypt) ->
    Empty = #{
        database => undefined, database_hash => undefined,
        config_files => undefined, config_files_hash => undefined,
        files => undefined, files_hash => undefined,
        is_encrypted => IsEncrypt
    },
    lists:foldl(
        fun(#{ key := Key, file := File, hash := Hash } = Part, Acc) ->
            Acc1 = Acc#{ Key => File, hash_key(Key) => Hash },
            % Encrypted parts also get their HMAC, under a key the stock module ignores.
            case maps:get(hmac, Part, undefined) of
                Hmac when is_binary(Hmac) -> Acc1#{ hmac_key(Key) => Hmac };
                _ -> Acc1
            end
        end,
        Empty,
        Parts).

hash_key(database) -> database_hash;
hash_key(config_files) -> config_files_hash;
hash_key(files) -> files_hash.

hmac_key(database) -> database_hmac;
hmac_key(config_files) -> config_files_hmac;
hmac_key(files) -> files_hmac.

%% ---------------------------------------------------------------------------------------------
%% Progress

%% Ranges of the overall percentage per phase. The media archive dominates a full backup.
phases(IsFiles, IsEncrypt) ->
    Enc = case IsEncrypt of true -> 10; false -> 0 end,
    case IsFiles of
        true ->
            #{ database => {0, 25}, config_files => {25, 27},
               files => {27, 100 - Enc}, encrypt => {100 - Enc, 100} };
        false ->
            #{ database => {0, 90 - Enc}, config_files => {90 - Enc, 100 - Enc},
               encrypt => {100 - Enc, 100} }
    end.

phase(undefined, _Phase, _Phases) ->
    ok;
phase(Server, Phase, Phases) ->
    {From, To} = maps:get(Phase, Phases),
    Server ! {mod_backup_phase, self(), Phase, From, To},
    ok.

archive_opts(undefined) ->
    #{ format => gzip };
archive_opts(Server) ->
    #{ format => gzip, progress => Server }.

mqtt_status(Status, Context) ->
    _ = z_mqtt:publish(?BACKUP_TOPIC, #{ status => Status }, Context),
    ok.

log_engine_error(Text, {Reason, #{ message := Message } = Info}) ->
    ?LOG_ERROR(#{
        in => zotonic_mod_backup,
        text => Text,
        result => error,
        reason => Reason,
        message => Message,
        path => maps:get(path, Info, undefined)
    });
log_engine_error(Text, Reason) ->
    ?LOG_ERROR(#{
        in => zotonic_mod_backup,
        text => Text,
        result => error,
        reason => Reason
    }).

%% ---------------------------------------------------------------------------------------------
%% pg_dump

pg_dump_args(DbOpts) ->
    Schema = backup_pg:opt(dbschema, DbOpts, <<>>),
    SchemaArgs = case Schema of
        <<>> -> [];
        _ -> [ <<"-n">>, Schema ]
    end,
    backup_pg:connection_args(DbOpts)
    ++ [ <<"-w">>, <<"--quote-all-identifiers">>, <<"--format=plain">> ]
    ++ SchemaArgs
    ++ [ <<"--">>, backup_pg:opt(dbdatabase, DbOpts, <<"zotonic">>) ].

%% ---------------------------------------------------------------------------------------------
%% Files

tmp_path(Dir, File) ->
    filename:join(Dir, <<File/binary, ".tmp">>).

is_tmp(Name) ->
    binary:longest_common_suffix([Name, <<".tmp">>]) =:= 4.

%% @doc Regular files below Dir, as sorted relative paths; links (also to directories) and
%% special files are left out, and nothing outside Dir is visited. [] when Dir is missing.
-spec regular_files(Dir) -> [ binary() ] when
    Dir :: file:filename_all().
regular_files(Dir) ->
    lists:sort(regular_files(Dir, <<>>)).

regular_files(Dir, Rel) ->
    Path = case Rel of
        <<>> -> Dir;
        _ -> filename:join(Dir, Rel)
    end,
    case file:list_dir(Path) of
        {ok, Names} ->
            lists:flatmap(
                fun(N) ->
                    NB = unicode:characters_to_binary(N),
                    RelN = case Rel of
                        <<>> -> NB;
                        _ -> <<Rel/binary, "/", NB/binary>>
                    end,
                    case file:read_link_info(filename:join(Dir, RelN)) of
                        {ok, #file_info{ type = regular }} -> [ RelN ];
                        {ok, #file_info{ type = directory }} -> regular_files(Dir, RelN);
                        _ -> []
                    end
                end,
                Names);
        {error, _} ->
            []
    end.

join(Parts) ->
    iolist_to_binary(lists:join($/, Parts)).
