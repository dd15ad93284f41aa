%% @doc zotonic_host: Zotonic's z_json API (encode/1, decode/1) for the test host. OTP 25 has no
%% json module, so this is a small RFC 8259 encoder/decoder: objects decode to maps with binary
%% keys, `null' to `undefined'; datetimes encode as ISO 8601 UTC strings, like Zotonic does.
%% @end

-module(z_json).

-export([encode/1, decode/1]).

%% @doc Encode an Erlang term to a JSON binary.
-spec encode(Term) -> binary() when Term :: term().
encode(Term) ->
    iolist_to_binary(enc(Term)).

%% @doc Decode JSON text; crashes (error:badarg) on invalid JSON, as Zotonic's jsx does.
-spec decode(JSON) -> term() when JSON :: iodata().
decode(JSON) ->
    Bin = iolist_to_binary(JSON),
    {Value, Rest} = dec(skip_ws(Bin)),
    case skip_ws(Rest) of
        <<>> -> Value;
        _ -> error(badarg)
    end.

%% ---------------------------------------------------------------------------------------------

enc(undefined) -> <<"null">>;
enc(null) -> <<"null">>;
enc(true) -> <<"true">>;
enc(false) -> <<"false">>;
enc(A) when is_atom(A) -> enc_string(atom_to_binary(A, utf8));
enc(B) when is_binary(B) -> enc_string(B);
enc(I) when is_integer(I) -> integer_to_binary(I);
enc(F) when is_float(F) -> float_to_binary(F, [short]);
enc({{Y, M, D}, {H, I, S}}) when is_integer(Y), is_integer(M), is_integer(D) ->
    enc_string(iolist_to_binary(io_lib:format("~4..0B-~2..0B-~2..0BT~2..0B:~2..0B:~2..0BZ",
                                              [Y, M, D, H, I, trunc(S)])));
enc({trans, Tr}) when is_list(Tr) ->
    enc(maps:from_list([ {atom_to_binary(L, utf8), T} || {L, T} <- Tr ]));
enc(M) when is_map(M) ->
    Pairs = [ [enc_string(key(K)), $:, enc(V)] || {K, V} <- lists:sort(maps:to_list(M)) ],
    [${, lists:join($,, Pairs), $}];
enc([{K, _} | _] = L) when is_atom(K); is_binary(K) ->
    enc(maps:from_list(L));
enc(L) when is_list(L) ->
    case io_lib:printable_unicode_list(L) andalso L =/= [] of
        true -> enc_string(unicode:characters_to_binary(L));
        false -> [$[, lists:join($,, [ enc(X) || X <- L ]), $]]
    end;
enc(T) when is_tuple(T) ->
    enc(tuple_to_list(T)).

key(K) when is_binary(K) -> K;
key(K) when is_atom(K) -> atom_to_binary(K, utf8);
key(K) when is_integer(K) -> integer_to_binary(K);
key(K) when is_list(K) -> unicode:characters_to_binary(K).

enc_string(B) ->
    [$", esc(B, <<>>), $"].

esc(<<>>, Acc) -> Acc;
esc(<<$", R/binary>>, Acc) -> esc(R, <<Acc/binary, "\\\"">>);
esc(<<$\\, R/binary>>, Acc) -> esc(R, <<Acc/binary, "\\\\">>);
esc(<<$\n, R/binary>>, Acc) -> esc(R, <<Acc/binary, "\\n">>);
esc(<<$\r, R/binary>>, Acc) -> esc(R, <<Acc/binary, "\\r">>);
esc(<<$\t, R/binary>>, Acc) -> esc(R, <<Acc/binary, "\\t">>);
esc(<<C, R/binary>>, Acc) when C < 16#20 ->
    esc(R, <<Acc/binary, (iolist_to_binary(io_lib:format("\\u~4.16.0b", [C])))/binary>>);
esc(<<C, R/binary>>, Acc) -> esc(R, <<Acc/binary, C>>).

