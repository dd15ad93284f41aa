%% @doc zotonic_host: owner of the host's shared ETS tables (sites, observers, MQTT log and
%% subscriptions, per-site settings) and the top supervisor of the sites. Started on demand and
%% unlinked from the caller, so a test process ending does not take the sites down.
%% @end

-module(zotonic_host_registry).
-behaviour(supervisor).

-export([
    ensure_started/0,
    start_site_sup/2,
    stop_site_sup/1
]).

-export([init/1]).

-define(TABLES, [
    {zotonic_host_sites, [set, public, named_table, {read_concurrency, true}]},
    {zotonic_host_observers, [bag, public, named_table, {read_concurrency, true}]},
    {zotonic_host_mqtt, [ordered_set, public, named_table]},
    {zotonic_host_mqtt_subs, [bag, public, named_table]},
    {zotonic_host_kv, [set, public, named_table, {read_concurrency, true}]},
    {zotonic_host_log, [ordered_set, public, named_table]}
]).

%% @doc Start the registry (tables + top supervisor) if it is not running.
-spec ensure_started() -> ok.
ensure_started() ->
    case whereis(?MODULE) of
        undefined ->
            Parent = self(),
            Ref = make_ref(),
            % The tables are owned by a dedicated long-lived process.
            spawn(fun() ->
                Result = supervisor:start_link({local, ?MODULE}, ?MODULE, []),
                Parent ! {Ref, Result},
                case Result of
                    {ok, Pid} ->
                        process_flag(trap_exit, true),
                        receive {'EXIT', Pid, _} -> ok end;
                    _ ->
                        ok
                end
            end),
            receive
                {Ref, {ok, _}} -> ok;
                {Ref, {error, {already_started, _}}} -> ok
            after 10000 ->
                error(zotonic_host_registry_timeout)
            end;
        _ ->
            ok
    end.

%% @doc Start a site's supervisor under the registry.
-spec start_site_sup(atom(), map()) -> {ok, pid()} | {error, term()}.
start_site_sup(Site, SiteConfig) ->
    Spec = #{
        id => {site, Site},
        start => {zotonic_host_site_sup, start_link, [Site, SiteConfig]},
        restart => temporary,
        type => supervisor
    },
    supervisor:start_child(?MODULE, Spec).

-spec stop_site_sup(atom()) -> ok.
stop_site_sup(Site) ->
    _ = supervisor:terminate_child(?MODULE, {site, Site}),
    _ = supervisor:delete_child(?MODULE, {site, Site}),
    ok.

init([]) ->
    lists:foreach(
        fun({Name, Opts}) ->
            case ets:info(Name, name) of
                undefined -> ets:new(Name, Opts);
                _ -> ok
            end
        end,
        ?TABLES),
    Jobs = #{ id => jobs, start => {jobs, start_link, []}, type => worker },
    {ok, {#{ strategy => one_for_one, intensity => 100, period => 1 }, [Jobs]}}.
