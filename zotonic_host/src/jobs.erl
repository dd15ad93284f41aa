%% @doc zotonic_host: the API of the `jobs' load regulator (uwiger/jobs) as Zotonic uses it:
%% queues with a counter regulator (`{regulators, [{counter, [{limit, N}]}]}') limit how many
%% run/2 calls execute at the same time; other regulators do not limit. The queue
%% `zotonic_singular_job' (limit 1) exists from the start, as in Zotonic.
%% @end

-module(jobs).
-behaviour(gen_server).

-export([
    start_link/0,
    add_queue/2,
    delete_queue/1,
    queue_info/1,
    run/2
]).

% Called by the suites (or the demo) only, as Zotonic's own API would be.
-ignore_xref([delete_queue/1]).
% Zotonic's API as Zotonic exports it (or called by name: supervisors, observers); nothing
% here calls it directly.
-ignore_xref([start_link/0]).

-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

-record(queue, {
    limit = infinity :: pos_integer() | infinity,
    options = [] :: list(),
    running = #{} :: #{ reference() => pid() },
    waiting = queue:new() :: queue:queue()
}).

-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

-spec add_queue(atom(), list()) -> ok.
add_queue(Name, Options) ->
    gen_server:call(?MODULE, {add_queue, Name, Options}).

-spec delete_queue(atom()) -> boolean().
delete_queue(Name) ->
    gen_server:call(?MODULE, {delete_queue, Name}).

%% @doc `undefined' for an unknown queue, else `{queue, Props}'.
-spec queue_info(atom()) -> undefined | {queue, list()}.
queue_info(Name) ->
    gen_server:call(?MODULE, {queue_info, Name}).

%% @doc Run Fun when the queue has a free slot; errors in Fun propagate to the caller.
-spec run(atom(), fun(() -> Result)) -> Result when Result :: term().
run(Name, Fun) ->
    case gen_server:call(?MODULE, {ask, Name, self()}, infinity) of
        {ok, Ref} ->
            try Fun()
            after gen_server:cast(?MODULE, {done, Name, Ref})
            end;
        {error, Reason} ->
            erlang:error(Reason)
    end.

init([]) ->
    {ok, #{ zotonic_singular_job => #queue{ limit = 1 } }}.

handle_call({add_queue, Name, Options}, _From, Queues) ->
    Regulators = proplists:get_value(regulators, Options, []),
    Limit = case proplists:get_value(counter, Regulators) of
        undefined -> infinity;
        CounterOpts -> proplists:get_value(limit, CounterOpts, infinity)
    end,
    {reply, ok, Queues#{ Name => #queue{ limit = Limit, options = Options } }};
handle_call({delete_queue, Name}, _From, Queues) ->
    {reply, maps:is_key(Name, Queues), maps:remove(Name, Queues)};
handle_call({queue_info, Name}, _From, Queues) ->
    case maps:find(Name, Queues) of
        {ok, #queue{ options = Opts, limit = Limit }} -> {reply, {queue, [{name, Name}, {limit, Limit} | Opts]}, Queues};
        error -> {reply, undefined, Queues}
    end;
handle_call({ask, Name, Pid}, From, Queues) ->
    case maps:find(Name, Queues) of
        {ok, Q} ->
            case map_size(Q#queue.running) < Q#queue.limit of
                true ->
                    Ref = erlang:monitor(process, Pid),
                    {reply, {ok, Ref}, Queues#{ Name => Q#queue{ running = (Q#queue.running)#{ Ref => Pid } } }};
                false ->
                    {noreply, Queues#{ Name => Q#queue{ waiting = queue:in({From, Pid}, Q#queue.waiting) } }}
            end;
        error ->
            {reply, {error, unknown_queue}, Queues}
    end.

handle_cast({done, Name, Ref}, Queues) ->
    erlang:demonitor(Ref, [flush]),
    {noreply, release(Name, Ref, Queues)}.

handle_info({'DOWN', Ref, process, _Pid, _}, Queues) ->
    Names = [ N || {N, #queue{ running = R }} <- maps:to_list(Queues), maps:is_key(Ref, R) ],
    {noreply, lists:foldl(fun(N, Acc) -> release(N, Ref, Acc) end, Queues, Names)};
handle_info(_Info, Queues) ->
    {noreply, Queues}.

release(Name, Ref, Queues) ->
    case maps:find(Name, Queues) of
        {ok, Q} ->
            Q1 = Q#queue{ running = maps:remove(Ref, Q#queue.running) },
            Queues#{ Name => next(Q1) };
        error ->
            Queues
    end.

next(#queue{ limit = Limit, running = Running } = Q) when map_size(Running) >= Limit ->
    Q;
next(Q) ->
    case queue:out(Q#queue.waiting) of
        {{value, {From, Pid}}, Rest} ->
            case is_process_alive(Pid) of
                true ->
                    Ref = erlang:monitor(process, Pid),
                    gen_server:reply(From, {ok, Ref}),
                    next(Q#queue{ waiting = Rest, running = (Q#queue.running)#{ Ref => Pid } });
                false ->
                    next(Q#queue{ waiting = Rest })
            end;
        {empty, _} ->
            Q
    end.
