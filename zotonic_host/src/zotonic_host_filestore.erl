%% @doc zotonic_host: a filestore stand-in (the part of mod_filestore that mod_backup talks to).
%% Registered as an observer on every host site; it answers only while switched on with
%% zotonic_host:filestore(Site, true): #filestore_credentials_lookup{} gets
%% `{ok, #filestore_credentials{ service = <<"zotonic_host">> }}', and #filestore_request{}
%% upload / download / delete copy between `local' and `<remote dir>/<remote>'.
%% @end

-module(zotonic_host_filestore).

-export([
    init_site/1,
    enable/2,
    observe_filestore_credentials_lookup/2,
    observe_filestore_request/2
]).

% Zotonic's API as Zotonic exports it (or called by name: supervisors, observers); nothing
% here calls it directly.
-ignore_xref([observe_filestore_credentials_lookup/2, observe_filestore_request/2]).

-include_lib("zotonic_core/include/zotonic.hrl").
-include_lib("zotonic_core/include/zotonic_file.hrl").

-define(PRIO, 500).

%% @doc Register the observers for the site (called by zotonic_host:start_site/2); off at start.
-spec init_site(atom()) -> ok.
init_site(Site) ->
    Owner = whereis(zotonic_host_db_pool:name(Site)),
    ok = z_notifier:observe(filestore_credentials_lookup, {?MODULE, observe_filestore_credentials_lookup}, Owner, ?PRIO, Site),
    ok = z_notifier:observe(filestore_request, {?MODULE, observe_filestore_request}, Owner, ?PRIO, Site),
    enable(Site, false).

-spec enable(atom(), boolean()) -> ok.
enable(Site, IsEnabled) ->
    true = ets:insert(zotonic_host_kv, {{Site, filestore}, IsEnabled}),
    ok.

-spec is_enabled(atom()) -> boolean().
is_enabled(Site) ->
    case ets:lookup(zotonic_host_kv, {Site, filestore}) of
        [{_, true}] -> true;
        _ -> false
    end.

-spec observe_filestore_credentials_lookup(#filestore_credentials_lookup{}, z:context()) ->
    {ok, #filestore_credentials{}} | undefined.
observe_filestore_credentials_lookup(#filestore_credentials_lookup{ path = Path }, #context{ site = Site }) ->
    case is_enabled(Site) of
        true ->
            {ok, #filestore_credentials{
                service = <<"zotonic_host">>,
                service_url = <<"file://", (unicode:characters_to_binary(zotonic_host:filestore_dir(Site)))/binary>>,
                location = z_convert:to_binary(Path),
                credentials = []
            }};
        false ->
            undefined
    end.

-spec observe_filestore_request(#filestore_request{}, z:context()) -> ok | {error, term()} | undefined.
observe_filestore_request(#filestore_request{ action = Action, remote = Remote, local = Local }, #context{ site = Site }) ->
    case is_enabled(Site) of
        true ->
            RemotePath = filename:join(zotonic_host:filestore_dir(Site), Remote),
            ok = zotonic_host:log(Site, {filestore, Action, z_convert:to_binary(Remote)}),
            case Action of
                upload -> copy(Local, RemotePath);
                download -> copy(RemotePath, Local);
                delete -> file:delete(RemotePath)
            end;
        false ->
            undefined
    end.

copy(From, To) ->
    ok = filelib:ensure_dir(To),
    case file:copy(From, To) of
        {ok, _} -> ok;
        {error, _} = Error -> Error
    end.
