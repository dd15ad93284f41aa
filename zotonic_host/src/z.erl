%% @doc zotonic_host: the `z' module's type and the debug helper of Zotonic's ?DEBUG macro.
%% @end

-module(z).

-export([debug_msg/2, flush/1]).

-include_lib("zotonic_core/include/zotonic.hrl").

-type context() :: #context{}.
-type severity() :: debug | info | notice | warning | error | fatal.
-export_type([context/0, severity/0]).

%% @doc Log a debug term (Zotonic's ?DEBUG).
-spec debug_msg(term(), map()) -> ok.
debug_msg(Msg, Location) ->
    ?LOG_NOTICE(#{ in => zotonic_host, text => <<"DEBUG">>, msg => Msg, location => Location }).

%% @doc Flush the site's caches. The host keeps no caches, so nothing to do.
-spec flush(context()) -> ok.
flush(_Context) ->
    ok.
