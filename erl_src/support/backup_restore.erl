%% Size: just over 600 lines: the order of a restore, the decrypt/HMAC step and the staged,
%% undoable files merge belong together; the database import is backup_restore_db.
%%
%% @doc Restore a backup set from the site's backup directory: media files, database, security
%% and config files, in that order and each only when asked.
%%
%% Nothing is touched before every file the chosen parts need is known to be there
%% (`{error, incomplete}' otherwise). Encrypted parts are decrypted to `.tmp' files in the
%% backup directory, removed afterwards whatever happens. When backup.json recorded the HMAC
%% of an encrypted part (`<part>_hmac'), the stored file is checked against it before anything
%% is decrypted, and a mismatch refuses the restore (`{error, hmac_mismatch}'); a set without
%% HMACs (made by the stock module or before they were recorded) is restored with a warning
%% in the log saying its files were not authenticated.
%%
%% - files: the archive is verified (gzip and tar structure, crc32 of every entry), extracted by
%%   the engine's safe extractor into a staging dir next to the media archive dir (absolute
%%   paths, `..' and escaping links refused before anything is written), and only then merged
%%   into the archive dir, as the stock module's extract does: the backup's files replace their
%%   namesakes, files added since the backup stay. Each replaced file is moved aside first; if
%%   any move fails, every change is undone, so the archive dir is either fully restored or as
%%   it was.
%% - database: see backup_restore_db (schema check, one transaction, rollback on failure).
%% - security, config: the config tar is extracted (safely) into a temporary dir; its
%%   `config-<site>/security/...' files are written to the site's security dir, its
%%   `config-<site>/config/priv/zotonic_site.*' (not `.config.in') and
%%   `config-<site>/config/config.d/...' files to the site's priv and priv/config.d dirs. Files
%%   not in the backup are left alone. The top dir may carry another site's name: a standby
%%   restores the sets of the site it stands in for.
%%
%% After a restore of the database, security or config files the site is restarted, after the
%% decrypted temporary files are removed (a site restart may stop the calling process).
%%
%% restore_backup/2,3 and restore_newest_backup/1,2 are the stock module's functions.
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

-module(backup_restore).

-export([
    default_options/0,
    all_options/0,
    restore_backup/2,
    restore_backup/3,
    restore_newest_backup/1,
    restore_newest_backup/2,
    restore/3,
    newest/1,
    is_file_missing/2
]).

%% The stock module's API, for sites that call it.
-ignore_xref([restore_backup/2, restore_backup/3, restore_newest_backup/1, restore_newest_backup/2]).

-include_lib("kernel/include/file.hrl").
-include_lib("zotonic_core/include/zotonic.hrl").

-type option() :: database | files | security | config.
-type reason() :: in_progress | unknown_backup | incomplete | schema_mismatch
                | bad_archive | unsafe_path | bad_dump | no_schema | database_import
                | wrong_password | bad_encrypted_file | hmac_mismatch | no_password | not_configured
                | limit_exceeded | term().
-export_type([option/0, reason/0]).

%% The steps in the contract's order.
-define(STEPS, [files, database, security, config]).

%% @doc Options of restore_backup/1: database and files.
-spec default_options() -> [ option() ].
default_options() ->
    [ database, files ].

%% @doc Everything: what a standby restores.
-spec all_options() -> [ option() ].
all_options() ->
    ?STEPS.

%% @doc Restore a set (the stock API) with the default options: its database and files.
-spec restore_backup(Backup, Context) -> ok | {error, Reason} when
    Backup :: binary() | backup_json_index:entry() | undefined,
    Context :: z:context(),
    Reason :: reason().
restore_backup(Backup, Context) ->
    restore_backup(Backup, default_options(), Context).

%% @doc Restore a set (the stock API), given by name or as its backup.json entry.
-spec restore_backup(Backup, Options, Context) -> ok | {error, Reason} when
    Backup :: binary() | backup_json_index:entry() | undefined,
    Options :: [ option() ],
    Context :: z:context(),
    Reason :: reason().
restore_backup(undefined, _Options, _Context) ->
    {error, unknown_backup};
restore_backup(Name, Options, Context) when is_binary(Name) ->
    restore(Name, Options, Context);
restore_backup(Entry, Options, Context) when is_map(Entry) ->
    locked(<<"(entry)">>, Entry, Options, z_acl:sudo(Context)).

%% @doc Restore the newest set (the stock API) with the default options.
-spec restore_newest_backup(Context) -> ok | {error, Reason} when
    Context :: z:context(),
    Reason :: nobackup | reason().
restore_newest_backup(Context) ->
    restore_newest_backup(default_options(), Context).

%% @doc Restore the newest set (the stock API); `{error, nobackup}' when there is none.
-spec restore_newest_backup(Options, Context) -> ok | {error, Reason} when
    Options :: [ option() ],
    Context :: z:context(),
    Reason :: nobackup | reason().
restore_newest_backup(Options, Context) ->
    case restore(recent, Options, Context) of
        {error, unknown_backup} -> {error, nobackup};
        Result -> Result
    end.

%% @doc Restore the named set (or the newest with `recent') of the site's backup.json.
%% Only one restore per site runs at a time (`{error, in_progress}').
-spec restore(Name, Options, Context) -> ok | {error, Reason} when
    Name :: binary() | recent,
    Options :: [ option() ],
    Context :: z:context(),
    Reason :: reason().
restore(Name, Options, Context) ->
    Context1 = z_acl:sudo(Context),
    Index = backup_json_index:read(backup_create:dir(Context1)),
    Found = case Name of
        recent -> newest(Index);
        _ -> maps:find(z_convert:to_binary(Name), Index)
    end,
    case Found of
        {ok, Entry} -> locked(Name, Entry, Options, Context1);
        error -> {error, unknown_backup}
    end.

%% @doc The newest set of an index.
-spec newest(Index) -> {ok, Entry} | error when
    Index :: backup_json_index:index(),
    Entry :: backup_json_index:entry().
newest(Index) ->
    case lists:sort([ {Ts, N} || {N, #{ <<"timestamp">> := Ts }} <- maps:to_list(Index) ]) of
        [] -> error;
        Sorted -> {ok, maps:get(element(2, lists:last(Sorted)), Index)}
    end.

%% @doc Is a file named by the index missing (or empty) in the backup directory?
-spec is_file_missing(File, Context) -> boolean() when
    File :: binary() | undefined | null,
    Context :: z:context().
is_file_missing(File, Context) when is_binary(File), File =/= <<>> ->
    Path = filename:join(backup_create:dir(Context), File),
    case file:read_file_info(Path) of
        {ok, #file_info{ type = regular, size = Size }} -> Size =:= 0;
        _ -> true
    end;
is_file_missing(_, _Context) ->
    false.

%% ---------------------------------------------------------------------------------------------

%% One restore per site at a time. The site restarts (when a part needs it) only after the
%% lock is released and the decrypted files are gone.
locked(Name, Entry, Options, Context) ->
    Lock = {{backup_restore, z_context:site(Context)}, self()},
    case global:trans(Lock, fun() -> restore_entry(Name, Entry, Options, Context) end, [node()], 0) of
        aborted -> {error, in_progress};
        {ok, Done} -> maybe_restart(Done, Context);
        {error, _} = Error -> Error
    end.

maybe_restart(Done, Context) ->
    case lists:any(fun(S) -> lists:member(S, [database, security, config]) end, Done) of
        true ->
            ?LOG_NOTICE(#{
                in => zotonic_mod_backup,
                text => <<"Restore done, restarting the site">>,
                result => ok,
                restored => Done
            }),
            _ = z_sites_manager:restart(z_context:site(Context)),
            ok;
        false ->
            ok
    end.

restore_entry(Name, Entry, Options, Context) ->
    Steps = [ S || S <- ?STEPS, lists:member(S, Options) ],
    Needed = lists:usort([ F || S <- Steps, F <- [ step_file(S, Entry) ], F =/= undefined ]),
    case [ F || F <- Needed, is_file_missing(F, Context) ] of
        [] ->
            ?LOG_NOTICE(#{
                in => zotonic_mod_backup,
                text => <<"Restore of backup starting">>,
                name => Name,
                options => Steps
            }),
            Dir = backup_create:dir(Context),
            case decrypt_all(Needed, Entry, Dir, Context, #{}) of
                {ok, Plain} ->
                    try
                        run_steps(Steps, Entry, Plain, Context, [])
                    after
                        remove_decrypted(Plain)
                    end;
                {error, _} = Error ->
                    Error
            end;
        Missing ->
            ?LOG_ERROR(#{
                in => zotonic_mod_backup,
                text => <<"Restore refused: files of the backup are missing">>,
                result => error,
                reason => incomplete,
                name => Name,
                files => Missing
            }),
            {error, incomplete}
    end.

step_file(files, Entry) -> entry_file(<<"files">>, Entry);
step_file(database, Entry) -> entry_file(<<"database">>, Entry);
step_file(security, Entry) -> entry_file(<<"config_files">>, Entry);
step_file(config, Entry) -> entry_file(<<"config_files">>, Entry).

entry_file(Key, Entry) ->
    case maps:get(Key, Entry, undefined) of
        F when is_binary(F), F =/= <<>> -> F;
        _ -> undefined
    end.

run_steps([], _Entry, _Plain, _Context, Done) ->
    {ok, lists:reverse(Done)};
run_steps([ Step | Steps ], Entry, Plain, Context, Done) ->
    case step_file(Step, Entry) of
        undefined ->
            % This part is not in the set (no media archive with a cloud filestore).
            run_steps(Steps, Entry, Plain, Context, Done);
        File ->
            {_, Path} = maps:get(File, Plain),
            case do_step(Step, Path, Context) of
                ok ->
                    run_steps(Steps, Entry, Plain, Context, [ Step | Done ]);
                {error, Reason} = Error ->
                    ?LOG_ERROR(#{
                        in => zotonic_mod_backup,
                        text => <<"Restore of backup failed">>,
                        result => error,
                        reason => Reason,
                        step => Step,
                        file => File,
                        restored => lists:reverse(Done)
                    }),
                    Error
            end
    end.

do_step(files, Path, Context) -> restore_files(Path, Context);
do_step(database, Path, Context) -> backup_restore_db:restore(Path, Context);
do_step(security, Path, Context) -> restore_config_tar(security, Path, Context);
do_step(config, Path, Context) -> restore_config_tar(config, Path, Context).

%% ---------------------------------------------------------------------------------------------
%% Decryption

decrypt_all([], _Entry, _Dir, _Context, Acc) ->
    {ok, Acc};
decrypt_all([ File | Files ], Entry, Dir, Context, Acc) ->
    Path = filename:join(Dir, File),
    case backup_file_crypto:is_encrypted(File) of
        false ->
            decrypt_all(Files, Entry, Dir, Context, Acc#{ File => {plain, Path} });
        true ->
            Unique = integer_to_binary(erlang:unique_integer([positive])),
            Base = filename:rootname(File),
            Out = filename:join(Dir, <<Base/binary, ".restore-", Unique/binary, ".tmp">>),
            Password = backup_config:encrypt_password(Context),
            case backup_file_crypto:decrypt_file(Path, Out, Password, hmac_option(File, Entry)) of
                {ok, _} ->
                    decrypt_all(Files, Entry, Dir, Context, Acc#{ File => {decrypted, Out} });
                {error, {Reason, Info}} ->
                    ?LOG_ERROR(#{
                        in => zotonic_mod_backup,
                        text => <<"Restore refused: backup file could not be decrypted">>,
                        result => error,
                        reason => Reason,
                        message => maps:get(message, Info, undefined),
                        file => File
                    }),
                    _ = file:delete(Out),
                    remove_decrypted(Acc),
                    {error, Reason}
            end
    end.

%% `#{hmac => Hex}' when the index recorded the HMAC of File, else `#{}' (logged: such a file
%% is not authenticated, only its sha256 was compared).
hmac_option(File, Entry) ->
    Keys = [ K || K <- [<<"database">>, <<"config_files">>, <<"files">>], maps:get(K, Entry, undefined) =:= File ],
    case [ H || K <- Keys, H <- [maps:get(<<K/binary, "_hmac">>, Entry, undefined)], is_binary(H) ] of
        [Hmac | _] ->
            #{ hmac => Hmac };
        [] ->
            ?LOG_WARNING(#{
                in => zotonic_mod_backup,
                text => <<"Restore: no HMAC recorded for this encrypted file; its content is not authenticated">>,
                result => warning,
                reason => no_hmac,
                file => File
            }),
            #{}
    end.

remove_decrypted(Plain) ->
    maps:foreach(
        fun(_File, {decrypted, Out}) -> _ = file:delete(Out), ok;
           (_File, _) -> ok
        end,
        Plain).

%% ---------------------------------------------------------------------------------------------
%% Media files

%% Restore the media archive dir from the (plain) archive TarGz: extracted into a staging
%% dir beside the archive dir, which the extractor fills only after the whole stream checked out
%% (one read of the archive), then merged into the archive dir (see merge/3). A corrupt archive
%% gives `{error, bad_archive}', an archive with an absolute path, `..' or an escaping link
%% `{error, unsafe_path}', both with the archive dir untouched.
restore_files({_, TarGz}, Context) ->
    restore_files(TarGz, Context);
restore_files(TarGz, Context) ->
    ArchiveDir = z_convert:to_binary(z_path:media_archive(Context)),
    Staging = sibling(ArchiveDir, <<"restore">>),
    try
        case backup_archive:extract(TarGz, Staging, #{ overwrite => true }) of
            {ok, Summary} ->
                case merge(Staging, ArchiveDir, sibling(ArchiveDir, <<"replaced">>)) of
                    ok ->
                        ?LOG_NOTICE(#{
                            in => zotonic_mod_backup,
                            text => <<"Restored the media files">>,
                            result => ok,
                            files => maps:get(files, Summary, undefined),
                            bytes => maps:get(bytes, Summary, undefined)
                        }),
                        ok;
                    {error, Reason} = Error ->
                        ?LOG_ERROR(#{
                            in => zotonic_mod_backup,
                            text => <<"Restore of the media files failed; the archive dir is as it was">>,
                            result => error,
                            reason => Reason
                        }),
                        Error
                end;
            {error, Reason} ->
                engine_error(<<"Restore of the media files refused">>, TarGz, Reason)
        end
    after
        _ = file:del_dir_r(Staging)
    end.

%% Move the staged tree into Dir: what Dir lacks is moved in whole, a namesake is first moved
%% to the same path under Aside. On an error every move is undone in reverse order. Aside is
%% removed afterwards either way (after an undo it is empty).
merge(Staging, Dir, Aside) ->
    case filelib:is_dir(Dir) of
        false ->
            case z_filelib:ensure_dir(Dir) of
                ok -> file:rename(Staging, Dir);
                {error, _} = Error -> Error
            end;
        true ->
            Result = case merge_dir(Staging, Dir, Aside, <<>>, []) of
                {ok, _Done} ->
                    ok;
                {error, Reason, Done} ->
                    undo_merge(Done),
                    {error, Reason}
            end,
            _ = file:del_dir_r(Aside),
            Result
    end.

merge_dir(Staging, Dir, Aside, Rel, Done) ->
    case file:list_dir(join(Staging, Rel)) of
        {ok, Names} ->
            merge_entries(lists:sort(Names), Staging, Dir, Aside, Rel, Done);
        {error, Reason} ->
            {error, Reason, Done}
    end.

merge_entries([], _Staging, _Dir, _Aside, _Rel, Done) ->
    {ok, Done};
merge_entries([ Name | Names ], Staging, Dir, Aside, Rel, Done) ->
    RelN = join(Rel, unicode:characters_to_binary(Name)),
    From = join(Staging, RelN),
    To = join(Dir, RelN),
    Merged = case {type(From), type(To)} of
        {directory, directory} ->
            merge_dir(Staging, Dir, Aside, RelN, Done);
        {_, missing} ->
            case file:rename(From, To) of
                ok -> {ok, [ {added, To} | Done ]};
                {error, Reason} -> {error, Reason, Done}
            end;
        {_, _Existing} ->
            AsidePath = join(Aside, RelN),
            case z_filelib:ensure_dir(AsidePath) of
                ok ->
                    case file:rename(To, AsidePath) of
                        ok ->
                            Done1 = [ {replaced, To, AsidePath} | Done ],
                            case file:rename(From, To) of
                                ok -> {ok, Done1};
                                {error, Reason} -> {error, Reason, Done1}
                            end;
                        {error, Reason} ->
                            {error, Reason, Done}
                    end;
                {error, Reason} ->
                    {error, Reason, Done}
            end
    end,
    case Merged of
        {ok, Done2} -> merge_entries(Names, Staging, Dir, Aside, Rel, Done2);
        {error, _, _} = Error -> Error
    end.

undo_merge(Done) ->
    lists:foreach(
        fun({added, To}) ->
                _ = file:del_dir_r(To), _ = file:delete(To), ok;
           ({replaced, To, AsidePath}) ->
                case type(To) of
                    missing -> ok;
                    _ -> _ = file:del_dir_r(To), _ = file:delete(To), ok
                end,
                _ = file:rename(AsidePath, To),
                ok
        end,
        Done).

type(Path) ->
    case file:read_link_info(Path) of
        {ok, #file_info{ type = Type }} -> Type;
        {error, _} -> missing
    end.

join(Dir, <<>>) -> Dir;
join(<<>>, Name) -> Name;
join(Dir, Name) -> filename:join(Dir, Name).

sibling(Dir, What) ->
    Parent = filename:dirname(Dir),
    Base = filename:basename(Dir),
    Unique = integer_to_binary(erlang:unique_integer([positive])),
    filename:join(Parent, <<".", Base/binary, ".", What/binary, "-", Unique/binary>>).

engine_error(Text, File, {Reason, Info}) when is_atom(Reason), is_map(Info) ->
    ?LOG_ERROR(#{
        in => zotonic_mod_backup,
        text => Text,
        result => error,
        reason => Reason,
        message => maps:get(message, Info, undefined),
        path => maps:get(path, Info, undefined),
        file => File
    }),
    {error, Reason};
engine_error(Text, File, Reason) ->
    ?LOG_ERROR(#{
        in => zotonic_mod_backup,
        text => Text,
        result => error,
        reason => Reason,
        file => File
    }),
    {error, Reason}.

%% ---------------------------------------------------------------------------------------------
%% Config and security files

%% Write the security files (`security') or the site's config files (`config') of the
%% (plain) config tar to the site's dirs.
restore_config_tar(What, {_, TarGz}, Context) ->
    restore_config_tar(What, TarGz, Context);
restore_config_tar(What, TarGz, Context) ->
    Site = z_context:site(Context),
    Tmp = sibling(backup_create:dir(Context), <<"config">>),
    try
        case backup_archive:extract(TarGz, Tmp, #{}) of
            {ok, _} ->
                case top_dirs(Tmp) of
                    [Top] ->
                        Root = filename:join(Tmp, Top),
                        case targets(What, Root, Site) of
                            {ok, Targets} -> copy_files(What, Targets);
                            {error, _} = Error -> Error
                        end;
                    Tops ->
                        ?LOG_ERROR(#{
                            in => zotonic_mod_backup,
                            text => <<"Restore refused: the config archive has no single config-<site> dir">>,
                            result => error,
                            reason => bad_archive,
                            dirs => Tops
                        }),
                        {error, bad_archive}
                end;
            {error, Reason} ->
                engine_error(<<"Restore of the config files refused">>, TarGz, Reason)
        end
    after
        _ = file:del_dir_r(Tmp)
    end.

top_dirs(Dir) ->
    {ok, Names} = file:list_dir(Dir),
    lists:sort([ z_convert:to_binary(N) || N <- Names,
                 binary:match(z_convert:to_binary(N), <<"config-">>) =:= {0, 7},
                 filelib:is_dir(filename:join(Dir, N)) ]).

%% [{From, To}] of the files to write.
targets(security, Root, Site) ->
    case z_sites_config:security_dir(Site) of
        {ok, SecurityDir} ->
            From = filename:join(Root, <<"security">>),
            {ok, [ {filename:join(From, Rel), filename:join(SecurityDir, Rel)} || Rel <- backup_create:regular_files(From) ]};
        {error, _} = Error ->
            Error
    end;
targets(config, Root, Site) ->
    case z_path:site_dir(Site) of
        {error, _} = Error ->
            Error;
        SiteDir ->
            Priv = filename:join(SiteDir, <<"priv">>),
            PrivFrom = filename:join([Root, <<"config">>, <<"priv">>]),
            SiteConfigs = [ {filename:join(PrivFrom, F), filename:join(Priv, F)}
                            || F <- backup_create:regular_files(PrivFrom),
                               binary:match(F, <<"/">>) =:= nomatch,
                               is_site_config(F) ],
            ConfigDFrom = filename:join([Root, <<"config">>, <<"config.d">>]),
            ConfigD = [ {filename:join(ConfigDFrom, Rel), filename:join([Priv, <<"config.d">>, Rel])}
                        || Rel <- backup_create:regular_files(ConfigDFrom) ],
            {ok, SiteConfigs ++ ConfigD}
    end.

%% zotonic_site.config, zotonic_site.yaml, ... but not the template zotonic_site.config.in.
is_site_config(<<"zotonic_site.config.in">>) -> false;
is_site_config(<<"zotonic_site.", _/binary>>) -> true;
is_site_config(_) -> false.

copy_files(What, Targets) ->
    Results = [ {To, copy_file(From, To)} || {From, To} <- Targets ],
    case [ {To, R} || {To, {error, R}} <- Results ] of
        [] ->
            ?LOG_NOTICE(#{
                in => zotonic_mod_backup,
                text => <<"Restored files from the config backup">>,
                result => ok,
                what => What,
                files => [ To || {To, ok} <- Results ]
            }),
            ok;
        [ {_, Reason} | _ ] = Failed ->
            ?LOG_ERROR(#{
                in => zotonic_mod_backup,
                text => <<"Restore of config backup files failed">>,
                result => error,
                reason => Reason,
                what => What,
                failed => Failed
            }),
            {error, Reason}
    end.

%% Copy to To.tmp with From's mode, then rename over To.
copy_file(From, To) ->
    Tmp = <<(z_convert:to_binary(To))/binary, ".restore.tmp">>,
    Result = case z_filelib:ensure_dir(To) of
        ok ->
            case file:copy(From, Tmp) of
                {ok, _} ->
                    {ok, #file_info{ mode = Mode }} = file:read_file_info(From),
                    _ = file:change_mode(Tmp, Mode band 8#777),
                    file:rename(Tmp, To);
                {error, _} = Error ->
                    Error
            end;
        {error, _} = Error ->
            Error
    end,
    case Result of
        ok -> ok;
        {error, _} -> _ = file:delete(Tmp), Result
    end.
