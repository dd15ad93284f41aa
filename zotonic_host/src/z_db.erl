%% @doc zotonic_host: Zotonic's z_db API over the site's pool on the real PostgreSQL server.
%% Same return shapes as Zotonic: q/q1 throw `{error, Reason}' on query errors, qmap* return
%% `{ok, _} | {error, _}', assoc* return proplists with atom keys, `props' columns hold a map
%% stored with ?DB_PROPS and are merged by the *_props variants. Transactions nest (only the
%% outermost one commits); delayed z_notifier:notify calls run after commit.
%% @end

-module(z_db).

-export([
    transaction/2,
    transaction/3,
    q/2, q/3, q/4,
    q1/2, q1/3, q1/4,
    q_row/2, q_row/3,
    qmap/2, qmap/3, qmap/4,
    qmap_row/2, qmap_row/3, qmap_row/4,
    qmap_props_row/2, qmap_props_row/3, qmap_props_row/4,
    assoc/2, assoc/3,
    squery/2, squery/3,
    equery/2, equery/3, equery/4,
    insert/2, insert/3,
    delete/3,
    column_names_bin/2,
    table_exists/2,
    key_exists/3,
    function_exists/2,
    drop_table/2,
    flush/1
]).

% Called by the suites (or the demo) only, as Zotonic's own API would be.
-ignore_xref([assoc/2, drop_table/2, equery/2, equery/4, insert/2, q/4, q1/4, qmap/2, qmap/4, qmap_props_row/2, qmap_row/2, qmap_row/4, squery/3, transaction/3]).

-include_lib("zotonic_core/include/zotonic.hrl").
-include("zotonic_host_pgsql.hrl").

-define(TIMEOUT, 30000).

-type sql() :: string() | iodata().
-type parameters() :: list().
-type table_name() :: atom() | string() | binary().
-type qmap_options() :: [ {keys, binary | atom} | {timeout, non_neg_integer()} ].
-export_type([sql/0, parameters/0, table_name/0]).

%% ---------------------------------------------------------------------------------------------
%% Site database

%% ---------------------------------------------------------------------------------------------
%% Transactions

-spec transaction(fun((z:context()) -> term()), z:context()) -> term().
transaction(Function, Context) ->
    transaction(Function, [], Context).

%% @doc Run Function inside a transaction. A `{rollback, R}' result or a crash rolls back
%% (crash: `{rollback, {Reason, Stack}}'); nested calls run inside the outer transaction.
-spec transaction(fun((z:context()) -> term()), list(), z:context()) -> term().
transaction(Function, _Options, #context{ dbc = undefined } = Context) ->
    case z_db_pool:get_connection(Context) of
        {ok, C} ->
            Context1 = Context#context{ dbc = C },
            Result = try
                {ok, [], []} = zotonic_host_pgsql:squery(C, "BEGIN"),
                case Function(Context1) of
                    {rollback, R} ->
                        _ = zotonic_host_pgsql:squery(C, "ROLLBACK"),
                        {rollback_done, R};
                    R ->
                        case zotonic_host_pgsql:squery(C, "COMMIT") of
                            {ok, [], []} -> R;
                            {error, _} = CommitError -> throw(CommitError)
                        end
                end
            catch
                Class:Why:Stack ->
                    ?LOG_ERROR(#{
                        in => zotonic_host,
                        text => <<"Error on database transaction">>,
                        result => Class,
                        reason => Why,
                        stack => Stack
                    }),
                    _ = zotonic_host_pgsql:squery(C, "ROLLBACK"),
                    {rollback, {Why, Stack}}
            after
                z_db_pool:return_connection(C, Context)
            end,
            case Result of
                {rollback_done, R1} ->
                    z_notifier:notify_queue_flush(Context),
                    R1;
                {rollback, _} = RB ->
                    z_notifier:notify_queue_flush(Context),
                    RB;
                _ ->
                    z_notifier:notify_queue(Context),
                    Result
            end;
        {error, _} ->
            {rollback, {no_database_connection, []}}
    end;
transaction(Function, _Options, Context) ->
    Function(Context).

%% ---------------------------------------------------------------------------------------------
%% Queries

-spec q(sql(), z:context()) -> list() | non_neg_integer().
q(Sql, Context) -> q(Sql, [], Context, ?TIMEOUT).

