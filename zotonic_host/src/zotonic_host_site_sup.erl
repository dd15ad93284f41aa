%% @doc zotonic_host: the supervisor of one site -- its depcache, its database pool, its edge log
%% server and the supervisor its Zotonic modules run under (like Zotonic's z_site_sup /
%% z_module_sup).
%% @end

-module(zotonic_host_site_sup).
-behaviour(supervisor).

-export([start_link/2, module_sup_name/1]).

% Zotonic's API as Zotonic exports it (or called by name: supervisors, observers); nothing
% here calls it directly.
-ignore_xref([start_link/2]).
-export([init/1]).

-spec start_link(atom(), map()) -> {ok, pid()} | {error, term()}.
start_link(Site, SiteConfig) ->
    supervisor:start_link(?MODULE, {Site, SiteConfig}).

%% @doc The registered name of the supervisor the site's modules are started under.
-spec module_sup_name(atom()) -> atom().
module_sup_name(Site) ->
    z_utils:name_for_site(z_module_sup, Site).

init({Site, SiteConfig}) ->
    Children = [
        #{
            id => depcache,
            start => {z_depcache, start_link, [Site]},
            type => worker
        },
        #{
            id => db_pool,
            start => {zotonic_host_db_pool, start_link, [Site, maps:get(db_options, SiteConfig)]},
            type => worker
        },
        #{
            id => edge_log,
            start => {z_edge_log_server, start_link, [Site]},
            type => worker
        },
        #{
            id => module_sup,
            start => {supervisor, start_link, [{local, module_sup_name(Site)}, zotonic_host_module_sup, []]},
            type => supervisor
        }
    ],
    {ok, {#{ strategy => one_for_all, intensity => 5, period => 10 }, Children}}.
