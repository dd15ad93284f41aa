%% @doc zotonic_host: Zotonic's z_sites_manager calls a module makes. A restart of a host site
%% restarts its modules and empties its depcache (Zotonic starts the whole site anew, its
%% depcache too; the database and dirs stay) and is recorded in the render log. As in
%% Zotonic, restart/1 returns when the site runs again, and the stop and start are done by
%% another process (Zotonic's sites manager): a caller linked to a module process (a worker of
%% mod_backup) is stopped with it, while the site still comes back.
%% @end

-module(z_sites_manager).

-export([restart/1]).

-spec restart(atom()) -> ok | {error, term()}.
restart(Site) ->
    ok = zotonic_host:log(Site, {site_restart, Site}),
    #{ options := Options } = zotonic_host:site_info(Site),
    {Pid, MRef} = spawn_monitor(fun() ->
        z_module_manager:stop_modules(Site),
        ok = z_depcache:flush(z_context:new(Site)),
        Scan = case maps:find(lib_dirs, Options) of
            {ok, LibDirs} -> z_module_manager:scan(LibDirs);
            error -> z_module_manager:scan()
        end,
        z_module_manager:start_modules(Site, maps:get(modules, Options, [mod_backup]), Scan)
    end),
    receive
        {'DOWN', MRef, process, Pid, normal} -> ok;
        {'DOWN', MRef, process, Pid, Reason} -> {error, Reason}
    end.
