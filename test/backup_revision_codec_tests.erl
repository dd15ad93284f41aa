%% @doc EUnit tests of backup_revision_codec through the real NIF: every revision of an edit
%% history comes back `=:='; damaged, foreign or reordered rows are error tuples, never a crash
%% and never a wrong revision.

-module(backup_revision_codec_tests).

-include_lib("eunit/include/eunit.hrl").

-define(ST_JUTTEMIS, {{9999, 8, 17}, {12, 0, 0}}).

%% ---------------------------------------------------------------------------------------------
%% Fixtures

%% N paragraphs of varied words, the same for the same N.
body(N) ->
    Words = {<<"the">>, <<"archive">>, <<"museum">>, <<"collection">>, <<"of">>, <<"paintings">>,
             <<"from">>, <<"seventeenth">>, <<"century">>, <<"is">>, <<"open">>, <<"daily">>,
             <<"visitors">>, <<"can">>, <<"see">>, <<"rare">>, <<"works">>, <<"and">>, <<"maps">>,
             <<"Amsterdam">>, <<"harbour">>, <<"ships">>, <<"trade">>, <<"history">>},
    {Paras, _} = lists:mapfoldl(
        fun(I, S0) ->
            {Ws, S1} = lists:mapfoldl(
                fun(_, S) ->
                    {R, S2} = rand:uniform_s(tuple_size(Words), S),
                    {[element(R, Words), $\s], S2}
                end,
                S0,
                lists:seq(1, 12 + I rem 9)
            ),
            {[<<"<p>">>, Ws, io_lib:format("<a href=\"/page/~b\">link</a>.</p>\n", [I])], S1}
        end,
        rand:seed_s(exsss, {N, 7, 11}),
        lists:seq(1, N)
    ),
    iolist_to_binary(Paras).

props() ->
    #{
        <<"title">> => {trans, [{en, <<"A page">>}, {nl, <<"Een pagina">>}]},
        <<"body">> => {trans, [{en, body(60)}, {nl, body(55)}, {de, body(50)}]},
        <<"summary">> => {trans, [{en, <<"Short summary">>}]},
        <<"is_published">> => true,
        <<"is_featured">> => false,
        <<"visible_for">> => 0,
        <<"version">> => 12,
        <<"creator_id">> => 1,
        <<"publication_start">> => {{2024, 2, 29}, {12, 0, 0}},
        <<"publication_end">> => undefined,
        <<"date_start">> => ?ST_JUTTEMIS,
        <<"location_lat">> => 52.3731,
        <<"location_lng">> => -4.8922,
        <<"big">> => 1 bsl 70,
        <<"negative">> => -123456789012,
        <<"tz">> => <<"Europe/Amsterdam">>,
        <<"blocks">> => [
            #{<<"name">> => <<"b1">>, <<"type">> => <<"text">>, <<"body">> => {trans, [{en, body(5)}]}},
            #{<<"name">> => <<"b2">>, <<"type">> => <<"header">>, <<"header">> => <<"Head">>}
        ],
        <<"seo_keywords">> => [<<"one">>, <<"two">>],
        <<"charlist">> => "a string",
        <<"tuple">> => {a, b, 1.0, <<>>, [], #{}},
        <<"bits">> => <<1:3>>,
        <<"pid">> => self(),
        <<"ref">> => make_ref(),
        <<"fun">> => fun lists:reverse/1,
        <<"unicode">> => <<"Zoë & Øresund — ☃"/utf8>>,
        <<"atom_unicode">> => 'zoë'
    }.

%% A history: each save edits one to three props a little; every tenth rewrites the body.
history(N) ->
    rand:seed(exsss, {1, 2, 3}),
    lists:foldl(
        fun(I, [Prev | _] = Acc) -> [edit(I, Prev) | Acc] end,
        [props()],
        lists:seq(1, N - 1)
    ).

edit(I, P) when I rem 10 =:= 0 ->
    P#{<<"body">> => {trans, [{en, body(30 + I rem 7)}, {nl, body(20)}]}, <<"version">> => I};
edit(I, P) when I rem 7 =:= 0 ->
    maps:remove(<<"summary">>, P#{<<"new_", (integer_to_binary(I))/binary>> => I});
edit(I, P) ->
    {trans, Langs} = maps:get(<<"body">>, P),
    Langs1 = [{L, small_edit(I, T)} || {L, T} <- Langs],
    P#{<<"body">> => {trans, Langs1}, <<"version">> => I, <<"modified">> => {{2024, 3, I rem 28 + 1}, {10, I rem 60, 0}}}.

small_edit(I, T) ->
    At = (I * 7919) rem max(1, byte_size(T) - 10),
    <<Pre:At/binary, Post/binary>> = T,
    <<Pre/binary, "edit ", (integer_to_binary(I))/binary, " ", Post/binary>>.

%% Rows of a history in save order: a keyframe every KeyEvery saves, deltas between.
rows(History, KeyEvery) ->
    {Rows, _} = lists:mapfoldl(
        fun({I, P}, Prev) ->
            {ok, Row} =
                case I rem KeyEvery of
                    0 -> backup_revision_codec:encode_keyframe(P);
                    _ -> backup_revision_codec:encode_delta(Prev, P)
                end,
            {Row, P}
        end,
        undefined,
        lists:zip(lists:seq(0, length(History) - 1), History)
    ),
    Rows.

prefixes(L) -> [lists:sublist(L, N) || N <- lists:seq(1, length(L))].

%% ---------------------------------------------------------------------------------------------
%% Round trips

keyframe_round_trip_keeps_every_term_type_test() ->
    P = props(),
    {ok, {<<"zkey1">>, Blob}} = backup_revision_codec:encode_keyframe(P),
    ?assert(is_binary(Blob)),
    ?assertEqual({ok, P}, backup_revision_codec:decode([{<<"zkey1">>, Blob}])),
    {ok, P2} = backup_revision_codec:decode([{<<"zkey1">>, Blob}]),
    ?assert(P =:= P2).

proplist_props_round_trip_test() ->
    P = [{title, <<"x">>}, {body, {trans, [{en, body(3)}]}}, {id, 1}, is_a],
    {ok, K} = backup_revision_codec:encode_keyframe(P),
    {ok, D} = backup_revision_codec:encode_delta(P, [{title, <<"y">>} | tl(P)]),
    ?assertEqual({ok, [{title, <<"y">>} | tl(P)]}, backup_revision_codec:decode([K, D])).

every_revision_of_a_200_save_history_decodes_exactly_test_() ->
    {timeout, 60, fun() ->
        History = lists:reverse(history(200)),
        Rows = rows(History, 50),
        lists:foreach(
            fun({Want, Chain}) ->
                {ok, Got} = backup_revision_codec:decode(Chain),
                ?assert(Got =:= Want)
            end,
            lists:zip(History, prefixes(Rows))
        )
    end}.

deltas_after_a_stock_erlang_row_decode_test() ->
    [P0, P1, P2] = lists:reverse(history(3)),
    Stock = {<<"erlang">>, term_to_binary(P0, [compressed])},
    {ok, D1} = backup_revision_codec:encode_delta(P0, P1),
    {ok, D2} = backup_revision_codec:encode_delta(P1, P2),
    ?assertEqual({ok, P0}, backup_revision_codec:decode([Stock])),
    ?assertEqual({ok, P2}, backup_revision_codec:decode([Stock, D1, D2])),
    {ok, D2b} = backup_revision_codec:encode_delta_after([Stock, D1], P2),
    ?assertEqual({ok, P2}, backup_revision_codec:decode([Stock, D1, D2b])).

rows_before_the_last_full_row_are_ignored_test() ->
    [P0, P1, P2] = lists:reverse(history(3)),
    {ok, K0} = backup_revision_codec:encode_keyframe(P0),
    {ok, D1} = backup_revision_codec:encode_delta(P0, P1),
    {ok, K2} = backup_revision_codec:encode_keyframe(P2),
    ?assertEqual({ok, P2}, backup_revision_codec:decode([K0, D1, K2])).

delta_after_a_chain_equals_a_delta_from_its_props_test() ->
    [P0, P1, P2] = lists:reverse(history(3)),
    {ok, K0} = backup_revision_codec:encode_keyframe(P0),
    {ok, D1} = backup_revision_codec:encode_delta(P0, P1),
    {ok, {<<"zdelta1">>, _} = D2} = backup_revision_codec:encode_delta_after([K0, D1], P2),
    ?assertEqual({ok, P2}, backup_revision_codec:decode([K0, D1, D2])).

rekey_makes_a_keyframe_of_the_chain_end_test() ->
    [P0, P1] = lists:reverse(history(2)),
    {ok, K0} = backup_revision_codec:encode_keyframe(P0),
    {ok, D1} = backup_revision_codec:encode_delta(P0, P1),
    {ok, {<<"zkey1">>, _} = K1} = backup_revision_codec:rekey([K0, D1]),
    ?assertEqual({ok, P1}, backup_revision_codec:decode([K1])),
    Stock = {<<"erlang">>, term_to_binary(P0, [compressed])},
    {ok, {<<"zkey1">>, _} = K1b} = backup_revision_codec:rekey([Stock, D1]),
    ?assertEqual({ok, P1}, backup_revision_codec:decode([K1b])).

a_small_edit_is_a_small_delta_test() ->
    [P0, P1] = lists:reverse(history(2)),
    {ok, {<<"zdelta1">>, Delta}} = backup_revision_codec:encode_delta(P0, P1),
    Stock = byte_size(term_to_binary(P1, [compressed])),
    ?assert(byte_size(Delta) * 20 < Stock).

too_deep_props_fall_back_to_a_stock_row_test() ->
    Deep = lists:foldl(fun(_, Acc) -> {Acc} end, x, lists:seq(1, 100)),
    P = #{<<"deep">> => Deep},
    ?assertMatch({ok, {<<"erlang">>, _}}, backup_revision_codec:encode_keyframe(P)),
    ?assertMatch({ok, {<<"erlang">>, _}}, backup_revision_codec:encode_delta(#{}, P)),
    {ok, Row} = backup_revision_codec:encode_keyframe(P),
    ?assertEqual({ok, P}, backup_revision_codec:decode([Row])).

%% ---------------------------------------------------------------------------------------------
%% Hostile and damaged rows

every_flipped_byte_of_a_delta_is_an_error_or_the_same_revision_test() ->
    [P0, P1] = lists:reverse(history(2)),
    {ok, K} = backup_revision_codec:encode_keyframe(P0),
    {ok, {T, D}} = backup_revision_codec:encode_delta(P0, P1),
    lists:foreach(
        fun(I) ->
            <<Pre:I/binary, B, Post/binary>> = D,
            Bad = <<Pre/binary, (B bxor 16#41), Post/binary>>,
            case backup_revision_codec:decode([K, {T, Bad}]) of
                {ok, Got} -> ?assert(Got =:= P1);
                {error, {bad_revision, #{message := M}}} -> ?assert(is_binary(M))
            end
        end,
        lists:seq(0, byte_size(D) - 1)
    ).

truncated_and_random_rows_are_bad_revision_errors_test() ->
    [P0, P1] = lists:reverse(history(2)),
    {ok, {KT, K}} = backup_revision_codec:encode_keyframe(P0),
    {ok, {DT, D}} = backup_revision_codec:encode_delta(P0, P1),
    rand:seed(exsss, {4, 5, 6}),
    Cases =
        [{KT, binary:part(K, 0, N)} || N <- [0, 1, 4, 5, 20, byte_size(K) - 1]] ++
        [[{KT, K}, {DT, binary:part(D, 0, N)}] || N <- [0, 3, 5, byte_size(D) - 1]] ++
        [[{KT, K}, {DT, <<"ZR", 1, $D, 0, (rand:bytes(N))/binary>>}] || N <- lists:seq(0, 200)] ++
        [{KT, <<"ZR", 1, $K, 1, (rand:bytes(N))/binary>>} || N <- lists:seq(0, 200)] ++
        [{<<"erlang">>, rand:bytes(20)}, {<<"erlang">>, <<>>}],
    lists:foreach(
        fun
            (Chain) when is_list(Chain) ->
                ?assertMatch({error, {bad_revision, #{message := _}}}, backup_revision_codec:decode(Chain));
            (Row) ->
                ?assertMatch({error, {bad_revision, #{message := _}}}, backup_revision_codec:decode([Row]))
        end,
        Cases
    ).

unknown_format_version_is_refused_test() ->
    {ok, {T, <<"ZR", 1, Rest/binary>>}} = backup_revision_codec:encode_keyframe(#{a => 1}),
    {error, {bad_revision, #{message := M}}} = backup_revision_codec:decode([{T, <<"ZR", 2, Rest/binary>>}]),
    ?assertNotEqual(nomatch, binary:match(M, <<"version 2">>)).

delta_on_the_wrong_base_or_out_of_order_is_refused_test() ->
    [P0, P1, P2] = lists:reverse(history(3)),
    {ok, K0} = backup_revision_codec:encode_keyframe(P0),
    {ok, D1} = backup_revision_codec:encode_delta(P0, P1),
    {ok, D2} = backup_revision_codec:encode_delta(P1, P2),
    ?assertMatch({error, {bad_revision, _}}, backup_revision_codec:decode([K0, D2])),
    ?assertMatch({error, {bad_revision, _}}, backup_revision_codec:decode([K0, D2, D1])),
    ?assertMatch({error, {bad_revision, _}}, backup_revision_codec:decode([D1, D2])),
    ?assertMatch({error, {bad_revision, _}}, backup_revision_codec:decode([])),
    ?assertMatch({error, {bad_revision, _}}, backup_revision_codec:decode([{<<"json">>, <<"{}">>}])),
    ?assertMatch({error, {bad_revision, _}}, backup_revision_codec:decode(not_a_list)),
    %% A keyframe given where a delta belongs, and the other way round.
    {_, KB} = K0,
    {_, DB} = D1,
    ?assertMatch({error, {bad_revision, _}}, backup_revision_codec:decode([K0, {<<"zdelta1">>, KB}])),
    ?assertMatch({error, {bad_revision, _}}, backup_revision_codec:decode([{<<"zkey1">>, DB}])).

undecodable_nif_arguments_are_badarg_test() ->
    ?assertError(badarg, backup_nif:revision_keyframe(not_a_binary)),
    ?assertError(badarg, backup_nif:revision_reconstruct([<<>> | not_a_list])),
    ?assertError(badarg, backup_nif:revision_reconstruct([1, 2])),
    ?assertError(badarg, backup_nif:revision_diff(<<>>, 1)),
    ?assertMatch({error, {einval, _}}, backup_nif:revision_keyframe(<<"not etf">>)),
    ?assertMatch({error, {bad_revision, _}}, backup_nif:revision_apply(<<"not etf">>, [])).

%% ---------------------------------------------------------------------------------------------
%% Diff

diff_lists_changed_properties_with_word_changes_per_language_test() ->
    A = #{
        <<"title">> => {trans, [{en, <<"The quick brown fox">>}, {nl, <<"De snelle vos">>}]},
        <<"version">> => 1,
        <<"gone">> => true,
        <<"same">> => <<"unchanged">>
    },
    B = #{
        <<"title">> => {trans, [{en, <<"The slow brown fox">>}, {nl, <<"De snelle vos">>}]},
        <<"version">> => 2,
        <<"added">> => {{2024, 1, 2}, {3, 4, 5}},
        <<"same">> => <<"unchanged">>
    },
    {ok, Changes} = backup_revision_codec:diff(A, B),
    ?assertEqual(
        [{<<"added">>, undefined, added}, {<<"gone">>, undefined, removed},
         {<<"title">>, en, changed}, {<<"version">>, undefined, changed}],
        [{K, L, C} || #{key := K, lang := L, change := C} <- Changes]
    ),
    [Added, Gone, Title, Version] = Changes,
    ?assertMatch(#{old := undefined, new := <<"{{2024,1,2},{3,4,5}}">>, ops := []}, Added),
    ?assertMatch(#{old := <<"true">>, new := undefined}, Gone),
    ?assertEqual(
        [{eq, <<"The ">>}, {del, <<"quick">>}, {ins, <<"slow">>}, {eq, <<" brown fox">>}],
        maps:get(ops, Title)
    ),
    ?assertMatch(#{old := <<"1">>, new := <<"2">>}, Version).

diff_of_equal_props_is_empty_test() ->
    P = props(),
    ?assertEqual({ok, []}, backup_revision_codec:diff(P, P)).
