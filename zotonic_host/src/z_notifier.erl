%% @doc zotonic_host: Zotonic's z_notifier. Observers are kept per site and event (the record
%% name, or the atom) with a priority (the module's mod_prio, lower runs first). Observers are
%% `{Module, Function}' (called as F(Msg, Context), folds F(Msg, Acc, Context)),
%% `{Module, Function, Args}' (Args prepended, used for pid_observe_*), a fun of the same arity,
%% or a pid (notify sends `{Msg, Context}'; first/map do a gen_server:call with it).
%% notify/2 is asynchronous and delayed until commit inside a transaction, notify_sync/2 runs
%% in the caller, as in Zotonic.
%% @end

-module(z_notifier).

-export([
    observe/3,
    observe/4,
    observe/5,
    detach/3,
    detach_all/2,
    get_observers/2,
    notify/2,
    notify_sync/2,
    first/2,
    foldl/3,
    foldr/3,
    notify_queue/1,
    notify_queue_flush/1
]).

% Called by the suites (or the demo) only, as Zotonic's own API would be.
-ignore_xref([detach/3, get_observers/2, observe/3]).

-include_lib("zotonic_core/include/zotonic.hrl").

-define(DEFAULT_PRIORITY, 500).
-define(QUEUE_KEY, '$zotonic_host_notify_queue').

-type observer() :: {module(), atom()} | {module(), atom(), list()} | pid() | function().
-type event() :: atom().
-export_type([observer/0, event/0]).

%% @doc Observe with the observer's module priority.
-spec observe(event(), observer(), z:context() | atom()) -> ok.
observe(Event, Observer, Context) ->
    observe(Event, Observer, self(), prio(Observer), Context).

-spec observe(event(), observer(), integer() | pid(), z:context() | atom()) -> ok.
observe(Event, Observer, Prio, Context) when is_integer(Prio) ->
    observe(Event, Observer, self(), Prio, Context);
observe(Event, Observer, OwnerPid, Context) when is_pid(OwnerPid) ->
    observe(Event, Observer, OwnerPid, prio(Observer), Context).

%% @doc Observe an event; the observer is removed by detach_all/2 of its owner pid.
-spec observe(event(), observer(), pid(), integer(), z:context() | atom()) -> ok.
observe(Event, Observer, OwnerPid, Prio, Context) ->
    Site = site(Context),
    true = ets:insert(zotonic_host_observers,
                      {{Site, Event}, Prio, erlang:unique_integer([monotonic]), Observer, OwnerPid}),
    ok.

-spec detach(event(), pid(), z:context() | atom()) -> ok.
detach(Event, OwnerPid, Context) ->
    Key = {site(Context), Event},
    _ = ets:match_delete(zotonic_host_observers, {Key, '_', '_', '_', OwnerPid}),
    ok.

-spec detach_all(pid(), z:context() | atom()) -> ok.
detach_all(OwnerPid, Context) ->
    Site = site(Context),
    _ = ets:match_delete(zotonic_host_observers, {{Site, '_'}, '_', '_', '_', OwnerPid}),
    ok.

%% @doc The observers of an event, in calling order: [{Prio, Observer}].
-spec get_observers(event(), z:context() | atom()) -> [{integer(), observer()}].
get_observers(Event, Context) ->
    [ {P, O} || {P, _, O, _} <- observers(site(Context), Event) ].

observers(Site, Event) ->
    Obs = [ {P, S, O, Owner} || {_, P, S, O, Owner} <- ets:lookup(zotonic_host_observers, {Site, Event}) ],
    [ X || {_, _, _, Owner} = X <- lists:sort(Obs), is_process_alive(Owner) ].

%% @doc Asynchronous notification to all observers; delayed until commit in a transaction.
-spec notify(term(), z:context()) -> ok.
notify(Msg, #context{ dbc = undefined } = Context) ->
    Ctx = z_context:prune_for_spawn(Context),
    _ = spawn(fun() -> notify_sync(Msg, Ctx) end),
    ok;
notify(Msg, _Context) ->
    delay({notify, Msg}).

%% @doc Notify only the first observer, asynchronously.
-spec notify1(term(), z:context()) -> ok.
notify1(Msg, #context{ dbc = undefined } = Context) ->
    Ctx = z_context:prune_for_spawn(Context),
    _ = spawn(fun() ->
        case observers(site(Ctx), event(Msg)) of
            [{_, _, O, _} | _] -> call_notify(O, Msg, Ctx);
            [] -> ok
        end
    end),
    ok;
notify1(Msg, _Context) ->
    delay({notify1, Msg}).

%% @doc Synchronous notification to all observers, in the caller's process.
-spec notify_sync(term(), z:context()) -> ok.
notify_sync(Msg, Context) ->
    lists:foreach(
        fun({_, _, O, _}) ->
            try
                call_notify(O, Msg, Context)
            catch
                Class:Reason:Stack ->
                    ?LOG_ERROR(#{
                        in => zotonic_host,
                        text => <<"Error in notification observer">>,
                        event => event(Msg),
                        observer => O,
                        result => Class,
                        reason => Reason,
                        stack => Stack
                    })
            end
        end,
        observers(site(Context), event(Msg))),
    ok.

%% @doc The first answer that is not `undefined' (or `continue'); `undefined' when none.
-spec first(term(), z:context()) -> term().
first(Msg, Context) ->
    first_1(observers(site(Context), event(Msg)), Msg, Context).

first_1([], _Msg, _Context) -> undefined;
first_1([{_, _, O, _} | Rest], Msg, Context) ->
    case call_observer(O, Msg, Context) of
        undefined -> first_1(Rest, Msg, Context);
        continue -> first_1(Rest, Msg, Context);
        {continue, Msg1} -> first_1(Rest, Msg1, Context);
        Result -> Result
    end.

%% @doc Fold over the observers, highest priority (lowest number) first.
-spec foldl(term(), term(), z:context()) -> term().
foldl(Msg, Acc0, Context) ->
    lists:foldl(fun({_, _, O, _}, Acc) -> call_fold(O, Msg, Acc, Context) end,
                Acc0, observers(site(Context), event(Msg))).

%% @doc Fold over the observers, highest priority last.
-spec foldr(term(), term(), z:context()) -> term().
foldr(Msg, Acc0, Context) ->
    lists:foldr(fun({_, _, O, _}, Acc) -> call_fold(O, Msg, Acc, Context) end,
                Acc0, observers(site(Context), event(Msg))).

%% @doc Send the notifications delayed during the transaction that just committed.
-spec notify_queue(z:context()) -> ok.
notify_queue(#context{ dbc = undefined } = Context) ->
    Queue = case erase(?QUEUE_KEY) of
        undefined -> [];
        Q -> Q
    end,
    lists:foreach(
        fun({notify, Msg}) -> notify(Msg, Context);
           ({notify1, Msg}) -> notify1(Msg, Context)
        end,
        lists:reverse(Queue));
notify_queue(_Context) ->
    ok.

%% @doc Drop the notifications delayed during a rolled back transaction.
-spec notify_queue_flush(z:context()) -> ok.
notify_queue_flush(#context{ dbc = undefined }) ->
    _ = erase(?QUEUE_KEY),
    ok;
notify_queue_flush(_Context) ->
    ok.

%% ---------------------------------------------------------------------------------------------

delay(Item) ->
    Q = case get(?QUEUE_KEY) of
        undefined -> [];
        Q0 -> Q0
    end,
    put(?QUEUE_KEY, [Item | Q]),
    ok.

call_notify(Pid, Msg, Context) when is_pid(Pid) -> Pid ! {Msg, Context}, ok;
call_notify(Observer, Msg, Context) -> call_observer(Observer, Msg, Context).

call_observer({M, F}, Msg, Context) -> M:F(Msg, Context);
call_observer({M, F, Args}, Msg, Context) -> erlang:apply(M, F, Args ++ [Msg, Context]);
call_observer(Fun, Msg, Context) when is_function(Fun, 2) -> Fun(Msg, Context);
call_observer(Pid, Msg, Context) when is_pid(Pid) ->
    gen_server:call(Pid, {Msg, Context}).

call_fold({M, F}, Msg, Acc, Context) -> M:F(Msg, Acc, Context);
call_fold({M, F, Args}, Msg, Acc, Context) -> erlang:apply(M, F, Args ++ [Msg, Acc, Context]);
call_fold(Fun, Msg, Acc, Context) when is_function(Fun, 3) -> Fun(Msg, Acc, Context);
call_fold(Pid, Msg, Acc, Context) when is_pid(Pid) ->
    gen_server:call(Pid, {Msg, Acc, Context}).

event(Msg) when is_atom(Msg) -> Msg;
event(Msg) when is_tuple(Msg) -> element(1, Msg).

site(#context{ site = Site }) -> Site;
site(Site) when is_atom(Site) -> Site.

prio({M, _F}) -> z_module_manager:prio(M);
prio({M, _F, _A}) -> z_module_manager:prio(M);
prio(_) -> ?DEFAULT_PRIORITY.
