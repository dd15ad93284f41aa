%% @doc zotonic_host: start and stop emulated Zotonic sites for tests and the demo.
%%
%% start_site/2 gives a site its own directories, its own PostgreSQL database (from PGHOST,
%% PGPORT, PGUSER, PGPASSWORD) with Zotonic's core tables and base datamodel, three users
%% (the admin 1, an editor and a member), and starts its modules the way Zotonic does (see
%% z_module_manager). The functions below the site lifecycle are what tests use to look at
%% the host: contexts per role, the MQTT log, the render log and the filestore switch.
%% @end

-module(zotonic_host).

-export([
    start_site/2,
    stop_site/1,
    site_config/1,
    site_info/1,
    context/2,
    user_id/2,
    create_user/3,
    set_environment/2,
    filestore/2,
    filestore_dir/1,
    mqtt_messages/1,
    mqtt_messages/2,
    mqtt_flush/1,
    render_log/1,
    log/2
]).

% Called by the suites (or the demo) only, as Zotonic's own API would be.
-ignore_xref([create_user/3, filestore/2, mqtt_flush/1, mqtt_messages/1, mqtt_messages/2, render_log/1, set_environment/2, user_id/2]).

-include_lib("zotonic_core/include/zotonic.hrl").

-type site_options() :: #{
    dir => file:filename_all(),         % root of the site's dirs (default: a fresh temp dir)
    modules => [atom() | {code, atom()}], % modules to start (default [mod_backup])
    lib_dirs => [file:filename_all()],  % where to scan for *zotonic_mod_* (default: build lib dir)
    environment => production | backup | atom(),
    editor_use => [atom()],             % modules an editor may `use'
    keep_db => boolean()                % stop_site/1 keeps the database (for inspection)
}.
-type who() :: sudo | admin | editor | member | anonymous | {user, integer()}.
-export_type([site_options/0, who/0]).

%% ---------------------------------------------------------------------------------------------
%% Sites

%% @doc Create and start a site; returns a sudo context of it.
-spec start_site(Site, Options) -> {ok, Context} | {error, term()} when
    Site :: atom(),
    Options :: site_options(),
    Context :: z:context().
start_site(Site, Options) when is_atom(Site), is_map(Options) ->
    ok = zotonic_host_registry:ensure_started(),
    case ets:lookup(zotonic_host_sites, Site) of
        [_] -> {error, already_started};
        [] -> start_site_1(Site, Options)
    end.

start_site_1(Site, Options) ->
    Root = case maps:find(dir, Options) of
        {ok, D} -> D;
        error ->
            filename:join(["/tmp", "zotonic_host",
                           atom_to_list(Site) ++ "-" ++ integer_to_list(erlang:unique_integer([positive]))])
    end,
    Dirs = make_dirs(Site, Root),
    DbName = "zh_" ++ string:lowercase(atom_to_list(Site)) ++ "_"
             ++ integer_to_list(erlang:system_time(millisecond) rem 100000000)
             ++ integer_to_list(erlang:unique_integer([positive])),
    DbOptions = [{dbdatabase, DbName}, {dbschema, "public"} | db_options_from_env()],
    ok = write_site_config(Site, Dirs, DbOptions),
    case create_database(DbName) of
        ok ->
            Info = #{
                site => Site,
                dirs => Dirs,
                db_options => DbOptions,
                options => Options
            },
            true = ets:insert(zotonic_host_sites, {Site, Info}),
            true = ets:insert(zotonic_host_kv, {{Site, environment}, maps:get(environment, Options, production)}),
            case maps:find(editor_use, Options) of
                {ok, Use} -> true = ets:insert(zotonic_host_kv, {{Site, editor_use}, Use});
                error -> ok
            end,
            {ok, _} = zotonic_host_registry:start_site_sup(Site, Info),
            Context = z_acl:sudo(z_context:new(Site)),
            ok = zotonic_host_schema:install(Context),
            {ok, EditorId} = create_user(Site, editor, <<"Erin Editor">>),
            {ok, MemberId} = create_user(Site, member, <<"Mo Member">>),
            true = ets:insert(zotonic_host_kv, {{Site, user, editor}, EditorId}),
            true = ets:insert(zotonic_host_kv, {{Site, user, member}, MemberId}),
            ok = zotonic_host_filestore:init_site(Site),
            Scan = case maps:find(lib_dirs, Options) of
                {ok, LibDirs} -> z_module_manager:scan(LibDirs);
                error -> z_module_manager:scan()
            end,
            Modules = maps:get(modules, Options, [mod_backup]),
            case z_module_manager:start_modules(Site, Modules, Scan) of
                ok ->
                    ?LOG_INFO(#{ in => zotonic_host, text => <<"Site started">>, site => Site, dir => Root, database => DbName }),
                    {ok, Context};
                {error, _} = Error ->
                    _ = stop_site(Site),
                    Error
            end;
        {error, _} = Error ->
            Error
    end.

%% @doc Stop the site's modules and processes, drop its database and remove its dirs.
-spec stop_site(atom()) -> ok.
stop_site(Site) ->
    case ets:lookup(zotonic_host_sites, Site) of
        [{Site, #{ db_options := DbOptions, dirs := #{ root := Root }, options := Options }}] ->
            z_module_manager:stop_modules(Site),
            ok = zotonic_host_registry:stop_site_sup(Site),
            case maps:get(keep_db, Options, false) of
                true -> ok;
                false -> ok = drop_database(proplists:get_value(dbdatabase, DbOptions))
            end,
            _ = file:del_dir_r(Root),
            ets:delete(zotonic_host_sites, Site),
            _ = ets:match_delete(zotonic_host_kv, {{Site, '_'}, '_'}),
            _ = ets:match_delete(zotonic_host_kv, {{Site, '_', '_'}, '_'}),
            _ = ets:match_delete(zotonic_host_observers, {{Site, '_'}, '_', '_', '_', '_'}),
            _ = ets:match_delete(zotonic_host_mqtt, {{Site, '_'}, '_', '_'}),
            _ = ets:match_delete(zotonic_host_mqtt_subs, {Site, '_', '_'}),
            _ = ets:match_delete(zotonic_host_log, {{Site, '_'}, '_'}),
            ok;
        [] ->
            ok
    end.

%% @doc The site's config as Zotonic's z_sites_manager:get_site_config/1 gives it (a proplist).
-spec site_config(atom()) -> proplists:proplist().
site_config(Site) ->
    #{ db_options := DbOptions, dirs := #{ site := SiteDir } } = site_info(Site),
    [{site, Site}, {hostname, atom_to_list(Site) ++ ".test"}, {site_dir, SiteDir} | DbOptions].

%% @doc Everything the host knows about a site: dirs, db_options, options.
-spec site_info(atom()) -> map().
site_info(Site) ->
    [{Site, Info}] = ets:lookup(zotonic_host_sites, Site),
    Info.

%% ---------------------------------------------------------------------------------------------
%% Users and contexts

%% @doc A context of the site for the given kind of user.
-spec context(atom(), who()) -> z:context().
context(Site, sudo) -> z_acl:sudo(z_context:new(Site));
context(Site, admin) -> z_acl:logon(?ACL_ADMIN_USER_ID, z_context:new(Site));
context(Site, anonymous) -> z_context:new(Site);
context(Site, {user, UserId}) -> z_acl:logon(UserId, z_context:new(Site));
context(Site, Role) when Role =:= editor; Role =:= member ->
    z_acl:logon(user_id(Site, Role), z_context:new(Site)).

%% @doc The id of the standard editor or member user of the site.
-spec user_id(atom(), editor | member) -> integer().
user_id(Site, Role) ->
    [{_, Id}] = ets:lookup(zotonic_host_kv, {Site, user, Role}),
    Id.

%% @doc Create a person with a username identity and a host role.
-spec create_user(atom(), admin | editor | member, binary()) -> {ok, integer()}.
create_user(Site, Role, Title) ->
    Context = context(Site, sudo),
    CatId = m_rsc:rid(person, Context),
    Id = z_db:q1("insert into rsc (category_id, is_published, creator_id, modifier_id, props)
                  values ($1, true, 1, 1, $2) returning id",
                 [CatId, ?DB_PROPS(#{ <<"title">> => Title })], Context),
    % As Zotonic's insert does after its commit.
    ok = z_depcache:flush(Id, Context),
    Key = iolist_to_binary([atom_to_binary(Role, utf8), "_", integer_to_binary(Id)]),
    _ = z_db:q("insert into identity (rsc_id, type, key, is_unique, is_verified)
                values ($1, 'username_pw', $2, true, true)", [Id, Key], Context),
    true = ets:insert(zotonic_host_kv, {{Site, role, Id}, Role}),
    {ok, Id}.

%% @doc Switch the site's environment (m_site:environment/1), e.g. to `backup'.
-spec set_environment(atom(), atom()) -> ok.
set_environment(Site, Env) ->
    true = ets:insert(zotonic_host_kv, {{Site, environment}, Env}),
    ok.

