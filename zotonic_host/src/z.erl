%% @doc zotonic_host: the `z' module's type, the debug helper of Zotonic's ?DEBUG macro, and the
%% calls Zotonic's launcher commands make through rpc (`bin/zotonic backup SITE list|start|
%% restore|download': z:is_module_enabled/2 and z:n1/2 with a plain context of the site).
%% @end

-module(z).

-export([debug_msg/2, c/1, n1/2, is_module_enabled/2]).

% Called by the suites (or the demo) only, as Zotonic's own API would be.
-ignore_xref([is_module_enabled/2, n1/2]).
% Zotonic's API as Zotonic exports it (or called by name: supervisors, observers); nothing
% here calls it directly.
-ignore_xref([c/1, debug_msg/2]).

-include_lib("zotonic_core/include/zotonic.hrl").

-type context() :: #context{}.
-type severity() :: debug | info | notice | warning | error | fatal.
-export_type([context/0, severity/0]).

%% @doc Log a debug term (Zotonic's ?DEBUG).
-spec debug_msg(term(), map()) -> ok.
debug_msg(Msg, Location) ->
    ?LOG_NOTICE(#{ in => zotonic_host, text => <<"DEBUG">>, msg => Msg, location => Location }).

%% @doc A new (anonymous) context of the site, as Zotonic's z:c/1.
-spec c(atom()) -> context().
c(Site) ->
    z_context:new(Site).

%% @doc z_notifier:first/2 with a site's new context, as the launcher's rpc calls it.
-spec n1(term(), atom() | context()) -> term().
n1(Msg, Site) when is_atom(Site) ->
    n1(Msg, c(Site));
n1(Msg, Context) ->
    z_notifier:first(Msg, Context).

%% @doc Is the module running in the site?
-spec is_module_enabled(atom(), atom()) -> boolean().
is_module_enabled(Module, Site) ->
    z_module_manager:active(Module, c(Site)).
