%% @doc zotonic_host: Zotonic's z_pivot_rsc task queue. Tasks are stored in pivot_task_queue as
%% in Zotonic; run_tasks/1 (host extension) runs the due ones, as the pivot server would.
%% @end

-module(z_pivot_rsc).

-export([insert_task/4, insert_task/5, run_tasks/1]).

% Called by the suites (or the demo) only, as Zotonic's own API would be.
-ignore_xref([insert_task/5, run_tasks/1]).

-include_lib("zotonic_core/include/zotonic.hrl").

-spec insert_task(atom(), atom(), binary(), z:context()) -> {ok, integer()} | {error, term()}.
insert_task(Module, Function, Key, Context) ->
    insert_task(Module, Function, Key, [], Context).

-spec insert_task(atom(), atom(), binary(), list(), z:context()) -> {ok, integer()} | {error, term()}.
insert_task(Module, Function, Key, Args, Context) ->
    insert_task_after(undefined, Module, Function, Key, Args, Context).

-spec insert_task_after(integer() | undefined, atom(), atom(), binary(), list(), z:context()) -> {ok, integer()} | {error, term()}.
insert_task_after(Delay, Module, Function, Key, Args, Context) ->
    Due = case Delay of
        undefined -> calendar:universal_time();
        _ -> z_datetime:next_second(calendar:universal_time(), Delay)
    end,
    Id = z_db:q1("insert into pivot_task_queue (module, function, key, props, due)
                  values ($1, $2, $3, $4, $5)
                  on conflict (module, function, key) do update set props = excluded.props, due = excluded.due
                  returning id",
                 [atom_to_binary(Module, utf8), atom_to_binary(Function, utf8), z_convert:to_binary(Key),
                  ?DB_PROPS(Args), Due], Context),
    {ok, Id}.

%% @doc Run and remove the due tasks: Module:Function(Args..., Context).
-spec run_tasks(z:context()) -> non_neg_integer().
run_tasks(Context) ->
    Tasks = z_db:q("select id, module, function, props from pivot_task_queue where due <= now() order by id", Context),
    lists:foreach(
        fun({Id, M, F, Args}) ->
            _ = z_db:q("delete from pivot_task_queue where id = $1", [Id], Context),
            erlang:apply(binary_to_atom(M, utf8), binary_to_atom(F, utf8), args(Args) ++ [z_acl:sudo(Context)])
        end,
        Tasks),
    length(Tasks).

args(L) when is_list(L) -> L;
args(_) -> [].
