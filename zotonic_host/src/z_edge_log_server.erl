%% @doc zotonic_host: Zotonic's edge log server. A trigger on `edge' writes every insert, update
%% and delete (also those cascading from a resource delete) to `edge_log'; check/1 makes this
%% per-site server read the log, send #edge_insert{} / #edge_delete{} / #edge_update{} with
%% notify_sync in a sudo context, publish the MQTT edge events and delete the handled rows --
%% the same flow, records and context as Zotonic's z_edge_log_server.
%% @end

-module(z_edge_log_server).
-behaviour(gen_server).

-export([start_link/1, check/1, sync/1]).

% Zotonic's API as Zotonic exports it (or called by name: supervisors, observers); nothing
% here calls it directly.
-ignore_xref([start_link/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

-include_lib("zotonic_core/include/zotonic.hrl").

-define(BATCH, 100).

-spec start_link(atom()) -> {ok, pid()} | {error, term()}.
start_link(Site) ->
    gen_server:start_link({local, z_utils:name_for_site(?MODULE, Site)}, ?MODULE, Site, []).

%% @doc Ask the server to process the edge log (asynchronously, as in Zotonic).
-spec check(z:context()) -> ok.
check(#context{ site = Site }) ->
    gen_server:cast(z_utils:name_for_site(?MODULE, Site), check).

%% @doc Host extension for tests: process the log now and return when done.
-spec sync(z:context()) -> ok.
sync(#context{ site = Site }) ->
    gen_server:call(z_utils:name_for_site(?MODULE, Site), sync, 30000).

init(Site) ->
    {ok, Site}.

handle_call(sync, _From, Site) ->
    ok = process_log(Site),
    {reply, ok, Site}.

handle_cast(check, Site) ->
    ok = process_log(Site),
    {noreply, Site}.

handle_info(_Info, Site) ->
    {noreply, Site}.

process_log(Site) ->
    Context = z_acl:sudo(z_context:new(Site)),
    Rows = z_db:q("select id, op, subject_id, predicate, object_id, edge_id
                   from edge_log order by id limit $1", [?BATCH], Context),
    case Rows of
        [] ->
            ok;
        _ ->
            lists:foreach(
                fun({_Id, Op, SubjectId, Predicate, ObjectId, EdgeId}) ->
                    Pred = binary_to_atom(Predicate, utf8),
                    Msg = case Op of
                        <<"INSERT">> -> #edge_insert{ subject_id = SubjectId, predicate = Pred, object_id = ObjectId, edge_id = EdgeId };
                        <<"DELETE">> -> #edge_delete{ subject_id = SubjectId, predicate = Pred, object_id = ObjectId, edge_id = EdgeId };
                        <<"UPDATE">> -> #edge_update{ subject_id = SubjectId, predicate = Pred, object_id = ObjectId, edge_id = EdgeId }
                    end,
                    z_notifier:notify_sync(Msg, Context),
                    z_mqtt:publish([<<"model">>, <<"edge">>, <<"event">>, SubjectId, <<"o">>, Predicate], [Msg], Context),
                    z_mqtt:publish([<<"model">>, <<"edge">>, <<"event">>, ObjectId, <<"s">>, Predicate], [Msg], Context)
                end,
                Rows),
            LastId = element(1, lists:last(Rows)),
            _ = z_db:q("delete from edge_log where id <= $1", [LastId], Context),
            process_log(Site)
    end.