-spec q(sql(), parameters() | z:context(), z:context() | pos_integer()) -> list() | non_neg_integer().
q(Sql, #context{} = Context, Timeout) when is_integer(Timeout) -> q(Sql, [], Context, Timeout);
q(Sql, Params, #context{} = Context) -> q(Sql, Params, Context, ?TIMEOUT).

%% @doc Rows as tuples, or the count of a command. Throws `{error, Reason}' on failure.
-spec q(sql(), parameters(), z:context(), pos_integer()) -> list() | non_neg_integer().
q(Sql, Params, Context, Timeout) ->
    case run(Sql, Params, Context, Timeout) of
        {ok, _Count, _Cols, Rows} -> Rows;
        {ok, _Cols, Rows} -> Rows;
        {ok, Count} -> Count;
        {error, Reason} = Error ->
            log_error(Reason, Sql, Params),
            throw(Error)
    end.

-spec q1(sql(), z:context()) -> term() | undefined.
q1(Sql, Context) -> q1(Sql, [], Context, ?TIMEOUT).

-spec q1(sql(), parameters() | z:context(), z:context() | pos_integer()) -> term() | undefined.
q1(Sql, #context{} = Context, Timeout) when is_integer(Timeout) -> q1(Sql, [], Context, Timeout);
q1(Sql, Params, #context{} = Context) -> q1(Sql, Params, Context, ?TIMEOUT).

%% @doc The first column of the first row, `undefined' without rows.
-spec q1(sql(), parameters(), z:context(), pos_integer()) -> term() | undefined.
q1(Sql, Params, Context, Timeout) ->
    case q(Sql, Params, Context, Timeout) of
        [Row | _] when is_tuple(Row) -> element(1, Row);
        _ -> undefined
    end.

-spec q_row(sql(), z:context()) -> tuple() | undefined.
q_row(Sql, Context) -> q_row(Sql, [], Context).

-spec q_row(sql(), parameters(), z:context()) -> tuple() | undefined.
q_row(Sql, Params, Context) ->
    case q(Sql, Params, Context) of
        [Row | _] -> Row;
        _ -> undefined
    end.

-spec qmap(sql(), z:context()) -> {ok, [map()]} | {error, term()}.
qmap(Sql, Context) -> qmap(Sql, [], [], Context).

-spec qmap(sql(), parameters(), z:context()) -> {ok, [map()]} | {error, term()}.
qmap(Sql, Params, Context) -> qmap(Sql, Params, [], Context).

%% @doc Rows as maps (binary keys unless `{keys, atom}').
-spec qmap(sql(), parameters(), qmap_options(), z:context()) -> {ok, [map()]} | {error, term()}.
qmap(Sql, Params, Options, Context) ->
    qmap_1(Sql, Params, Options, false, Context).

-spec qmap_row(sql(), z:context()) -> {ok, map()} | {error, term()}.
qmap_row(Sql, Context) -> qmap_row(Sql, [], [], Context).

-spec qmap_row(sql(), parameters(), z:context()) -> {ok, map()} | {error, term()}.
qmap_row(Sql, Params, Context) -> qmap_row(Sql, Params, [], Context).

-spec qmap_row(sql(), parameters(), qmap_options(), z:context()) -> {ok, map()} | {error, term()}.
qmap_row(Sql, Params, Options, Context) ->
    first_row(qmap(Sql, Params, Options, Context)).

%% @doc As qmap/4, with the map in a `props' column merged into the row.
-spec qmap_props(sql(), parameters(), qmap_options(), z:context()) -> {ok, [map()]} | {error, term()}.
qmap_props(Sql, Params, Options, Context) ->
    qmap_1(Sql, Params, Options, true, Context).

-spec qmap_props_row(sql(), z:context()) -> {ok, map()} | {error, term()}.
qmap_props_row(Sql, Context) -> qmap_props_row(Sql, [], [], Context).

-spec qmap_props_row(sql(), parameters(), z:context()) -> {ok, map()} | {error, term()}.
qmap_props_row(Sql, Params, Context) -> qmap_props_row(Sql, Params, [], Context).

-spec qmap_props_row(sql(), parameters(), qmap_options(), z:context()) -> {ok, map()} | {error, term()}.
qmap_props_row(Sql, Params, Options, Context) ->
    first_row(qmap_props(Sql, Params, Options, Context)).

first_row({ok, [M | _]}) when is_map(M) -> {ok, M};
first_row({ok, []}) -> {error, enoent};
first_row(Other) -> Other.

qmap_1(Sql, Params, Options, IsMerge, Context) ->
    Timeout = proplists:get_value(timeout, Options, ?TIMEOUT),
    Keys = proplists:get_value(keys, Options, binary),
    case run(Sql, Params, Context, Timeout) of
        {ok, _Count, Cols, Rows} -> {ok, rows_to_maps(Cols, Rows, Keys, IsMerge)};
        {ok, Cols, Rows} -> {ok, rows_to_maps(Cols, Rows, Keys, IsMerge)};
        {ok, Count} -> {ok, Count};
        {error, Reason} = Error ->
            log_error(Reason, Sql, Params),
            Error
    end.

rows_to_maps(Cols, Rows, Keys, IsMerge) ->
    Names = [ case Keys of atom -> binary_to_atom(N, utf8); binary -> N end || #column{ name = N } <- Cols ],
    [ row_to_map(Names, tuple_to_list(Row), IsMerge) || Row <- Rows ].

row_to_map(Names, Values, IsMerge) ->
    lists:foldl(
        fun
            ({Name, V}, Acc) when IsMerge, (Name =:= <<"props">> orelse Name =:= props) ->
                case V of
                    M when is_map(M) -> maps:merge(M, Acc);
                    L when is_list(L) -> maps:merge(maps:from_list([ {to_bin(K), X} || {K, X} <- L ]), Acc);
                    _ -> Acc
                end;
            ({Name, V}, Acc) ->
                Acc#{ Name => V }
        end,
        #{},
        lists:zip(Names, Values)).

-spec assoc(sql(), z:context()) -> [proplists:proplist()].
assoc(Sql, Context) -> assoc(Sql, [], Context).

%% @doc Rows as proplists with atom keys.
-spec assoc(sql(), parameters(), z:context()) -> [proplists:proplist()].
assoc(Sql, Params, Context) ->
    case run(Sql, Params, Context, ?TIMEOUT) of
        {ok, Cols, Rows} -> to_assoc(Cols, Rows);
        {ok, _Count, Cols, Rows} -> to_assoc(Cols, Rows);
        {ok, _Count} -> [];
        {error, Reason} = Error ->
            log_error(Reason, Sql, Params),
            throw(Error)
    end.

to_assoc(Cols, Rows) ->
    Names = [ binary_to_atom(N, utf8) || #column{ name = N } <- Cols ],
    [ lists:zip(Names, tuple_to_list(R)) || R <- Rows ].

-spec squery(sql(), z:context()) -> term().
squery(Sql, Context) -> squery(Sql, Context, ?TIMEOUT).

%% @doc Simple query protocol, the driver's result unchanged.
-spec squery(sql(), z:context(), pos_integer()) -> term().
squery(Sql, Context, Timeout) ->
    with_connection(fun(C) -> zotonic_host_pgsql:squery(C, Sql, Timeout) end, Context).

-spec equery(sql(), z:context()) -> zotonic_host_pgsql:result().
equery(Sql, Context) -> equery(Sql, [], Context).

-spec equery(sql(), parameters() | z:context(), z:context() | pos_integer()) -> zotonic_host_pgsql:result().
equery(Sql, #context{} = Context, Timeout) when is_integer(Timeout) -> equery(Sql, [], Context, Timeout);
equery(Sql, Params, #context{} = Context) -> equery(Sql, Params, Context, ?TIMEOUT).

%% @doc Query with parameters, the driver's result unchanged.
-spec equery(sql(), parameters(), z:context(), pos_integer()) -> zotonic_host_pgsql:result().
equery(Sql, Params, Context, Timeout) ->
    run(Sql, Params, Context, Timeout).

run(Sql, Params, Context, Timeout) ->
    with_connection(fun(C) -> zotonic_host_pgsql:equery(C, Sql, Params, Timeout) end, Context).

with_connection(F, #context{ dbc = undefined } = Context) ->
    case z_db_pool:get_connection(Context) of
        {ok, C} ->
            try F(C)
            after z_db_pool:return_connection(C, Context)
            end;
        {error, _} = Error ->
            Error
    end;
with_connection(F, #context{ dbc = C }) ->
    F(C).

log_error(Reason, Sql, Params) ->
    ?LOG_ERROR(#{
        in => zotonic_host,
        text => <<"z_db error in query">>,
        result => error,
        reason => Reason,
        query => Sql,
        args => Params
    }).

%% ---------------------------------------------------------------------------------------------
%% Row helpers: columns not in the table go into its `props' column.

-spec insert(table_name(), z:context()) -> {ok, pos_integer() | undefined} | {error, term()}.
insert(Table, Context) ->
    insert(Table, #{}, Context).

%% @doc Insert a row, returning the new id (if the table has one).
-spec insert(table_name(), map() | proplists:proplist(), z:context()) -> {ok, term()} | {error, term()}.
insert(Table, Props, Context) when is_list(Props) ->
    insert(Table, maps:from_list([ {to_bin(K), V} || {K, V} <- Props ]), Context);
insert(Table, Props0, Context) ->
    Tab = to_bin(Table),
    Cols = column_names_bin(Tab, Context),
    Props = maps:fold(fun(K, V, Acc) -> Acc#{ to_bin(K) => V } end, #{}, Props0),
    {ColProps, Extra} = split_cols(Cols, Props),
    ColProps1 = add_props_col(Cols, ColProps, Extra),
    Keys = maps:keys(ColProps1),
    Returning = case lists:member(<<"id">>, Cols) of
        true -> <<" returning id">>;
        false -> <<>>
    end,
    Sql = case Keys of
        [] -> [<<"insert into ">>, quote(Tab), <<" default values">>, Returning];
        _ ->
            [<<"insert into ">>, quote(Tab), <<" (">>, lists:join(<<", ">>, [ quote(K) || K <- Keys ]),
             <<") values (">>, lists:join(<<", ">>, [ [$$, integer_to_binary(N)] || N <- lists:seq(1, length(Keys)) ]),
             <<")">>, Returning]
    end,
    case run(Sql, [ maps:get(K, ColProps1) || K <- Keys ], Context, ?TIMEOUT) of
        {ok, _, _, [{Id}]} -> {ok, Id};
        {ok, _} -> {ok, undefined};
        {error, _} = Error -> Error
    end.

-spec delete(table_name(), term(), z:context()) -> {ok, non_neg_integer()} | {error, term()}.
delete(Table, Id, Context) ->
    case run([<<"delete from ">>, quote(to_bin(Table)), <<" where id = $1">>], [Id], Context, ?TIMEOUT) of
        {ok, N} when is_integer(N) -> {ok, N};
        {error, _} = Error -> Error
    end.

split_cols(Cols, Props) ->
    maps:fold(
        fun(K, V, {C, E}) ->
            case lists:member(K, Cols) andalso K =/= <<"props">> of
                true -> {C#{ K => V }, E};
                false -> {C, E#{ K => V }}
            end
        end,
        {#{}, #{}},
        maps:remove(<<"props">>, Props)).

add_props_col(Cols, ColProps, Extra) ->
    case lists:member(<<"props">>, Cols) of
        true when map_size(Extra) > 0 -> ColProps#{ <<"props">> => ?DB_PROPS(Extra) };
        _ -> ColProps
    end.

%% ---------------------------------------------------------------------------------------------
%% Schema introspection

%% Cached per site and table until flush/1 or drop_table/2, as Zotonic keeps them in the
%% depcache under {database, Db}: a query of information_schema costs more than most saves.
-spec column_names_bin(table_name(), z:context()) -> [binary()].
column_names_bin(Table, #context{ site = Site } = Context) ->
    Key = {Site, columns, to_bin(Table)},
    case ets:lookup(zotonic_host_kv, Key) of
        [{_, Cols}] ->
            Cols;
        [] ->
            Cols = [ N || {N} <- q("select column_name::text from information_schema.columns
                                    where table_schema = current_schema() and table_name = $1
                                    order by ordinal_position", [to_bin(Table)], Context) ],
            true = ets:insert(zotonic_host_kv, {Key, Cols}),
            Cols
    end.

-spec table_exists(table_name(), z:context()) -> boolean().
table_exists(Table, Context) ->
    1 =:= q1("select count(*)::int from information_schema.tables
              where table_schema = current_schema() and table_name = $1", [to_bin(Table)], Context).

-spec key_exists(table_name(), atom() | binary(), z:context()) -> boolean().
key_exists(Table, Key, Context) ->
    q1("select count(*)::int from pg_indexes
        where schemaname = current_schema() and tablename = $1 and indexname = $2",
       [to_bin(Table), to_bin(Key)], Context) >= 1.

-spec function_exists(atom() | binary(), z:context()) -> boolean().
function_exists(Function, Context) ->
    q1("select count(*)::int from pg_proc p join pg_namespace n on p.pronamespace = n.oid
        where n.nspname = current_schema() and p.proname = $1", [to_bin(Function)], Context) >= 1.

-spec drop_table(table_name(), z:context()) -> ok.
drop_table(Table, Context) ->
    _ = q([<<"drop table if exists ">>, quote(to_bin(Table))], Context),
    flush(Context).

%% @doc Forget the cached column names of the site's tables, as Zotonic flushes its depcache.
-spec flush(z:context()) -> ok.
flush(#context{ site = Site }) ->
    true = ets:match_delete(zotonic_host_kv, {{Site, columns, '_'}, '_'}),
    ok.

quote(Name) -> [$", Name, $"].

to_bin(B) when is_binary(B) -> B;
to_bin(A) when is_atom(A) -> atom_to_binary(A, utf8);
to_bin(L) when is_list(L) -> unicode:characters_to_binary(L).