%% ---------------------------------------------------------------------------------------------
%% Filestore, MQTT and render logs

%% @doc Switch the site's filestore stand-in on (uploads copied to filestore_dir/1) or off.
-spec filestore(atom(), boolean()) -> ok.
filestore(Site, IsEnabled) ->
    zotonic_host_filestore:enable(Site, IsEnabled).

%% @doc The "remote" directory of the filestore stand-in.
-spec filestore_dir(atom()) -> file:filename_all().
filestore_dir(Site) ->
    #{ dirs := #{ remote := Dir } } = site_info(Site),
    Dir.

%% @doc All messages published on the site, oldest first: [{TopicBinary, Payload}].
-spec mqtt_messages(atom()) -> [{binary(), term()}].
mqtt_messages(Site) ->
    [ {T, P} || {_, T, P} <- lists:sort(ets:match_object(zotonic_host_mqtt, {{Site, '_'}, '_', '_'})) ].

%% @doc The payloads published on one topic, oldest first.
-spec mqtt_messages(atom(), binary()) -> [term()].
mqtt_messages(Site, Topic) ->
    [ P || {T, P} <- mqtt_messages(Site), T =:= Topic ].

-spec mqtt_flush(atom()) -> ok.
mqtt_flush(Site) ->
    _ = ets:match_delete(zotonic_host_mqtt, {{Site, '_'}, '_', '_'}),
    ok.

