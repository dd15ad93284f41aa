%% @doc zotonic_host: the supervisor a site's modules are started under, as Zotonic's
%% z_module_sup: each module is a temporary child started with `start_link(Args)'.
%% @end

-module(zotonic_host_module_sup).
-behaviour(supervisor).

-export([init/1]).

init([]) ->
    {ok, {#{ strategy => one_for_one, intensity => 10, period => 10 }, []}}.
