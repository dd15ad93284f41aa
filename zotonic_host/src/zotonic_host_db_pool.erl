%% @doc zotonic_host: a site's pool of zotonic_host_pgsql connections. Connections are opened
%% on demand (at most `size'), checked out by one process at a time (monitored, returned when
%% that process dies) and can be paused as Zotonic's pool is during a database restore: while
%% paused only the pausing process gets a connection.
%% @end

-module(zotonic_host_db_pool).
-behaviour(gen_server).

-export([
    start_link/2,
    name/1,
    checkout/2,
    checkin/2,
    pause/2,
    unpause/1,
    options/1
]).

% Zotonic's API as Zotonic exports it (or called by name: supervisors, observers); nothing
% here calls it directly.
-ignore_xref([start_link/2]).

-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-define(SIZE, 8).

-record(state, {
    site :: atom(),
    options :: proplists:proplist(),
    idle = [] :: [pid()],
    busy = #{} :: #{ pid() => {pid(), reference()} },
    waiting = queue:new() :: queue:queue(),
    paused_by = undefined :: undefined | pid()
}).

-spec start_link(atom(), proplists:proplist()) -> {ok, pid()} | {error, term()}.
start_link(Site, DbOptions) ->
    gen_server:start_link({local, name(Site)}, ?MODULE, {Site, DbOptions}, []).

%% @doc The pool's registered name, as z_db_pool:db_pool_name/1.
-spec name(atom()) -> atom().
name(Site) ->
    z_utils:name_for_site(z_db_pool, Site).

-spec checkout(atom(), timeout()) -> {ok, pid()} | {error, term()}.
checkout(Site, Timeout) ->
    try
        gen_server:call(name(Site), {checkout, self()}, Timeout)
    catch
        exit:{noproc, _} -> {error, nodatabase};
        exit:{timeout, _} -> {error, full}
    end.

-spec checkin(atom(), pid()) -> ok.
checkin(Site, Conn) ->
    gen_server:cast(name(Site), {checkin, Conn}).

%% @doc Pause all other users of the pool; the caller gets a connection.
-spec pause(atom(), pid()) -> ok.
pause(Site, Pid) ->
    gen_server:call(name(Site), {pause, Pid}, infinity).

-spec unpause(atom()) -> ok.
unpause(Site) ->
    gen_server:call(name(Site), unpause, infinity).

%% @doc The database options of the site, in Zotonic's z_db_pool:get_database_options/1 form.
-spec options(atom()) -> proplists:proplist().
options(Site) ->
    gen_server:call(name(Site), options).

init({Site, Options}) ->
    process_flag(trap_exit, true),
    {ok, #state{ site = Site, options = Options }}.

handle_call(options, _From, State) ->
    {reply, State#state.options, State};
handle_call({checkout, Pid}, From, State) ->
    case can_serve(Pid, State) of
        true -> serve(Pid, From, State);
        false -> {noreply, State#state{ waiting = queue:in({Pid, From}, State#state.waiting) }}
    end;
handle_call({pause, Pid}, _From, State) ->
    {reply, ok, State#state{ paused_by = Pid }};
handle_call(unpause, _From, State) ->
    {reply, ok, serve_waiting(State#state{ paused_by = undefined })}.

handle_cast({checkin, Conn}, State) ->
    case maps:take(Conn, State#state.busy) of
        {{_Pid, MRef}, Busy} ->
            erlang:demonitor(MRef, [flush]),
            State1 = State#state{ busy = Busy, idle = [Conn | State#state.idle] },
            {noreply, serve_waiting(State1)};
        error ->
            {noreply, State}
    end.

handle_info({'DOWN', MRef, process, _Pid, _}, State) ->
    case [ C || {C, {_, R}} <- maps:to_list(State#state.busy), R =:= MRef ] of
        [Conn] ->
            % The user died holding the connection: it may be mid-transaction, so close it.
            zotonic_host_pgsql:close(Conn),
            {noreply, serve_waiting(State#state{ busy = maps:remove(Conn, State#state.busy) })};
        [] ->
            {noreply, State}
    end;
handle_info({'EXIT', _, _}, State) ->
    {noreply, State};
handle_info(_Info, State) ->
    {noreply, State}.

terminate(_Reason, State) ->
    [ zotonic_host_pgsql:close(C) || C <- State#state.idle ++ maps:keys(State#state.busy) ],
    ok.

can_serve(Pid, #state{ paused_by = Paused }) when Paused =/= undefined, Paused =/= Pid -> false;
can_serve(_Pid, #state{ idle = [_ | _] }) -> true;
can_serve(_Pid, #state{ busy = Busy }) -> map_size(Busy) < ?SIZE.

serve(Pid, From, State) ->
    case take_conn(State) of
        {ok, Conn, State1} ->
            MRef = erlang:monitor(process, Pid),
            {reply, {ok, Conn}, State1#state{ busy = (State1#state.busy)#{ Conn => {Pid, MRef} } }};
        {error, _} = Error ->
            gen_server:reply(From, Error),
            {noreply, State}
    end.

take_conn(#state{ idle = [Conn | Idle] } = State) ->
    case is_process_alive(Conn) of
        true -> {ok, Conn, State#state{ idle = Idle }};
        false -> take_conn(State#state{ idle = Idle })
    end;
take_conn(#state{ idle = [], options = Opts } = State) ->
    ConnOpts = [
        {host, proplists:get_value(dbhost, Opts)},
        {port, proplists:get_value(dbport, Opts)},
        {user, proplists:get_value(dbuser, Opts)},
        {password, proplists:get_value(dbpassword, Opts)},
        {database, proplists:get_value(dbdatabase, Opts)}
    ],
    case zotonic_host_pgsql:connect(ConnOpts) of
        {ok, Conn} ->
            Schema = proplists:get_value(dbschema, Opts, "public"),
            {ok, [], []} = zotonic_host_pgsql:squery(Conn, ["SET search_path TO \"", Schema, "\""]),
            {ok, Conn, State};
        {error, _} = Error ->
            Error
    end.

serve_waiting(State) ->
    case queue:out(State#state.waiting) of
        {{value, {Pid, From}}, Rest} ->
            case can_serve(Pid, State) of
                true ->
                    case serve(Pid, From, State#state{ waiting = Rest }) of
                        {reply, Reply, State1} ->
                            gen_server:reply(From, Reply),
                            serve_waiting(State1);
                        {noreply, State1} ->
                            serve_waiting(State1)
                    end;
                false ->
                    State
            end;
        {empty, _} ->
            State
    end.
