%% @doc zotonic_host: Zotonic's m_site -- the site's config, and its environment (production,
%% or `backup' on a standby server; tests switch it with zotonic_host:set_environment/2).
%% @end

-module(m_site).

-export([environment/1, get/2, get/3]).

% Zotonic's API as Zotonic exports it (or called by name: supervisors, observers); nothing
% here calls it directly.
-ignore_xref([get/2, get/3]).

-include_lib("zotonic_core/include/zotonic.hrl").

-spec environment(z:context() | atom()) -> atom().
environment(Site) when is_atom(Site) ->
    case ets:lookup(zotonic_host_kv, {Site, environment}) of
        [{_, Env}] -> Env;
        [] -> production
    end;
environment(#context{ site = Site }) ->
    environment(Site).

-spec get(atom(), z:context()) -> term().
get(environment, Context) -> environment(Context);
get(Key, #context{ site = Site }) -> proplists:get_value(Key, zotonic_host:site_config(Site)).

-spec get(atom(), atom(), z:context()) -> term().
get(site, Key, Context) -> get(Key, Context);
get(_Module, _Key, _Context) -> undefined.
