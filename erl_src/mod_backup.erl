%% Size: over 600 lines because Zotonic wants one module to hold the module's callbacks, its
%% observers, the stock API (start_backup/1, list_backups/1, ...) and the per-site gen_server
%% that serialises backups, uploads and downloads; the work itself is in support/.
%%
%% @doc Backup module. Makes nightly and manual backups of a site's database, configuration and
%% media files, lists and serves them for download, and uploads them to a cloud filestore.
%% A drop-in for Zotonic's own mod_backup whose compression, tar and encryption run in a Rust
%% NIF (see backup_archive and backup_file_crypto).
%%
%% One server per site, registered as z_utils:name_for_site(mod_backup, Site). It owns the
%% site's backup.json (all updates are serialised through it, see update_index/2), runs at
%% most one backup and one upload at a time, each in a linked worker process, and turns the
%% workers' reports into MQTT statuses on model/backup/event/backup.
%% Across the sites of a node one backup runs at a time: the workers queue in Zotonic's `jobs'
%% queue `mod_backup' (limit 1), as the stock module's do. The statuses:
%% started, sql_backup_started, archive_backup_started, progress (with percent), completed,
%% error, uploaded, upload_error.
%%
%% Every hour the server checks the nightly rule: daily_dump 1 or 2, the UTC time past 03:00
%% and no set newer than today 00:00 UTC -> start a backup. The clock is the system's UTC time;
%% the app env key `clock' (a fun returning a UTC datetime) replaces it, so the tests can put the
%% rule and the set names on any date.
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

-module(mod_backup).
-behaviour(gen_server).

-mod_title("Backup").
-mod_description("Make a backup of the database and files.").
-mod_prio(600).
-mod_provides([backup]).
-mod_depends([]).
%% The revision log: tables backup_revision, backup_edge_log and backup_medium_log, and (since
%% schema 5) backup_revision_dict, made by manage_schema/2 through m_backup_revision:install/1.
-mod_schema(5).
-mod_config([
    #{
        key => daily_dump,
        type => integer,
        default => "0",
        description => "Nightly backup: 0 = none, 1 = database, config and files, 2 = database and config only."
    },
    #{
        key => admin_panel,
        type => boolean,
        default => false,
        description => "Show the revisions and import/export panel on the resource edit pages."
    },
    #{
        key => allow_backup_download,
        type => boolean,
        default => true,
        description => "Allow downloading backup files from the admin backup page."
    },
    #{
        key => allow_manual_backup,
        type => boolean,
        default => true,
        description => "Allow starting a backup from the admin backup page."
    },
    #{
        key => revision_retention_months,
        type => integer,
        default => 18,
        description => "Months to keep resource revisions (at least 1)."
    },
    #{
        key => user_revision_retention_days,
        type => integer,
        default => 90,
        description => "Days to keep revisions of resources with personal data (at least 1)."
    },
    #{
        key => user_deletion_retention_days,
        type => integer,
        default => 30,
        description => "Days to keep revisions of deleted users (1 to 30)."
    },
    #{
        key => encrypt_backups,
        type => boolean,
        default => false,
        description => "Encrypt backup files. Switching this on generates a password when none is set."
    },
    #{
        key => backup_encrypt_password,
        type => string,
        default => "",
        description => "Password of the encrypted backups. Keep a copy in a safe place outside this server."
    }
]).

-export([
    start_link/1,

    observe_admin_menu/3,
    observe_backup_list/2,
    observe_backup_start/2,
    observe_backup_restore/2,
    observe_backup_download/2,
    observe_m_config_update/2,
    observe_rsc_update_done/2,
    observe_rsc_delete/2,
    observe_edge_insert/2,
    observe_edge_delete/2,
    observe_media_update_done/2,
    observe_rsc_upload/2,
    observe_search_query/2,
    observe_tick_24h/2,

    manage_schema/2,
    revisions_compact/1,
    revisions_downgrade/1,

    start_backup/1,
    start_backup/2,
    list_backups/1,
    backup_in_progress/1,
    is_uploading/1,
    restore_backup/1,
    restore_backup/3,
    download_backup/1,
    file_exists/2,
    file_forbidden/2,

    update_index/2,
    commit_set/4
]).

%% Called by Zotonic: its notifier (observe_*), module manager (manage_schema/2),
%% controller_file (file_exists/2, file_forbidden/2) and command line (download_backup/1).
-ignore_xref([
    observe_admin_menu/3, observe_backup_list/2, observe_backup_start/2, observe_backup_restore/2,
    observe_backup_download/2, observe_m_config_update/2, observe_rsc_update_done/2,
    observe_rsc_delete/2, observe_edge_insert/2, observe_edge_delete/2,
    observe_media_update_done/2, observe_rsc_upload/2, observe_search_query/2,
    observe_tick_24h/2, manage_schema/2, file_exists/2, file_forbidden/2, download_backup/1,
    start_link/1
]).
%% The module's API for operators (the README's restore and revision commands).
-ignore_xref([restore_backup/1, revisions_compact/1]).

