%% Size: one wire-protocol client (auth, both query protocols, codecs) is one unit; see
%% zotonic_host/README.md for why Debian's Erlang PostgreSQL client did not fit.
%%
%% @doc A small PostgreSQL client for the test host: one process per connection, the v3 wire
%% protocol over TCP or a unix socket, trust / cleartext / md5 / SCRAM-SHA-256 authentication,
%% the simple query protocol (squery/2, text results) and the extended protocol (equery/3) with
%% `$1' parameters encoded by the types the server infers, results decoded to Erlang terms the
%% way Zotonic's z_db returns them (epgsql plus z_db_pgsql_codec): NULL is `undefined',
%% timestamps are `{{Y,M,D},{H,I,S}}' with integer seconds, bytea with Zotonic's term marker is
%% the term, jsonb is decoded JSON. Result shapes follow epgsql:
%% `{ok, Columns, Rows}', `{ok, Count}', `{ok, Count, Columns, Rows}', `{error, #error{}}'.
%% @end

-module(zotonic_host_pgsql).
-behaviour(gen_server).

-export([
    connect/1,
    close/1,
    squery/2,
    squery/3,
    equery/3,
    equery/4
]).

% Called by the suites (or the demo) only, as Zotonic's own API would be.
-ignore_xref([equery/3]).

-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-include("zotonic_host_pgsql.hrl").

-define(TERM_MAGIC, 16#01326A3A).
-define(PG_EPOCH_DAYS, 730485).          % calendar:date_to_gregorian_days({2000,1,1})
-define(PG_EPOCH_SECS, 63113904000).     % calendar:datetime_to_gregorian_seconds({{2000,1,1},{0,0,0}})
-define(TIMEOUT, 30000).

-type connect_option() :: {host, string()} | {port, inet:port_number()} | {user, string()}
                        | {password, string()} | {database, string()} | {timeout, timeout()}.
-type result() :: {ok, [#column{}], [tuple()]}
                | {ok, non_neg_integer()}
                | {ok, non_neg_integer(), [#column{}], [tuple()]}
                | {error, #error{} | term()}.
-export_type([connect_option/0, result/0]).

-record(state, {
    sock :: gen_tcp:socket(),
    timeout = ?TIMEOUT :: timeout(),
    params = #{} :: map()
}).

%% ---------------------------------------------------------------------------------------------
%% API

%% @doc Open a connection. `host' may be a directory (unix socket dir, as libpq's PGHOST).
-spec connect(Options) -> {ok, pid()} | {error, term()} when Options :: [connect_option()].
connect(Options) ->
    case gen_server:start(?MODULE, Options, []) of
        {ok, Pid} -> {ok, Pid};
        {error, _} = Error -> Error
    end.

-spec close(pid()) -> ok.
close(Pid) ->
    try gen_server:call(Pid, close, 5000) catch exit:_ -> ok end.

%% @doc Simple query protocol; several statements are allowed. Values come back as text
%% binaries (`null' for NULL), like epgsql:squery/2.
-spec squery(pid(), iodata()) -> result() | [result()].
squery(Pid, Sql) ->
    squery(Pid, Sql, ?TIMEOUT).

-spec squery(pid(), iodata(), timeout()) -> result() | [result()].
squery(Pid, Sql, Timeout) ->
    call(Pid, {squery, iolist_to_binary(Sql)}, Timeout).

%% @doc Extended query protocol with parameters `$1'...; values decoded to Erlang terms.
-spec equery(pid(), iodata(), list()) -> result().
equery(Pid, Sql, Params) ->
    equery(Pid, Sql, Params, ?TIMEOUT).

-spec equery(pid(), iodata(), list(), timeout()) -> result().
equery(Pid, Sql, Params, Timeout) ->
    call(Pid, {equery, iolist_to_binary(Sql), Params}, Timeout).

call(Pid, Msg, Timeout) ->
    try
        gen_server:call(Pid, Msg, add_margin(Timeout))
    catch
        exit:{noproc, _} -> {error, connection_down};
        exit:{normal, _} -> {error, connection_down};
        exit:{timeout, _} -> {error, timeout}
    end.

add_margin(infinity) -> infinity;
add_margin(T) -> T + 1000.

%% ---------------------------------------------------------------------------------------------
%% gen_server

-spec init([connect_option()]) -> {ok, #state{}} | {stop, term()}.
init(Options) ->
    Host = proplists:get_value(host, Options, "127.0.0.1"),
    Port = proplists:get_value(port, Options, 5432),
    Timeout = proplists:get_value(timeout, Options, ?TIMEOUT),
    case open_socket(Host, Port, Timeout) of
        {ok, Sock} ->
            State = #state{ sock = Sock, timeout = Timeout },
            case startup(Options, State) of
                {ok, State1} -> {ok, State1};
                {error, Reason} ->
                    gen_tcp:close(Sock),
                    {stop, Reason}
            end;
        {error, Reason} ->
            {stop, {connect, Reason}}
    end.

handle_call(close, _From, State) ->
    _ = gen_tcp:send(State#state.sock, msg($X, <<>>)),
    {stop, normal, ok, State};
handle_call({squery, Sql}, _From, State) ->
    ok = send(State, msg($Q, <<Sql/binary, 0>>)),
    Results = collect_simple(State, [], undefined),
    Reply = case Results of
        [One] -> One;
        Many -> Many
    end,
    {reply, Reply, State};
handle_call({equery, Sql, Params}, _From, State) ->
    {reply, do_equery(Sql, Params, State), State}.

handle_cast(_Msg, State) ->
    {noreply, State}.

handle_info({tcp_closed, _}, State) ->
    {stop, normal, State};
handle_info(_Info, State) ->
    {noreply, State}.

terminate(_Reason, #state{ sock = Sock }) ->
    catch gen_tcp:close(Sock),
    ok.

%% ---------------------------------------------------------------------------------------------
%% Connecting and authentication

open_socket([$/ | _] = Dir, Port, Timeout) ->
    Path = filename:join(Dir, ".s.PGSQL." ++ integer_to_list(Port)),
    gen_tcp:connect({local, Path}, 0, [local, binary, {active, false}, {packet, raw}], Timeout);
open_socket(Host, Port, Timeout) ->
    gen_tcp:connect(Host, Port, [binary, {active, false}, {packet, raw}, {nodelay, true}], Timeout).

startup(Options, State) ->
    User = unicode:characters_to_binary(proplists:get_value(user, Options, "postgres")),
    Db = unicode:characters_to_binary(proplists:get_value(database, Options, User)),
    Body = <<3:16, 0:16,
             "user", 0, User/binary, 0,
             "database", 0, Db/binary, 0,
             "client_encoding", 0, "UTF8", 0,
             "TimeZone", 0, "UTC", 0,
             "DateStyle", 0, "ISO", 0,
             0>>,
    ok = gen_tcp:send(State#state.sock, [<<(byte_size(Body) + 4):32>>, Body]),
    Password = unicode:characters_to_binary(proplists:get_value(password, Options, "")),
    authenticate(User, Password, State).

authenticate(User, Password, State) ->
    case recv_msg(State) of
        {$R, <<0:32>>} ->
            after_auth(State);
        {$R, <<3:32>>} ->
            ok = send(State, msg($p, <<Password/binary, 0>>)),
            authenticate(User, Password, State);
        {$R, <<5:32, Salt:4/binary>>} ->
            Inner = hex(crypto:hash(md5, <<Password/binary, User/binary>>)),
            Outer = hex(crypto:hash(md5, <<Inner/binary, Salt/binary>>)),
            ok = send(State, msg($p, <<"md5", Outer/binary, 0>>)),
            authenticate(User, Password, State);
        {$R, <<10:32, Mechs/binary>>} ->
            case lists:member(<<"SCRAM-SHA-256">>, binary:split(Mechs, <<0>>, [global])) of
                true -> scram(Password, State);
                false -> {error, {unsupported_auth, Mechs}}
            end;
        {$R, <<Other:32, _/binary>>} ->
            {error, {unsupported_auth, Other}};
        {$E, Err} ->
            {error, parse_error(Err)};
        {error, _} = Error ->
            Error
    end.

scram(Password, State) ->
    Nonce = base64:encode(crypto:strong_rand_bytes(18)),
    ClientFirstBare = <<"n=,r=", Nonce/binary>>,
    ClientFirst = <<"n,,", ClientFirstBare/binary>>,
    ok = send(State, msg($p, <<"SCRAM-SHA-256", 0, (byte_size(ClientFirst)):32, ClientFirst/binary>>)),
    case scram_recv(11, State) of
        {ok, ServerFirst} ->
            Attrs = scram_attrs(ServerFirst),
            ServerNonce = maps:get($r, Attrs),
            Salt = base64:decode(maps:get($s, Attrs)),
            Iter = binary_to_integer(maps:get($i, Attrs)),
            case binary:match(ServerNonce, Nonce) of
                {0, _} ->
                    Salted = crypto:pbkdf2_hmac(sha256, Password, Salt, Iter, 32),
                    ClientKey = crypto:mac(hmac, sha256, Salted, <<"Client Key">>),
                    StoredKey = crypto:hash(sha256, ClientKey),
                    WithoutProof = <<"c=biws,r=", ServerNonce/binary>>,
                    AuthMsg = <<ClientFirstBare/binary, ",", ServerFirst/binary, ",", WithoutProof/binary>>,
                    Signature = crypto:mac(hmac, sha256, StoredKey, AuthMsg),
                    Proof = crypto:exor(ClientKey, Signature),
                    Final = <<WithoutProof/binary, ",p=", (base64:encode(Proof))/binary>>,
                    ok = send(State, msg($p, Final)),
                    ServerKey = crypto:mac(hmac, sha256, Salted, <<"Server Key">>),
                    Expected = base64:encode(crypto:mac(hmac, sha256, ServerKey, AuthMsg)),
                    scram_final(Expected, State);
                _ ->
                    {error, scram_nonce_mismatch}
            end;
        {error, _} = Error ->
            Error
    end.

scram_final(Expected, State) ->
    case scram_recv(12, State) of
        {ok, ServerFinal} ->
            case maps:get($v, scram_attrs(ServerFinal), undefined) of
                Expected ->
                    case scram_recv(0, State) of
                        {ok, <<>>} -> after_auth(State);
                        {ok, Extra} -> {error, {scram, {$R, <<0:32, Extra/binary>>}}};
                        {error, _} = Error -> Error
                    end;
                _ ->
                    {error, scram_server_signature}
            end;
        {error, _} = Error ->
            Error
    end.

%% The server's next authentication message of the SASL step Code (11 continue, 12 final,
%% 0 ok), its body; any other message fails the exchange.
scram_recv(Code, State) ->
    case recv_msg(State) of
        {$R, <<Code:32, Body/binary>>} -> {ok, Body};
        {$E, Err} -> {error, parse_error(Err)};
        Other -> {error, {scram, Other}}
    end.

scram_attrs(Bin) ->
    maps:from_list([ {K, V} || <<K, $=, V/binary>> <- binary:split(Bin, <<",">>, [global]) ]).

after_auth(State) ->
    case recv_msg(State) of
        {$S, Body} ->
            [K, V | _] = binary:split(Body, <<0>>, [global]),
            after_auth(State#state{ params = (State#state.params)#{ K => V } });
        {$K, _} -> after_auth(State);
        {$N, _} -> after_auth(State);
        {$Z, _} -> {ok, State};
        {$E, Err} -> {error, parse_error(Err)};
        {error, _} = Error -> Error
    end.

%% ---------------------------------------------------------------------------------------------
%% Simple query

collect_simple(State, Acc, Current) ->
    case recv_msg(State) of
        {$T, Desc} ->
            collect_simple(State, Acc, {parse_row_description(Desc), []});
        {$D, Data} ->
            {Cols, Rows} = Current,
            Row = list_to_tuple([ case V of null -> null; _ -> V end || V <- parse_data_row(Data) ]),
            collect_simple(State, Acc, {Cols, [Row | Rows]});
        {$C, Tag} ->
            collect_simple(State, [complete(Tag, Current) | Acc], undefined);
        {$I, _} ->
            collect_simple(State, [{ok, [], []} | Acc], undefined);
        {$E, Err} ->
            collect_simple(State, [{error, parse_error(Err)} | Acc], undefined);
        {$Z, _} ->
            lists:reverse(Acc);
        {error, _} = Error ->
            lists:reverse([Error | Acc]);
        _Other ->
            collect_simple(State, Acc, Current)
    end.

%% ---------------------------------------------------------------------------------------------
%% Extended query: Parse + Describe, then Bind with typed binary parameters + Execute.

do_equery(Sql, Params, State) ->
    ok = send(State, [
        msg($P, <<0, Sql/binary, 0, 0:16>>),
        msg($D, <<$S, 0>>),
        msg($S, <<>>)
    ]),
    case describe_reply(State, undefined, undefined, undefined) of
        {ok, ParamOids, Cols} when length(ParamOids) =:= length(Params) ->
            case catch encode_params(ParamOids, Params) of
                {ok, Formats, Values} ->
                    ResFormats = [ result_format(C#column.oid) || C <- Cols ],
                    Bind = <<0, 0,
                             (length(Formats)):16, << <<F:16>> || F <- Formats >>/binary,
                             (length(Values)):16, (iolist_to_binary(Values))/binary,
                             (length(ResFormats)):16, << <<F:16>> || F <- ResFormats >>/binary>>,
                    ok = send(State, [msg($B, Bind), msg($E, <<0, 0:32>>), msg($S, <<>>)]),
                    Cols1 = [ C#column{ format = format_name(F) } || {C, F} <- lists:zip(Cols, ResFormats) ],
                    execute_reply(State, Cols1, [], undefined);
                {'EXIT', Reason} ->
                    {error, {badarg, Reason}};
                {error, _} = Error ->
                    Error
            end;
        {ok, ParamOids, _Cols} ->
            {error, {parameter_count, length(ParamOids), length(Params)}};
        {error, _} = Error ->
            Error
    end.

describe_reply(State, Params, Cols, Err) ->
    case recv_msg(State) of
        {$1, _} -> describe_reply(State, Params, Cols, Err);
        {$t, <<N:16, Oids:N/binary-unit:32>>} ->
            describe_reply(State, [ O || <<O:32>> <= Oids ], Cols, Err);
        {$T, Desc} -> describe_reply(State, Params, parse_row_description(Desc), Err);
        {$n, _} -> describe_reply(State, Params, [], Err);
        {$E, E} -> describe_reply(State, Params, Cols, parse_error(E));
        {$Z, _} when Err =/= undefined -> {error, Err};
        {$Z, _} -> {ok, Params, Cols};
        {error, _} = Error -> Error;
        _ -> describe_reply(State, Params, Cols, Err)
    end.

execute_reply(State, Cols, Rows, Result) ->
    case recv_msg(State) of
        {$2, _} -> execute_reply(State, Cols, Rows, Result);
        {$D, Data} ->
            Row = decode_row(Cols, parse_data_row(Data)),
            execute_reply(State, Cols, [Row | Rows], Result);
        {$C, Tag} -> execute_reply(State, Cols, Rows, complete(Tag, {Cols, Rows}));
        {$I, _} -> execute_reply(State, Cols, Rows, {ok, [], []});
        {$E, E} -> execute_reply(State, Cols, Rows, {error, parse_error(E)});
        {$Z, _} -> Result;
        {error, _} = Error -> Error;
        _ -> execute_reply(State, Cols, Rows, Result)
    end.

%% epgsql's shapes: selects give {ok, Cols, Rows}; counted commands give {ok, N} or, with a
%% RETURNING clause, {ok, N, Cols, Rows}; other commands {ok, [], []}.
complete(Tag, Current) ->
    {Cols, Rows} = case Current of
        undefined -> {[], []};
        {C, R} -> {C, lists:reverse(R)}
    end,
    Words = binary:split(binary:part(Tag, 0, byte_size(Tag) - 1), <<" ">>, [global]),
    case Words of
        [<<"SELECT">>, _] -> {ok, Cols, Rows};
        [Cmd | _] when Cmd =:= <<"INSERT">>; Cmd =:= <<"UPDATE">>; Cmd =:= <<"DELETE">>;
                       Cmd =:= <<"MOVE">>; Cmd =:= <<"FETCH">>; Cmd =:= <<"COPY">>;
                       Cmd =:= <<"MERGE">> ->
            Count = binary_to_integer(lists:last(Words)),
            case Cols of
                [] -> {ok, Count};
                _ -> {ok, Count, Cols, Rows}
            end;
        _ -> {ok, Cols, Rows}
    end.

%% ---------------------------------------------------------------------------------------------
%% Wire helpers

msg(Type, Body) ->
    B = iolist_to_binary(Body),
    <<Type, (byte_size(B) + 4):32, B/binary>>.

send(#state{ sock = Sock }, Data) ->
    gen_tcp:send(Sock, Data).

recv_msg(#state{ sock = Sock, timeout = Timeout }) ->
    case gen_tcp:recv(Sock, 5, Timeout) of
        {ok, <<Type, Len:32>>} when Len =:= 4 ->
            {Type, <<>>};
        {ok, <<Type, Len:32>>} ->
            case gen_tcp:recv(Sock, Len - 4, Timeout) of
                {ok, Body} -> {Type, Body};
                {error, _} = Error -> Error
            end;
        {error, _} = Error ->
            Error
    end.

parse_row_description(<<N:16, Rest/binary>>) ->
    parse_columns(N, Rest, []).

parse_columns(0, _, Acc) ->
    lists:reverse(Acc);
parse_columns(N, Bin, Acc) ->
    [Name, Rest] = binary:split(Bin, <<0>>),
    <<TableOid:32, AttrNr:16/signed, Oid:32, Size:16/signed, Modifier:32/signed, Format:16, Rest1/binary>> = Rest,
    Col = #column{
        name = Name,
        type = type_name(Oid),
        oid = Oid,
        size = Size,
        modifier = Modifier,
        format = format_name(Format),
        table_oid = TableOid,
        table_attr_number = AttrNr
    },
    parse_columns(N - 1, Rest1, [Col | Acc]).

parse_data_row(<<N:16, Rest/binary>>) ->
    parse_values(N, Rest, []).

parse_values(0, _, Acc) -> lists:reverse(Acc);
parse_values(N, <<-1:32/signed, Rest/binary>>, Acc) -> parse_values(N - 1, Rest, [null | Acc]);
parse_values(N, <<Len:32, V:Len/binary, Rest/binary>>, Acc) -> parse_values(N - 1, Rest, [V | Acc]).

parse_error(Body) ->
    Fields = maps:from_list([ {K, V} || <<K, V/binary>> <- binary:split(Body, <<0>>, [global]), K =/= 0 ]),
    Code = maps:get($C, Fields, <<>>),
    #error{
        severity = severity(maps:get($V, Fields, maps:get($S, Fields, <<"ERROR">>))),
        code = Code,
        codename = codename(Code),
        message = maps:get($M, Fields, <<>>),
        extra = [ {K1, V1} || {K, K1} <- [{$D, detail}, {$H, hint}, {$P, position}, {$s, schema_name},
                                            {$t, table_name}, {$c, column_name}, {$n, constraint_name},
                                            {$W, where}],
                              V1 <- [maps:get(K, Fields, undefined)], V1 =/= undefined ]
    }.

severity(<<"ERROR">>) -> error;
severity(<<"FATAL">>) -> fatal;
severity(<<"PANIC">>) -> panic;
severity(<<"WARNING">>) -> warning;
severity(<<"NOTICE">>) -> notice;
severity(Other) -> Other.

codename(<<"23505">>) -> unique_violation;
codename(<<"23503">>) -> foreign_key_violation;
codename(<<"23502">>) -> not_null_violation;
codename(<<"23514">>) -> check_violation;
codename(<<"40P01">>) -> deadlock_detected;
codename(<<"40001">>) -> serialization_failure;
codename(<<"42P01">>) -> undefined_table;
codename(<<"42703">>) -> undefined_column;
codename(<<"42883">>) -> undefined_function;
codename(<<"42704">>) -> undefined_object;
codename(<<"42601">>) -> syntax_error;
codename(<<"42P07">>) -> duplicate_table;
codename(<<"42710">>) -> duplicate_object;
codename(<<"42P06">>) -> duplicate_schema;
codename(<<"42P04">>) -> duplicate_database;
codename(<<"3F000">>) -> invalid_schema_name;
codename(<<"3D000">>) -> invalid_catalog_name;
codename(<<"42501">>) -> insufficient_privilege;
codename(<<"22P02">>) -> invalid_text_representation;
codename(<<"25P02">>) -> in_failed_sql_transaction;
codename(<<"55006">>) -> object_in_use;
codename(<<"57014">>) -> query_canceled;
codename(<<"28P01">>) -> invalid_password;
codename(Code) -> Code.

hex(Bin) -> string:lowercase(binary:encode_hex(Bin)).

format_name(0) -> text;
format_name(1) -> binary.

%% ---------------------------------------------------------------------------------------------
%% Types

type_name(16) -> bool;
type_name(17) -> bytea;
type_name(18) -> char;
type_name(19) -> name;
type_name(20) -> int8;
type_name(21) -> int2;
type_name(23) -> int4;
type_name(25) -> text;
type_name(26) -> oid;
type_name(114) -> json;
type_name(700) -> float4;
type_name(701) -> float8;
type_name(1042) -> bpchar;
type_name(1043) -> varchar;
type_name(1082) -> date;
type_name(1083) -> time;
type_name(1114) -> timestamp;
type_name(1184) -> timestamptz;
type_name(1700) -> numeric;
type_name(2950) -> uuid;
type_name(3802) -> jsonb;
type_name(705) -> unknown;
type_name(Oid) ->
    case array_elem(Oid) of
        undefined -> {unknown_oid, Oid};
        Elem -> {array, type_name(Elem)}
    end.

array_elem(1000) -> 16;
array_elem(1005) -> 21;
array_elem(1007) -> 23;
array_elem(1016) -> 20;
array_elem(1009) -> 25;
array_elem(1015) -> 1043;
array_elem(1014) -> 1042;
array_elem(1022) -> 701;
array_elem(1021) -> 700;
array_elem(1115) -> 1114;
array_elem(1185) -> 1184;
array_elem(1182) -> 1082;
array_elem(1001) -> 17;
array_elem(1003) -> 19;
array_elem(_) -> undefined.

%% Results we decode from the binary format; others come as text (numeric parsed, rest binary).
result_format(1700) -> 0;
result_format(Oid) ->
    case is_binary_type(Oid) of
        true -> 1;
        false -> 0
    end.

is_binary_type(Oid) when Oid =:= 16; Oid =:= 17; Oid =:= 18; Oid =:= 19; Oid =:= 20; Oid =:= 21;
                         Oid =:= 23; Oid =:= 25; Oid =:= 26; Oid =:= 114; Oid =:= 700; Oid =:= 701;
                         Oid =:= 1042; Oid =:= 1043; Oid =:= 1082; Oid =:= 1083; Oid =:= 1114;
                         Oid =:= 1184; Oid =:= 3802 ->
    true;
is_binary_type(Oid) ->
    case array_elem(Oid) of
        undefined -> false;
        Elem -> is_binary_type(Elem)
    end.

%% Parameters: binary format for the types we encode, text format for the others.
encode_params(Oids, Params) ->
    Pairs = [ encode_param(Oid, P) || {Oid, P} <- lists:zip(Oids, Params) ],
    {ok, [ F || {F, _} <- Pairs ], [ V || {_, V} <- Pairs ]}.

encode_param(_Oid, P) when P =:= undefined; P =:= null; P =:= {term, undefined}; P =:= {term_json, undefined} ->
    {1, <<-1:32/signed>>};
encode_param(Oid, P) ->
    case is_binary_type(Oid) of
        true ->
            V = encode_binary(Oid, P),
            {1, [<<(iolist_size(V)):32>>, V]};
        false ->
            V = encode_text(P),
            {0, [<<(iolist_size(V)):32>>, V]}
    end.

encode_binary(16, true) -> <<1>>;
encode_binary(16, false) -> <<0>>;
encode_binary(17, {term, Term}) -> <<?TERM_MAGIC:32, (term_to_binary(Term, [compressed]))/binary>>;
encode_binary(17, {term_json, Term}) -> z_json:encode(Term);
encode_binary(17, <<?TERM_MAGIC:32, _/binary>> = B) -> encode_binary(17, {term, B});
encode_binary(17, B) -> iolist_to_binary(B);
encode_binary(20, I) when is_integer(I) -> <<I:64/signed>>;
encode_binary(21, I) when is_integer(I) -> <<I:16/signed>>;
encode_binary(23, I) when is_integer(I) -> <<I:32/signed>>;
encode_binary(26, I) when is_integer(I) -> <<I:32>>;
encode_binary(700, N) when is_number(N) -> <<(float(N)):32/float>>;
encode_binary(701, N) when is_number(N) -> <<(float(N)):64/float>>;
encode_binary(3802, {term_json, T}) -> <<1, (z_json:encode(T))/binary>>;
encode_binary(3802, {term, T}) -> <<1, (z_json:encode(T))/binary>>;
encode_binary(3802, T) -> <<1, (z_json:encode(T))/binary>>;
encode_binary(114, {term_json, T}) -> z_json:encode(T);
encode_binary(114, B) when is_binary(B) -> B;
encode_binary(114, T) -> z_json:encode(T);
encode_binary(1082, {Y, M, D}) ->
    <<(calendar:date_to_gregorian_days(Y, M, D) - ?PG_EPOCH_DAYS):32/signed>>;
encode_binary(1083, {H, I, S}) ->
    <<(round(((H * 60 + I) * 60 + S) * 1000000)):64/signed>>;
encode_binary(Oid, {{_, _, _}, {_, _, _}} = DT) when Oid =:= 1114; Oid =:= 1184 ->
    {Date, {H, I, S}} = DT,
    Secs = calendar:datetime_to_gregorian_seconds({Date, {H, I, trunc(S)}}) - ?PG_EPOCH_SECS,
    Micro = round((S - trunc(S)) * 1000000),
    <<(Secs * 1000000 + Micro):64/signed>>;
encode_binary(Oid, V) when Oid =:= 18; Oid =:= 19; Oid =:= 25; Oid =:= 1042; Oid =:= 1043 ->
    encode_text(V);
encode_binary(Oid, List) when is_list(List) ->
    case array_elem(Oid) of
        undefined -> error({badarg, Oid, List});
        Elem ->
            Items = [ case X of
                          undefined -> <<-1:32/signed>>;
                          null -> <<-1:32/signed>>;
                          _ -> V = encode_binary(Elem, X), [<<(iolist_size(V)):32>>, V]
                      end || X <- List ],
            HasNull = case lists:any(fun(X) -> X =:= undefined orelse X =:= null end, List) of
                true -> 1;
                false -> 0
            end,
            case List of
                [] -> <<0:32, 0:32, Elem:32>>;
                _ -> iolist_to_binary([<<1:32, HasNull:32, Elem:32, (length(List)):32, 1:32>> | Items])
            end
    end;
encode_binary(Oid, V) ->
    error({badarg, type_name(Oid), V}).

encode_text(B) when is_binary(B) -> B;
encode_text(A) when is_atom(A) -> atom_to_binary(A, utf8);
encode_text(I) when is_integer(I) -> integer_to_binary(I);
encode_text(F) when is_float(F) -> float_to_binary(F, [short]);
encode_text(L) when is_list(L) -> unicode:characters_to_binary(L);
encode_text(V) -> error({badarg, text, V}).

decode_row(Cols, Values) ->
    list_to_tuple([ decode_value(C, V) || {C, V} <- lists:zip(Cols, Values) ]).

decode_value(_, null) -> undefined;
decode_value(#column{ format = binary, oid = Oid }, V) -> decode_binary(Oid, V);
decode_value(#column{ oid = Oid }, V) -> decode_text_value(Oid, V).

%% @doc Decode a text-format value of the given type (numeric to a number, the rest as binary).
-spec decode_text_value(non_neg_integer(), binary()) -> term().
decode_text_value(1700, V) ->
    case binary:match(V, <<".">>) of
        nomatch -> try binary_to_integer(V) catch error:badarg -> V end;
        _ -> try binary_to_float(V) catch error:badarg -> V end
    end;
decode_text_value(_, V) ->
    V.

decode_binary(16, <<B>>) -> B =:= 1;
decode_binary(17, <<?TERM_MAGIC:32, T/binary>>) -> binary_to_term(T);
decode_binary(17, B) -> B;
decode_binary(20, <<I:64/signed>>) -> I;
decode_binary(21, <<I:16/signed>>) -> I;
decode_binary(23, <<I:32/signed>>) -> I;
decode_binary(26, <<I:32>>) -> I;
decode_binary(700, <<F:32/float>>) -> F;
decode_binary(701, <<F:64/float>>) -> F;
decode_binary(3802, <<1, J/binary>>) -> z_json:decode(J);
decode_binary(1082, <<D:32/signed>>) -> calendar:gregorian_days_to_date(D + ?PG_EPOCH_DAYS);
decode_binary(1083, <<U:64/signed>>) ->
    S = U div 1000000,
    {S div 3600, (S rem 3600) div 60, S rem 60};
decode_binary(Oid, <<U:64/signed>>) when Oid =:= 1114; Oid =:= 1184 ->
    if
        U =:= 16#7FFFFFFFFFFFFFFF -> infinity;
        U =:= -16#8000000000000000 -> '-infinity';
        true ->
            calendar:gregorian_seconds_to_datetime(floor_div(U, 1000000) + ?PG_EPOCH_SECS)
    end;
decode_binary(Oid, B) when Oid =:= 18; Oid =:= 19; Oid =:= 25; Oid =:= 114; Oid =:= 1042; Oid =:= 1043 ->
    B;
decode_binary(Oid, <<0:32, _:32, _:32>>) when is_integer(Oid) ->
    [];
decode_binary(Oid, <<1:32, _HasNull:32, Elem:32, N:32, _Lb:32, Rest/binary>>) ->
    case array_elem(Oid) of
        Elem -> decode_array(Elem, N, Rest, []);
        _ -> error({unknown_array, Oid})
    end.

decode_array(_Elem, 0, _, Acc) -> lists:reverse(Acc);
decode_array(Elem, N, <<-1:32/signed, Rest/binary>>, Acc) -> decode_array(Elem, N - 1, Rest, [undefined | Acc]);
decode_array(Elem, N, <<Len:32, V:Len/binary, Rest/binary>>, Acc) ->
    decode_array(Elem, N - 1, Rest, [decode_binary(Elem, V) | Acc]).

floor_div(A, B) when A >= 0 -> A div B;
floor_div(A, B) -> -((-A + B - 1) div B).
