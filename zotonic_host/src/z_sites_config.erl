%% @doc zotonic_host: Zotonic's z_sites_config for a host site: its config files (the site's
%% priv/zotonic_site.config, the global site_config.d/<site>/ files, priv/config.d/ files and
%% priv/BACKUP when present) and its security dir.
%% @end

-module(z_sites_config).

-export([config_files/1, security_dir/1, maybe_set_backup_env/1]).

-include_lib("zotonic_core/include/zotonic.hrl").

-spec config_files(atom()) -> [file:filename_all()].
config_files(Site) ->
    #{ dirs := #{ site := SiteDir, config := ConfigDir } } = zotonic_host:site_info(Site),
    Priv = filename:join(SiteDir, "priv"),
    Backup = filename:join(Priv, "BACKUP"),
    [ filename:join(Priv, "zotonic_site.config") ]
    ++ files(filename:join([ConfigDir, "site_config.d", atom_to_list(Site)]))
    ++ files(filename:join(Priv, "config.d"))
    ++ [ Backup || filelib:is_regular(Backup) ].

files(Dir) ->
    lists:sort([ F || F <- filelib:wildcard(filename:join(Dir, "*")), filelib:is_regular(F) ]).

-spec security_dir(atom()) -> {ok, file:filename_all()} | {error, term()}.
security_dir(Site) ->
    case ets:lookup(zotonic_host_sites, Site) of
        [{_, #{ dirs := #{ security := Dir } }}] -> {ok, Dir};
        [] -> {error, enoent}
    end.

%% @doc In the backup environment, mark the site as standby with priv/BACKUP.
-spec maybe_set_backup_env(z:context()) -> ok | {error, term()}.
maybe_set_backup_env(#context{ site = Site } = Context) ->
    case m_site:environment(Context) of
        backup -> file:write_file(filename:join([z_path:site_dir(Site), "priv", "BACKUP"]), <<>>);
        _ -> ok
    end.