-export([
    init/1,
    handle_call/3,
    handle_cast/2,
    handle_info/2,
    terminate/2,
    code_change/3
]).

-include_lib("zotonic_core/include/zotonic.hrl").
-include_lib("zotonic_core/include/zotonic_file.hrl").
-include_lib("zotonic_mod_admin/include/admin_menu.hrl").
-include("backup.hrl").

%% How often the nightly rule is checked.
-define(PERIODIC_INTERVAL, 3600 * 1000).

-record(state, {
    context :: z:context(),
    is_env_backup = false :: boolean(),
    timer_ref :: timer:tref() | undefined,
    backup_pid = undefined :: pid() | undefined,
    backup_start = undefined :: calendar:datetime() | undefined,
    backup_name = undefined :: binary() | undefined,
    backup_result = undefined :: undefined | {ok, map()} | {error, term()},
    progress = #{} :: map(),
    upload_pid = undefined :: pid() | undefined,
    upload_name = undefined :: binary() | undefined,
    download_pid = undefined :: pid() | undefined
}).

%% ---------------------------------------------------------------------------------------------
%% Observers

%% @doc Admin menu: "Backup" under modules, "Deleted pages" under content.
-spec observe_admin_menu(#admin_menu{}, Acc, Context) -> Acc when
    Acc :: list(),
    Context :: z:context().
observe_admin_menu(#admin_menu{}, Acc, Context) ->
    [
        #menu_item{
            id = admin_backup,
            parent = admin_modules,
            label = ?__("Backup", Context),
            url = {admin_backup},
            visiblecheck = {acl, use, mod_backup}
        },
        #menu_separator{
            parent = admin_content,
            visiblecheck = {acl, use, mod_backup},
            sort = 2000000
        },
        #menu_item{
            id = admin_backup_deleted,
            parent = admin_content,
            label = ?__("Deleted pages", Context),
            url = {admin_backup_deleted},
            visiblecheck = {acl, use, mod_backup},
            sort = 2000000
        }
        | Acc
    ].

%% @doc Zotonic's command line: list the backups.
-spec observe_backup_list(backup_list, Context) -> [ map() ] when
    Context :: z:context().
observe_backup_list(backup_list, Context) ->
    list_backups(Context).

%% @doc Zotonic's command line: start a full backup.
-spec observe_backup_start(backup_start, Context) -> ok | {error, Reason} when
    Context :: z:context(),
    Reason :: in_progress | env_backup.
observe_backup_start(backup_start, Context) ->
    start_backup(Context).