%% @doc What z_render / z_template were asked to do on the site, oldest first.
-spec render_log(atom()) -> [term()].
render_log(Site) ->
    [ E || {_, E} <- lists:sort(ets:match_object(zotonic_host_log, {{Site, '_'}, '_'})) ].

%% @doc Append an entry to the site's render log.
-spec log(atom() | z:context(), term()) -> ok.
log(#context{ site = Site }, Entry) -> log(Site, Entry);
log(Site, Entry) ->
    true = ets:insert(zotonic_host_log, {{Site, erlang:unique_integer([monotonic])}, Entry}),
    ok.

%% ---------------------------------------------------------------------------------------------
%% Database and dirs

%% @doc dbhost, dbport, dbuser, dbpassword from PGHOST/PGPORT/PGUSER/PGPASSWORD.
-spec db_options_from_env() -> proplists:proplist().
db_options_from_env() ->
    [
        {dbhost, os:getenv("PGHOST", "127.0.0.1")},
        {dbport, list_to_integer(os:getenv("PGPORT", "5432"))},
        {dbuser, os:getenv("PGUSER", "zotonic")},
        {dbpassword, os:getenv("PGPASSWORD", "")}
    ].

admin_query(Sql) ->
    Opts = db_options_from_env(),
    {ok, C} = zotonic_host_pgsql:connect([
        {host, proplists:get_value(dbhost, Opts)},
        {port, proplists:get_value(dbport, Opts)},
        {user, proplists:get_value(dbuser, Opts)},
        {password, proplists:get_value(dbpassword, Opts)},
        {database, "postgres"}
    ]),
    try zotonic_host_pgsql:squery(C, Sql)
    after zotonic_host_pgsql:close(C)
    end.

create_database(Name) ->
    case admin_query(["CREATE DATABASE \"", Name, "\" ENCODING 'UTF8' TEMPLATE template0"]) of
        {ok, [], []} -> ok;
        {error, _} = Error -> Error
    end.

drop_database(Name) ->
    case admin_query(["DROP DATABASE IF EXISTS \"", Name, "\" WITH (FORCE)"]) of
        {ok, [], []} -> ok;
        {error, Reason} ->
            ?LOG_WARNING(#{ in => zotonic_host, text => <<"Could not drop database">>, database => Name, reason => Reason }),
            ok
    end.

make_dirs(Site, Root) ->
    S = atom_to_list(Site),
    Dirs = #{
        root => Root,
        site => filename:join(Root, S),
        files => filename:join([Root, "data", "sites", S, "files"]),
        security => filename:join([Root, "security", S]),
        config => filename:join([Root, "config"]),
        remote => filename:join([Root, "remote"])
    },
    ok = filelib:ensure_path(filename:join([maps:get(site, Dirs), "priv", "config.d"])),
    ok = filelib:ensure_path(filename:join(maps:get(files, Dirs), "archive")),
    ok = filelib:ensure_path(maps:get(security, Dirs)),
    ok = filelib:ensure_path(filename:join([maps:get(config, Dirs), "site_config.d", S])),
    ok = filelib:ensure_path(maps:get(remote, Dirs)),
    Dirs.

write_site_config(Site, #{ site := SiteDir, security := SecDir }, DbOptions) ->
    Config = [
        {enabled, true},
        {hostname, atom_to_list(Site) ++ ".test"},
        {dbdatabase, proplists:get_value(dbdatabase, DbOptions)},
        {dbschema, "public"},
        {install_modules, [mod_backup]}
    ],
    ok = file:write_file(filename:join([SiteDir, "priv", "zotonic_site.config"]),
                         io_lib:format("~p.~n", [Config])),
    ok = file:write_file(filename:join([SiteDir, "priv", "config.d", "zotonic_host.config"]),
                         io_lib:format("~p.~n", [[{zotonic_host, true}]])),
    ok = file:write_file(filename:join(SecDir, "secret.key"), crypto:strong_rand_bytes(32)).