%% ---------------------------------------------------------------------------------------------

skip_ws(<<C, R/binary>>) when C =:= $\s; C =:= $\t; C =:= $\n; C =:= $\r -> skip_ws(R);
skip_ws(B) -> B.

dec(<<"null", R/binary>>) -> {undefined, R};
dec(<<"true", R/binary>>) -> {true, R};
dec(<<"false", R/binary>>) -> {false, R};
dec(<<$", R/binary>>) -> dec_string(R, <<>>);
dec(<<${, R/binary>>) -> dec_object(skip_ws(R), #{});
dec(<<$[, R/binary>>) -> dec_array(skip_ws(R), []);
dec(<<C, _/binary>> = B) when C =:= $-; C >= $0, C =< $9 -> dec_number(B);
dec(_) -> error(badarg).

dec_object(<<$}, R/binary>>, Acc) -> {Acc, R};
dec_object(<<$", R/binary>>, Acc) ->
    {K, R1} = dec_string(R, <<>>),
    <<$:, R2/binary>> = skip_ws(R1),
    {V, R3} = dec(skip_ws(R2)),
    Acc1 = Acc#{ K => V },
    case skip_ws(R3) of
        <<$,, R4/binary>> -> dec_object(skip_ws(R4), Acc1);
        <<$}, R4/binary>> -> {Acc1, R4};
        _ -> error(badarg)
    end;
dec_object(_, _) -> error(badarg).

dec_array(<<$], R/binary>>, Acc) -> {lists:reverse(Acc), R};
dec_array(B, Acc) ->
    {V, R} = dec(B),
    case skip_ws(R) of
        <<$,, R1/binary>> -> dec_array(skip_ws(R1), [V | Acc]);
        <<$], R1/binary>> -> {lists:reverse([V | Acc]), R1};
        _ -> error(badarg)
    end.

dec_string(<<$", R/binary>>, Acc) -> {Acc, R};
dec_string(<<$\\, $u, H:4/binary, R/binary>>, Acc) ->
    C = binary_to_integer(H, 16),
    case {C >= 16#D800 andalso C =< 16#DBFF, R} of
        {true, <<$\\, $u, L:4/binary, R1/binary>>} ->
            Lo = binary_to_integer(L, 16),
            Cp = 16#10000 + ((C - 16#D800) bsl 10) + (Lo - 16#DC00),
            dec_string(R1, <<Acc/binary, Cp/utf8>>);
        _ ->
            dec_string(R, <<Acc/binary, C/utf8>>)
    end;
dec_string(<<$\\, E, R/binary>>, Acc) ->
    C = case E of
        $n -> $\n; $t -> $\t; $r -> $\r; $b -> $\b; $f -> $\f;
        $/ -> $/; $\\ -> $\\; $" -> $"; _ -> error(badarg)
    end,
    dec_string(R, <<Acc/binary, C>>);
dec_string(<<C, R/binary>>, Acc) -> dec_string(R, <<Acc/binary, C>>);
dec_string(<<>>, _) -> error(badarg).

dec_number(B) ->
    {Num, R} = take_number(B, <<>>),
    V = case binary:match(Num, [<<".">>, <<"e">>, <<"E">>]) of
        nomatch -> binary_to_integer(Num);
        _ -> to_float(Num)
    end,
    {V, R}.

take_number(<<C, R/binary>>, Acc) when C >= $0, C =< $9; C =:= $-; C =:= $+; C =:= $.; C =:= $e; C =:= $E ->
    take_number(R, <<Acc/binary, C>>);
take_number(R, Acc) -> {Acc, R}.

to_float(Num) ->
    Fixed = case binary:match(Num, <<".">>) of
        nomatch ->
            [M, E] = re:split(Num, <<"[eE]">>),
            <<M/binary, ".0e", E/binary>>;
        _ -> Num
    end,
    binary_to_float(Fixed).
