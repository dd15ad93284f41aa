%% @doc zotonic_host: Zotonic's m_site -- the site's config, and its environment (production,
%% or `backup' on a standby server; tests switch it with zotonic_host:set_environment/2).
%% @end

-module(m_site).

-export([environment/1]).

-include_lib("zotonic_core/include/zotonic.hrl").

-spec environment(z:context() | atom()) -> atom().
environment(Site) when is_atom(Site) ->
    case ets:lookup(zotonic_host_kv, {Site, environment}) of
        [{_, Env}] -> Env;
        [] -> production
    end;
environment(#context{ site = Site }) ->
    environment(Site).
