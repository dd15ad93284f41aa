%% @doc zotonic_host: Zotonic's z_depcache as far as the host's models use it. memo/4 keeps what
%% a function returned under a key for MaxAge seconds (not when it crashes, and not at all with
%% MaxAge 0), flush/2 drops a key, flush/1 every key. As in Zotonic the cache is per site and
%% the context's `depcache' field names it: here a public ETS table owned by the site's depcache
%% process, a child of the site's supervisor as Zotonic's depcache is of z_site_sup, so it lives
%% as long as the site; z_sites_manager:restart/1 empties it (Zotonic starts a new one).
%% Not emulated: dependencies between keys (no host model sets any, so a flush of a key drops
%% that key alone), the memory bound, the process-dictionary level, and get_wait's one
%% computation of a missing key (two processes that miss together both compute it).
%% Without the site's table (the site is not running) memo/4 computes every time.
%% @end

-module(z_depcache).
-behaviour(gen_server).

-export([start_link/1, memo/4, flush/1, flush/2]).

% Zotonic's API as Zotonic exports it (or called by name: supervisors, observers); nothing
% here calls it directly.
-ignore_xref([start_link/1]).
-export([init/1, handle_call/3, handle_cast/2]).

-include_lib("zotonic_core/include/zotonic.hrl").

%% @doc Start the site's cache: the process owning its table. The table and the process carry
%% the name Zotonic gives the site's depcache server (z_context:new/1 puts it in the context).
-spec start_link(atom()) -> {ok, pid()} | {error, term()}.
start_link(Site) ->
    Name = z_utils:name_for_site(?MODULE, Site),
    gen_server:start_link({local, Name}, ?MODULE, Name, []).

%% @doc The value cached under Key, else F() cached under Key for MaxAge seconds.
-spec memo(fun(() -> Value), term(), non_neg_integer(), z:context()) -> Value when
    Value :: term().
memo(F, Key, MaxAge, #context{ depcache = Table }) ->
    Now = erlang:monotonic_time(second),
    case lookup(Table, Key, Now) of
        {ok, Value} ->
            Value;
        undefined ->
            Value = F(),
            ok = store(Table, Key, Value, MaxAge, Now),
            Value
    end.

%% @doc Drop the value cached under Key.
-spec flush(term(), z:context()) -> ok.
flush(Key, #context{ depcache = Table }) ->
    try ets:delete(Table, Key) of
        true -> ok
    catch
        error:badarg -> ok
    end.

%% @doc Drop every cached value of the site.
-spec flush(z:context()) -> ok.
flush(#context{ depcache = Table }) ->
    try ets:delete_all_objects(Table) of
        true -> ok
    catch
        error:badarg -> ok
    end.

lookup(Table, Key, Now) ->
    try ets:lookup(Table, Key) of
        [{_, Value, Expires}] when Expires > Now -> {ok, Value};
        _ -> undefined
    catch
        error:badarg -> undefined
    end.

store(_Table, _Key, _Value, 0, _Now) ->
    ok;
store(Table, Key, Value, MaxAge, Now) ->
    try ets:insert(Table, {Key, Value, Now + MaxAge}) of
        true -> ok
    catch
        error:badarg -> ok
    end.

init(Name) ->
    Name = ets:new(Name, [set, public, named_table, {read_concurrency, true}]),
    {ok, Name}.

handle_call(_Request, _From, Name) ->
    {reply, {error, unknown_call}, Name}.

handle_cast(_Request, Name) ->
    {noreply, Name}.
