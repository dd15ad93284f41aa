%% @doc zotonic_host: Zotonic's z_mqtt publish/subscribe within a site. Every publish is recorded
%% (zotonic_host:mqtt_messages/1,2 read it) and delivered to subscribers whose topic filter
%% matches (`+' and `#' wildcards) as `{mqtt_msg, #{ type => publish, topic, payload, qos,
%% retain }}', the message Zotonic's mqtt_sessions sends to a subscribed pid.
%% @end

-module(z_mqtt).

-export([
    publish/3,
    publish/4,
    subscribe/2,
    subscribe/3,
    unsubscribe/2
]).

% Called by the suites (or the demo) only, as Zotonic's own API would be.
-ignore_xref([publish/4, subscribe/3]).

-include_lib("zotonic_core/include/zotonic.hrl").

-type topic() :: binary() | [binary() | integer() | atom()].
-export_type([topic/0]).

-spec publish(topic(), term(), z:context()) -> ok.
publish(Topic, Payload, Context) ->
    publish(Topic, Payload, #{ qos => 0, retain => false }, Context).

-spec publish(topic(), term(), map(), z:context()) -> ok.
publish(Topic, Payload, Options, #context{ site = Site }) ->
    T = flatten_topic(Topic),
    true = ets:insert(zotonic_host_mqtt, {{Site, erlang:unique_integer([monotonic])}, T, Payload}),
    Msg = #{
        type => publish,
        topic => binary:split(T, <<"/">>, [global]),
        payload => Payload,
        qos => maps:get(qos, Options, 0),
        retain => maps:get(retain, Options, false)
    },
    lists:foreach(
        fun({_, Filter, Pid}) ->
            case matches(binary:split(Filter, <<"/">>, [global]), binary:split(T, <<"/">>, [global])) of
                true -> Pid ! {mqtt_msg, Msg};
                false -> ok
            end
        end,
        ets:lookup(zotonic_host_mqtt_subs, Site)),
    ok.

-spec subscribe(topic(), z:context()) -> ok.
subscribe(TopicFilter, Context) ->
    subscribe(TopicFilter, self(), Context).

-spec subscribe(topic(), pid(), z:context()) -> ok.
subscribe(TopicFilter, Pid, #context{ site = Site }) ->
    true = ets:insert(zotonic_host_mqtt_subs, {Site, flatten_topic(TopicFilter), Pid}),
    ok.

-spec unsubscribe(topic(), z:context()) -> ok.
unsubscribe(TopicFilter, #context{ site = Site }) ->
    true = ets:delete_object(zotonic_host_mqtt_subs, {Site, flatten_topic(TopicFilter), self()}),
    ok.

%% @doc A topic as one binary: `<<"model/rsc/event/12/update">>'.
-spec flatten_topic(topic()) -> binary().
flatten_topic(T) when is_binary(T) -> T;
flatten_topic(Parts) when is_list(Parts) ->
    iolist_to_binary(lists:join($/, [ z_convert:to_binary(P) || P <- Parts ])).

matches([<<"#">>], _) -> true;
matches([<<"+">> | F], [_ | T]) -> matches(F, T);
matches([X | F], [X | T]) -> matches(F, T);
matches([], []) -> true;
matches(_, _) -> false.
