%% @doc zotonic_host: Zotonic's z_convert conversions (from the zotonic_stdlib library).
%% @end

-module(z_convert).

-export([
    to_binary/1,
    to_atom/1,
    to_integer/1,
    to_bool/1,
    to_datetime/1
]).

-spec to_binary(term()) -> binary().
to_binary(undefined) -> <<>>;
to_binary(B) when is_binary(B) -> B;
to_binary(A) when is_atom(A) -> atom_to_binary(A, utf8);
to_binary(I) when is_integer(I) -> integer_to_binary(I);
to_binary(F) when is_float(F) -> float_to_binary(F, [short]);
to_binary({trans, [{_, T} | _]}) -> to_binary(T);
to_binary(L) when is_list(L) -> unicode:characters_to_binary(L).

-spec to_atom(term()) -> atom() | undefined.
to_atom(undefined) -> undefined;
to_atom(<<>>) -> undefined;
to_atom(A) when is_atom(A) -> A;
to_atom(B) when is_binary(B) -> binary_to_atom(B, utf8);
to_atom(L) when is_list(L) -> list_to_atom(L);
to_atom(I) when is_integer(I) -> list_to_atom(integer_to_list(I)).

-spec to_integer(term()) -> integer() | undefined.
to_integer(undefined) -> undefined;
to_integer(<<>>) -> undefined;
to_integer([]) -> undefined;
to_integer(I) when is_integer(I) -> I;
to_integer(F) when is_float(F) -> round(F);
to_integer(true) -> 1;
to_integer(false) -> 0;
to_integer(B) when is_binary(B) -> binary_to_integer(string:trim(B));
to_integer(L) when is_list(L) -> list_to_integer(string:trim(L)).

%% @doc Zotonic's truthiness: true, "true", "yes", "on", "1", 1 ... are true.
-spec to_bool(term()) -> boolean().
to_bool(undefined) -> false;
to_bool(false) -> false;
to_bool(true) -> true;
to_bool(0) -> false;
to_bool(I) when is_integer(I) -> true;
to_bool(F) when is_float(F) -> F =/= 0.0;
to_bool(<<>>) -> false;
to_bool([]) -> false;
to_bool(B) when is_binary(B) ->
    not lists:member(string:lowercase(B), [<<"false">>, <<"0">>, <<"no">>, <<"off">>, <<"n">>, <<"f">>, <<"undefined">>, <<"null">>]);
to_bool(L) when is_list(L) -> to_bool(unicode:characters_to_binary(L));
to_bool(A) when is_atom(A) -> to_bool(atom_to_binary(A, utf8));
to_bool(_) -> true.

-spec to_datetime(term()) -> calendar:datetime() | undefined.
to_datetime({{_, _, _}, {_, _, _}} = DT) -> DT;
to_datetime(undefined) -> undefined;
to_datetime(<<Y:4/binary, $-, M:2/binary, $-, D:2/binary, _, H:2/binary, $:, I:2/binary, $:, S:2/binary, _/binary>>) ->
    {{binary_to_integer(Y), binary_to_integer(M), binary_to_integer(D)},
     {binary_to_integer(H), binary_to_integer(I), binary_to_integer(S)}};
to_datetime(<<Y:4/binary, $-, M:2/binary, $-, D:2/binary>>) ->
    {{binary_to_integer(Y), binary_to_integer(M), binary_to_integer(D)}, {0, 0, 0}}.