%% @doc Switching encryption on without a password generates one.
-spec observe_m_config_update(#m_config_update{}, Context) -> ok when
    Context :: z:context().
observe_m_config_update(#m_config_update{ module = ?MODULE, key = encrypt_backups }, Context) ->
    ensure_encrypt_password(Context);
observe_m_config_update(#m_config_update{}, _Context) ->
    ok.

%% @doc Save a revision of an inserted or updated resource, and the props of a deleted one.
-spec observe_rsc_update_done(#rsc_update_done{}, Context) -> ok | {error, term()} when
    Context :: z:context().
observe_rsc_update_done(#rsc_update_done{ action = Action, id = Id, post_props = Props }, Context)
        when Action =:= insert; Action =:= update ->
    m_backup_revision:save_revision(Id, Props, Context);
observe_rsc_update_done(#rsc_update_done{ action = delete, id = Id, pre_props = Props }, Context) ->
    m_backup_revision:save_deleted(Id, Props, Context);
observe_rsc_update_done(#rsc_update_done{}, _Context) ->
    ok.

%% @doc A resource is deleted: make sure its medium record is in the medium log.
-spec observe_rsc_delete(#rsc_delete{}, Context) -> ok when
    Context :: z:context().
observe_rsc_delete(#rsc_delete{ id = Id }, Context) ->
    m_backup_revision:medium_delete_check(Id, Context).

%% @doc Log an inserted edge.
-spec observe_edge_insert(#edge_insert{}, Context) -> ok when
    Context :: z:context().
observe_edge_insert(#edge_insert{ subject_id = S, predicate = P, object_id = O }, Context) ->
    m_backup_revision:edge_insert(S, P, O, Context).

%% @doc Log a deleted edge.
-spec observe_edge_delete(#edge_delete{}, Context) -> ok when
    Context :: z:context().
observe_edge_delete(#edge_delete{ subject_id = S, predicate = P, object_id = O }, Context) ->
    m_backup_revision:edge_delete(S, P, O, Context).

%% @doc Log an inserted, updated or deleted medium record.
-spec observe_media_update_done(#media_update_done{}, Context) -> ok when
    Context :: z:context().
observe_media_update_done(#media_update_done{ action = insert, id = Id, post_props = Props }, Context) ->
    m_backup_revision:medium_insert(Id, Props, Context);
observe_media_update_done(#media_update_done{ action = update, id = Id, post_props = Props }, Context) ->
    m_backup_revision:medium_update(Id, Props, Context);
observe_media_update_done(#media_update_done{ action = delete, id = Id, pre_props = Props }, Context) ->
    m_backup_revision:medium_delete(Id, Props, Context);
observe_media_update_done(#media_update_done{}, _Context) ->
    ok.

%% @doc Replace or create a resource from an uploaded per-resource backup file.
-spec observe_rsc_upload(#rsc_upload{}, Context) -> {ok, m_rsc:resource_id()} | {error, term()} when
    Context :: z:context().
observe_rsc_upload(#rsc_upload{} = Upload, Context) ->
    backup_rsc_upload:rsc_upload(Upload, Context).

%% @doc The `backup_deleted' search: deleted resources, for those who may use mod_backup.
-spec observe_search_query(#search_query{}, Context) -> #search_result{} | [] | undefined when
    Context :: z:context().
observe_search_query(#search_query{ name = <<"backup_deleted">>, offsetlimit = OffsetLimit }, Context) ->
    case z_acl:is_allowed(use, mod_backup, Context) of
        true -> m_backup_revision:list_deleted(OffsetLimit, Context);
        false -> []
    end;
observe_search_query(#search_query{}, _Context) ->
    undefined.

%% @doc Daily pruning of the revision log, except on a standby (backup environment) site.
-spec observe_tick_24h(tick_24h, Context) -> ok when
    Context :: z:context().
observe_tick_24h(tick_24h, Context) ->
    case m_site:environment(Context) of
        backup -> ok;
        _Env -> m_backup_revision:periodic_cleanup(Context)
    end.

%% @doc Zotonic's command line: restore a set (a name, or recent for the newest).
-spec observe_backup_restore({backup_restore, Name, Options}, Context) -> ok | {error, Reason} when
    Name :: binary() | recent,
    Options :: [ backup_restore:option() ],
    Context :: z:context(),
    Reason :: backup_restore:reason().
observe_backup_restore({backup_restore, Name, Options}, Context) ->
    restore_backup(Name, Options, Context).

%% @doc Zotonic's command line: a standby fetches new sets from the filestore now.
-spec observe_backup_download(backup_download, Context) -> ok | {error, Reason} when
    Context :: z:context(),
    Reason :: not_env_backup | in_progress | uploading | not_started.
observe_backup_download(backup_download, Context) ->
    download_backup(Context).

%% ---------------------------------------------------------------------------------------------
%% API

%% @doc Install or upgrade the revision log tables.
-spec manage_schema(Version, Context) -> ok when
    Version :: install | {upgrade, integer()} | integer(),
    Context :: z:context().
manage_schema(_Version, Context) ->
    m_backup_revision:install(Context).

%% @doc Convert the site's stock `erlang' revision rows (and rows written before its newest
%% compression dictionary) to keyframes and deltas, in the background, resource by resource
%% (resumable: run it again after an interruption). Trains the site's dictionary first.
-spec revisions_compact(Context) -> {ok, pid()} | {error, already_running} when
    Context :: z:context().
revisions_compact(Context) ->
    backup_revision_compact:start(Context).

%% @doc Rewrite every revision row as a stock `erlang' row, so the site can go back to
%% Zotonic's own mod_backup.
-spec revisions_downgrade(Context) -> {ok, #{ rows := non_neg_integer(), errors := non_neg_integer() }} when
    Context :: z:context().
revisions_downgrade(Context) ->
    backup_revision_compact:downgrade(Context).

%% @doc Started by Zotonic's module manager, once per site.
-spec start_link(Args) -> {ok, pid()} | {error, term()} when
    Args :: proplists:proplist().
start_link(Args) when is_list(Args) ->
    {context, Context} = proplists:lookup(context, Args),
    Name = z_utils:name_for_site(?MODULE, z_context:site(Context)),
    gen_server:start_link({local, Name}, ?MODULE, Args, []).

%% @doc Start a full backup: database, config and (without a cloud filestore) media files.
-spec start_backup(Context) -> ok | {error, Reason} when
    Context :: z:context(),
    Reason :: in_progress | env_backup.
start_backup(Context) ->
    start_backup(true, Context).

%% @doc Start a full backup, or one of only the database and config.
-spec start_backup(IsFullBackup, Context) -> ok | {error, Reason} when
    IsFullBackup :: boolean(),
    Context :: z:context(),
    Reason :: in_progress | env_backup.
start_backup(IsFullBackup, Context) ->
    gen_server:call(server(Context), {start_backup, z_convert:to_bool(IsFullBackup)}).

%% @doc The backup sets, newest first; while a backup runs, first an entry for it with
%% is_running = true.
-spec list_backups(Context) -> [ map() ] when
    Context :: z:context().
list_backups(Context) ->
    Sets = list_sets(backup_json_index:read(backup_create:dir(Context))),
    case gen_server:call(server(Context), in_progress) of
        undefined ->
            Sets;
        {Name, Start} ->
            [ #{ name => <<"(", Name/binary, ")">>, timestamp => Start, is_running => true } | Sets ]
    end.

%% @doc Is a backup running for this site?
-spec backup_in_progress(Context) -> boolean() when
    Context :: z:context().
backup_in_progress(Context) ->
    gen_server:call(server(Context), in_progress) =/= undefined.

%% @doc Is an upload to the cloud filestore running for this site?
-spec is_uploading(Context) -> boolean() when
    Context :: z:context().
is_uploading(Context) ->
    gen_server:call(server(Context), is_uploading).

%% @doc Restore the newest set: its database and media files. The site restarts afterwards.
-spec restore_backup(Context) -> ok | {error, Reason} when
    Context :: z:context(),
    Reason :: backup_restore:reason().
restore_backup(Context) ->
    restore_backup(recent, backup_restore:default_options(), Context).

%% @doc Restore a set by name (or recent, the newest), the parts in Options from
%% database, files, security and config. Refused while a backup or an upload runs.
-spec restore_backup(Name, Options, Context) -> ok | {error, Reason} when
    Name :: binary() | string() | recent,
    Options :: [ backup_restore:option() ],
    Context :: z:context(),
    Reason :: backup_restore:reason().
restore_backup(<<"recent">>, Options, Context) ->
    restore_backup(recent, Options, Context);
restore_backup(Name, Options, Context) ->
    case backup_in_progress(Context) of
        true ->
            {error, in_progress};
        false ->
            case is_uploading(Context) of
                true -> {error, uploading};
                false -> backup_restore:restore(Name, Options, Context)
            end
    end.

%% @doc On a standby (environment backup): fetch new sets from the filestore now, and
%% restore the newest when it is new.
-spec download_backup(Context) -> ok | {error, Reason} when
    Context :: z:context(),
    Reason :: not_env_backup | in_progress | uploading | not_started.
download_backup(Context) ->
    case m_site:environment(Context) of
        backup -> gen_server:call(server(Context), download_backup);
        _ -> {error, not_env_backup}
    end.

%% @doc controller_file callback: the path of a backup file, only for names in backup.json.
-spec file_exists(File, Context) -> {true, Path} | false when
    File :: file:filename_all(),
    Context :: z:context(),
    Path :: file:filename_all().
file_exists(File, Context) ->
    case indexed_file(File, Context) of
        {ok, Path} ->
            ?LOG_INFO(#{
                in => zotonic_mod_backup,
                text => <<"Download of backup file">>,
                result => ok,
                file => File
            }),
            {true, Path};
        {error, Reason} ->
            ?LOG_WARNING(#{
                in => zotonic_mod_backup,
                text => <<"Download of backup file refused, not a backup file">>,
                result => error,
                reason => Reason,
                file => File
            }),
            false
    end.

%% @doc controller_file callback: downloads need an admin or use of mod_backup, and downloads
%% switched on. Zotonic passes the request's `path' context value here, which is `undefined'
%% for the download dispatch rule (the file name reached file_exists/2, which only accepts names
%% in backup.json); a name that is given must be such a name too.
-spec file_forbidden(File, Context) -> boolean() when
    File :: file:filename_all() | undefined,
    Context :: z:context().
file_forbidden(File, Context) ->
    IsAllowed = (z_acl:is_admin(Context) orelse z_acl:is_allowed(use, mod_backup, Context))
        andalso backup_config:allow_backup_download(Context)
        andalso (File =:= undefined orelse element(1, indexed_file(File, Context)) =:= ok),
    case IsAllowed of
        true ->
            false;
        false ->
            ?LOG_WARNING(#{
                in => zotonic_mod_backup,
                text => <<"Download of backup file forbidden">>,
                result => error,
                reason => eacces,
                file => File
            }),
            true
    end.

%% @doc Change backup.json. The function runs in the site's server, so updates never
%% interleave; it gets the index and returns the new one.
-spec update_index(Fun, Context) -> {ok, Index} | {error, Reason} when
    Fun :: fun((backup_json_index:index()) -> backup_json_index:index()),
    Context :: z:context(),
    Index :: backup_json_index:index(),
    Reason :: term().
update_index(Fun, Context) when is_function(Fun, 1) ->
    Offline = fun() -> backup_json_index:update(backup_create:dir(Context), Fun) end,
    index_change({update_index, Fun}, Offline, Context).

%% @doc Put a set made by backup_create:make_set/1 in place and in backup.json (see
%% backup_create:commit_set/5), in the site's server, so it never interleaves with other
%% changes of the index.
-spec commit_set(Name, Timestamp, Made, Context) -> {ok, Index} | {error, Reason} when
    Name :: binary(),
    Timestamp :: integer(),
    Made :: backup_create:made(),
    Context :: z:context(),
    Index :: backup_json_index:index(),
    Reason :: term().
commit_set(Name, Timestamp, Made, Context) ->
    NowTs = unix_seconds(calendar:universal_time()),
    Offline = fun() -> backup_create:commit_set(Name, Timestamp, Made, backup_create:dir(Context), NowTs) end,
    index_change({commit_set, Name, Timestamp, Made}, Offline, Context).

%% A change of backup.json runs in the site's server (Request), so changes never interleave;
%% while the server does not run (module stopped), Offline runs under the site's index lock.
index_change(Request, Offline, Context) ->
    case whereis(server(Context)) of
        undefined -> with_index_lock(Offline, Context);
        _ -> gen_server:call(server(Context), Request, infinity)
    end.


%% ---------------------------------------------------------------------------------------------
%% gen_server

%% @private
-spec init(proplists:proplist()) -> {ok, #state{}}.
init(Args) ->
    process_flag(trap_exit, true),
    {context, Context} = proplists:lookup(context, Args),
    z_context:logger_md(Context),
    Context1 = z_acl:sudo(z_context:new(Context)),
    IsEnvBackup = (m_site:environment(Context1) =:= backup),
    ok = backup_revision_cache:new(Context1),
    ok = backup_revision_dict:new(Context1),
    ok = backup_revision_dict:warm(Context1),
    Dir = backup_create:dir(Context1),
    _ = backup_create:recover_commit(Dir),
    case backup_create:cleanup_tmp_files(Dir) of
        [] ->
            ok;
        Removed ->
            ?LOG_NOTICE(#{
                in => zotonic_mod_backup,
                text => <<"Backup removed temporary files of an interrupted backup">>,
                result => ok,
                files => Removed
            })
    end,
    Message = case IsEnvBackup of
        true -> periodic_download;
        false -> periodic_backup
    end,
    ok = ensure_job_queue(),
    {ok, TRef} = timer:send_interval(?PERIODIC_INTERVAL, Message),
    {ok, #state{
        context = Context1,
        is_env_backup = IsEnvBackup,
        timer_ref = TRef
    }}.

%% @private
-spec handle_call(term(), gen_server:from(), #state{}) -> {reply, term(), #state{}}.
handle_call({start_backup, _IsFull}, _From, #state{ is_env_backup = true } = State) ->
    {reply, {error, env_backup}, State};
handle_call({start_backup, _IsFull}, _From, #state{ backup_pid = Pid } = State) when is_pid(Pid) ->
    {reply, {error, in_progress}, State};
handle_call({start_backup, IsFull}, _From, State) ->
    {reply, ok, do_start_backup(IsFull, State)};
handle_call(in_progress, _From, #state{ backup_pid = undefined } = State) ->
    {reply, undefined, State};
handle_call(in_progress, _From, #state{ backup_name = Name, backup_start = Start } = State) ->
    {reply, {Name, Start}, State};
handle_call(is_uploading, _From, #state{ upload_pid = Pid } = State) ->
    {reply, is_pid(Pid), State};
handle_call({update_index, Fun}, _From, State) ->
    {reply, do_update_index(Fun, State), State};
handle_call({commit_set, Name, Timestamp, Made}, _From, #state{ context = Context } = State) ->
    Result = backup_create:commit_set(Name, Timestamp, Made, backup_create:dir(Context),
                                      unix_seconds(now_utc(State))),
    {reply, Result, State};
handle_call(is_downloading, _From, #state{ download_pid = Pid } = State) ->
    {reply, is_pid(Pid), State};
handle_call(download_backup, _From, #state{ is_env_backup = false } = State) ->
    {reply, {error, not_env_backup}, State};
handle_call(download_backup, _From, #state{ download_pid = Pid } = State) when is_pid(Pid) ->
    {reply, {error, in_progress}, State};
handle_call(download_backup, _From, #state{ upload_pid = Pid } = State) when is_pid(Pid) ->
    {reply, {error, uploading}, State};
handle_call(download_backup, _From, State) ->
    State1 = maybe_download(State),
    case State1#state.download_pid of
        undefined -> {reply, {error, not_started}, State1};
        _ -> {reply, ok, State1}
    end;
handle_call(Request, _From, State) ->
    ?LOG_WARNING(#{
        in => zotonic_mod_backup,
        text => <<"Backup server: unknown call">>,
        result => error,
        reason => unknown_call,
        request => Request
    }),
    {reply, {error, unknown_call}, State}.

%% @private
-spec handle_cast(term(), #state{}) -> {noreply, #state{}}.
handle_cast(_Msg, State) ->
    {noreply, State}.

%% @private
-spec handle_info(term(), #state{}) -> {noreply, #state{}}.
handle_info(periodic_backup, #state{ is_env_backup = false } = State) ->
    {noreply, periodic_backup(State)};
handle_info(periodic_download, #state{ is_env_backup = true } = State) ->
    {noreply, maybe_download(State)};
handle_info({mod_backup_phase, Pid, Phase, From, To}, #state{ backup_pid = Pid, progress = Old } = State) ->
    % The percentage never goes back, even if a late engine report of the previous phase
    % arrived after this phase started.
    Percent = max(From, maps:get(percent, Old, 0)),
    Progress = #{ phase => Phase, from => From, to => To, percent => Percent },
    publish_progress(Progress, State),
    {noreply, State#state{ progress = Progress }};
handle_info({backup_archive, _Ref, #{} = Counts}, #state{ backup_pid = Pid } = State) when is_pid(Pid) ->
    {noreply, archive_progress(Counts, State)};
handle_info({mod_backup_result, Pid, Result}, #state{ backup_pid = Pid } = State) ->
    {noreply, register_result(Result, State)};
handle_info({'EXIT', Pid, Reason}, #state{ backup_pid = Pid } = State) ->
    {noreply, backup_done(Reason, State)};
handle_info({'EXIT', Pid, Reason}, #state{ upload_pid = Pid } = State) ->
    {noreply, upload_done(Reason, State)};
handle_info({'EXIT', Pid, Reason}, #state{ download_pid = Pid } = State) ->
    {noreply, download_done(Reason, State)};
handle_info({'EXIT', _Pid, _Reason}, State) ->
    {noreply, State};
handle_info(_Info, State) ->
    {noreply, State}.

%% @private
-spec terminate(term(), #state{} | term()) -> ok.
terminate(_Reason, #state{ timer_ref = TRef, backup_pid = BackupPid, upload_pid = UploadPid } = State) ->
    _ = timer:cancel(TRef),
    stop_worker(UploadPid),
    case is_pid(BackupPid) of
        true ->
            stop_worker(BackupPid),
            _ = backup_create:cleanup_tmp_files(backup_create:dir(State#state.context)),
            ok;
        false ->
            ok
    end;
terminate(_Reason, _OtherAppsState) ->
    % Zotonic's stock mod_backup running when this code was loaded (a swap restarted instead of
    % deactivated): its state is not ours, and its timer and workers die with the process.
    ok.

%% @private
-spec code_change(term(), #state{}, term()) -> {ok, #state{}}.
code_change(_OldVsn, State, _Extra) ->
    {ok, State}.

%% ---------------------------------------------------------------------------------------------
%% Backups

periodic_backup(#state{ backup_pid = Pid } = State) when is_pid(Pid) ->
    State;
periodic_backup(#state{ upload_pid = Pid } = State) when is_pid(Pid) ->
    State;
periodic_backup(#state{ context = Context } = State) ->
    State1 = case backup_config:daily_dump(Context) of
        ?BACKUP_NONE -> State;
        ?BACKUP_ALL -> maybe_nightly(true, State);
        ?BACKUP_DB -> maybe_nightly(false, State)
    end,
    case State1#state.backup_pid of
        undefined -> maybe_upload(State1);
        _ -> State1
    end.

%% The nightly rule: after 03:00 UTC, and no set made since today 00:00 UTC.
maybe_nightly(IsFull, #state{ context = Context } = State) ->
    {Date, Time} = now_utc(State),
    case Time >= {3, 0, 0} of
        true ->
            Index = backup_json_index:read(backup_create:dir(Context)),
            Newest = lists:max([ 0 | [ Ts || #{ <<"timestamp">> := Ts } <- maps:values(Index) ] ]),
            case Newest < unix_seconds({Date, {0, 0, 0}}) of
                true -> do_start_backup(IsFull, State);
                false -> State
            end;
        false ->
            State
    end.

do_start_backup(IsFull, #state{ context = Context } = State) ->
    Now = {Date, _} = now_utc(State),
    Name = backup_create:name(z_context:site(Context), Date),
    Server = self(),
    Spec = #{ name => Name, is_full_backup => IsFull, context => Context, server => Server },
    publish_status(<<"started">>, State),
    Pid = spawn_link(fun() -> backup_worker(Server, Spec) end),
    State#state{
        backup_pid = Pid,
        backup_start = Now,
        backup_name = Name,
        backup_result = undefined,
        progress = #{}
    }.

%% The worker waits for a running upload (its files may be the ones we overwrite), then for
%% backups of other sites on this node (the `mod_backup' jobs queue), then makes the set and
%% reports the outcome to the server.
backup_worker(Server, #{ context := Context } = Spec) ->
    z_context:logger_md(Context),
    wait_for_upload(Server),
    Result = jobs:run(
        ?MODULE,
        fun() ->
            try
                backup_create:make_set(Spec)
            catch
                Class:Reason:Stack ->
                    ?LOG_ERROR(#{
                        in => zotonic_mod_backup,
                        text => <<"Backup crashed">>,
                        result => error,
                        reason => Reason,
                        class => Class,
                        stack => Stack
                    }),
                    {error, Reason}
            end
        end),
    Server ! {mod_backup_result, self(), Result},
    ok.

wait_for_upload(Server) ->
    case gen_server:call(Server, is_uploading, infinity) of
        true ->
            timer:sleep(1000),
            wait_for_upload(Server);
        false ->
            ok
    end.

%% A made set replaces the set of its name only now, whole; a failed one leaves that set as it
%% was (its parts were .tmp files, removed by make_set or here after a crash of the worker).
register_result({ok, #{ fields := Files } = Made}, #state{ backup_name = Name, backup_start = Start } = State) ->
    Dir = backup_create:dir(State#state.context),
    case backup_create:commit_set(Name, unix_seconds(Start), Made, Dir, unix_seconds(now_utc(State))) of
        {ok, _} ->
            publish_progress(#{ phase => done, percent => 100 }, State),
            State#state{ backup_result = {ok, Files} };
        {error, _} = Error ->
            State#state{ backup_result = Error }
    end;
register_result({error, _} = Error, State) ->
    _ = backup_create:cleanup_tmp_files(backup_create:dir(State#state.context)),
    State#state{ backup_result = Error }.

backup_done(Reason, #state{ backup_name = Name, backup_result = Result } = State) ->
    Status = case {Reason, Result} of
        {normal, {ok, _}} ->
            <<"completed">>;
        {normal, _} ->
            <<"error">>;
        {_, _} ->
            ?LOG_ERROR(#{
                in => zotonic_mod_backup,
                text => <<"Backup process stopped; the previous set of its name is kept">>,
                result => error,
                reason => Reason,
                name => Name
            }),
            _ = backup_create:cleanup_tmp_files(backup_create:dir(State#state.context)),
            <<"error">>
    end,
    publish_status(Status, State),
    State1 = State#state{
        backup_pid = undefined,
        backup_start = undefined,
        backup_name = undefined,
        backup_result = undefined,
        progress = #{}
    },
    maybe_upload(State1).

do_update_index(Fun, #state{ context = Context }) ->
    try
        backup_json_index:update(backup_create:dir(Context), Fun)
    catch
        Class:Reason:Stack ->
            ?LOG_ERROR(#{
                in => zotonic_mod_backup,
                text => <<"Backup index update failed">>,
                result => error,
                reason => Reason,
                class => Class,
                stack => Stack
            }),
            {error, Reason}
    end.

%% ---------------------------------------------------------------------------------------------
%% Uploads to the cloud filestore

maybe_upload(#state{ upload_pid = Pid } = State) when is_pid(Pid) ->
    State;
maybe_upload(#state{ context = Context } = State) ->
    case backup_config:is_filestore_enabled(Context) of
        true ->
            Index = backup_json_index:read(backup_create:dir(Context)),
            Pending = [ {Ts, Name} || {Name, #{ <<"timestamp">> := Ts } = E} <- maps:to_list(Index),
                                      maps:get(<<"is_filestore_uploaded">>, E, false) =/= true ],
            case lists:sort(Pending) of
                [] ->
                    State;
                Sorted ->
                    {_, Name} = lists:last(Sorted),
                    Entry = maps:get(Name, Index),
                    Server = self(),
                    Pid = spawn_link(fun() -> upload_worker(Server, Name, Entry, Context) end),
                    State#state{ upload_pid = Pid, upload_name = Name }
            end;
        false ->
            State
    end.

%% Upload database and config (media files live in the filestore already), mark the set as
%% uploaded, then upload backup.json so a standby sees the set only when its files are there.
upload_worker(Server, Name, Entry, Context) ->
    z_context:logger_md(Context),
    Dir = backup_create:dir(Context),
    Files = [ F || F <- [ maps:get(<<"database">>, Entry, undefined),
                          maps:get(<<"config_files">>, Entry, undefined) ],
                   is_binary(F), F =/= <<>> ],
    ok = upload_files(Files, Dir, Context),
    Mark = fun(Index) ->
        case maps:find(Name, Index) of
            {ok, E} -> Index#{ Name => E#{ <<"is_filestore_uploaded">> => true } };
            error -> Index
        end
    end,
    {ok, _} = gen_server:call(Server, {update_index, Mark}, infinity),
    ok = upload_file(?BACKUP_INDEX, Dir, Context),
    ?LOG_INFO(#{
        in => zotonic_mod_backup,
        text => <<"Backup uploaded to the filestore">>,
        result => ok,
        name => Name
    }),
    ok.

upload_files([], _Dir, _Context) ->
    ok;
upload_files([ F | Fs ], Dir, Context) ->
    ok = upload_file(F, Dir, Context),
    upload_files(Fs, Dir, Context).

upload_file(File, Dir, Context) ->
    Request = #filestore_request{
        action = upload,
        remote = <<"backup/", File/binary>>,
        local = filename:join(Dir, File)
    },
    case z_notifier:first(Request, Context) of
        ok ->
            ok;
        Other ->
            ?LOG_ERROR(#{
                in => zotonic_mod_backup,
                text => <<"Backup upload to the filestore failed">>,
                result => error,
                reason => Other,
                file => File
            }),
            exit({upload_failed, File, Other})
    end.

upload_done(Reason, State) ->
    Status = case Reason of
        normal -> <<"uploaded">>;
        _ -> <<"upload_error">>
    end,
    publish_status(Status, State),
    State#state{ upload_pid = undefined, upload_name = undefined }.

%% ---------------------------------------------------------------------------------------------
%% Standby: downloads from the cloud filestore

maybe_download(#state{ download_pid = Pid } = State) when is_pid(Pid) ->
    State;
maybe_download(#state{ upload_pid = Pid } = State) when is_pid(Pid) ->
    State;
maybe_download(#state{ context = Context } = State) ->
    case backup_config:is_filestore_enabled(Context) of
        true ->
            Pid = spawn_link(fun() ->
                z_context:logger_md(Context),
                exit(backup_standby:download(Context))
            end),
            State#state{ download_pid = Pid };
        false ->
            State
    end.

download_done(Reason, State) ->
    case Reason of
        ok -> ok;
        nothing_new -> ok;
        _ ->
            ?LOG_ERROR(#{
                in => zotonic_mod_backup,
                text => <<"Standby download or restore failed">>,
                result => error,
                reason => Reason
            })
    end,
    State#state{ download_pid = undefined }.

%% ---------------------------------------------------------------------------------------------
%% Progress

archive_progress(#{ bytes_done := Done, bytes_total := Total },
                 #state{ progress = #{ from := From, to := To, percent := Old } = P } = State)
    when is_integer(Done), is_integer(Total), Total > 0 ->
    Percent = From + ((To - From) * min(Done, Total)) div Total,
    case Percent > Old of
        true ->
            P1 = P#{ percent => Percent },
            publish_progress(P1, State),
            State#state{ progress = P1 };
        false ->
            State
    end;
archive_progress(_Counts, State) ->
    State.

publish_progress(#{ phase := Phase, percent := Percent }, #state{ backup_name = Name } = State) ->
    publish(#{
        status => <<"progress">>,
        name => Name,
        phase => atom_to_binary(Phase, utf8),
        percent => Percent
    }, State).

publish_status(Status, State) ->
    publish(#{ status => Status }, State).

publish(Payload, #state{ context = Context }) ->
    _ = z_mqtt:publish(?BACKUP_TOPIC, Payload, Context),
    ok.

%% ---------------------------------------------------------------------------------------------
%% Helpers

%% The node's queue of backups, made once (by the first site's server), as the stock module
%% makes it.
ensure_job_queue() ->
    jobs:run(zotonic_singular_job, fun() ->
        case jobs:queue_info(?MODULE) of
            undefined -> jobs:add_queue(?MODULE, [ {regulators, [ {counter, [ {limit, 1} ]} ]} ]);
            {queue, _} -> ok
        end
    end).

%% Index changes while the site's server does not run (module stopped): one at a time per site.
with_index_lock(Fun, Context) ->
    global:trans({{?MODULE, index, z_context:site(Context)}, self()}, Fun, [node()], infinity).

server(Context) ->
    z_utils:name_for_site(?MODULE, z_context:site(Context)).

now_utc(#state{}) ->
    case application:get_env(zotonic_mod_backup, clock) of
        {ok, Clock} when is_function(Clock, 0) -> Clock();
        _ -> calendar:universal_time()
    end.

unix_seconds(DT) ->
    calendar:datetime_to_gregorian_seconds(DT) - 62167219200.

from_unix_seconds(Ts) ->
    calendar:gregorian_seconds_to_datetime(Ts + 62167219200).

list_sets(Index) ->
    Sets = maps:fold(
        fun(Name, #{ <<"timestamp">> := Ts } = E, Acc) ->
            Set = #{
                name => Name,
                timestamp => from_unix_seconds(Ts),
                is_encrypted => maps:get(<<"is_encrypted">>, E, false) =:= true,
                is_database_present => is_file(<<"database">>, E),
                is_files_present => is_file(<<"files">>, E),
                is_config_files_present => is_file(<<"config_files">>, E),
                is_filestore_uploaded => maps:get(<<"is_filestore_uploaded">>, E, false) =:= true
            },
            [ {Ts, Name, Set} | Acc ]
        end,
        [],
        Index),
    [ S || {_, _, S} <- lists:reverse(lists:sort(Sets)) ].

is_file(Key, Entry) ->
    case maps:get(Key, Entry, undefined) of
        F when is_binary(F), F =/= <<>> -> true;
        _ -> false
    end.

%% A download name must be a plain file name in the backup dir that backup.json names.
indexed_file(File, Context) ->
    case catch unicode:characters_to_binary(File) of
        FileB when is_binary(FileB) ->
            case backup_json_index:is_plain_name(FileB) of
                true ->
                    Dir = backup_create:dir(Context),
                    case backup_json_index:find_file(FileB, backup_json_index:read(Dir)) of
                        {ok, _Name} ->
                            Path = filename:join(Dir, FileB),
                            case filelib:is_regular(Path) of
                                true -> {ok, Path};
                                false -> {error, enoent}
                            end;
                        error ->
                            {error, not_indexed}
                    end;
                false ->
                    {error, bad_name}
            end;
        _ ->
            {error, bad_name}
    end.

ensure_encrypt_password(Context) ->
    case m_config:get_boolean(?MODULE, encrypt_backups, Context) of
        true ->
            case z_convert:to_binary(m_config:get_value(?MODULE, backup_encrypt_password, Context)) of
                <<>> ->
                    ok = m_config:set_value(?MODULE, backup_encrypt_password, z_ids:password(), Context),
                    ?LOG_NOTICE(#{
                        in => zotonic_mod_backup,
                        text => <<"Backup encryption switched on, generated a password">>,
                        result => ok
                    }),
                    ok;
                _ ->
                    ok
            end;
        false ->
            ok
    end.

stop_worker(Pid) when is_pid(Pid) ->
    unlink(Pid),
    exit(Pid, kill),
    ok;
stop_worker(undefined) ->
    ok.
