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
                    0 -> backup_revision_codec:encode_keyframe(P, c());
                    _ -> backup_revision_codec:encode_delta(Prev, P, c())
                end,
            {Row, P}
        end,
        undefined,
        lists:zip(lists:seq(0, length(History) - 1), History)
    ),
    Rows.

prefixes(L) -> [lists:sublist(L, N) || N <- lists:seq(1, length(L))].

%% A codec without dictionaries.
c() -> backup_revision_codec:plain().

%% ---------------------------------------------------------------------------------------------
%% Round trips

keyframe_round_trip_keeps_every_term_type_test() ->
    P = props(),
    {ok, {<<"zkey2">>, Blob}} = backup_revision_codec:encode_keyframe(P, c()),
    ?assert(is_binary(Blob)),
    ?assertEqual({ok, P}, backup_revision_codec:decode([{<<"zkey2">>, Blob}], c())),
    {ok, P2} = backup_revision_codec:decode([{<<"zkey2">>, Blob}], c()),
    ?assert(P =:= P2).

proplist_props_round_trip_test() ->
    P = [{title, <<"x">>}, {body, {trans, [{en, body(3)}]}}, {id, 1}, is_a],
    {ok, K} = backup_revision_codec:encode_keyframe(P, c()),
    {ok, D} = backup_revision_codec:encode_delta(P, [{title, <<"y">>} | tl(P)], c()),
    ?assertEqual({ok, [{title, <<"y">>} | tl(P)]}, backup_revision_codec:decode([K, D], c())).

every_revision_of_a_200_save_history_decodes_exactly_test_() ->
    {timeout, 60, fun() ->
        History = lists:reverse(history(200)),
        Rows = rows(History, 50),
        lists:foreach(
            fun({Want, Chain}) ->
                {ok, Got} = backup_revision_codec:decode(Chain, c()),
                ?assert(Got =:= Want)
            end,
            lists:zip(History, prefixes(Rows))
        )
    end}.

deltas_after_a_stock_erlang_row_decode_test() ->
    [P0, P1, P2] = lists:reverse(history(3)),
    Stock = {<<"erlang">>, term_to_binary(P0, [compressed])},
    {ok, D1} = backup_revision_codec:encode_delta(P0, P1, c()),
    {ok, D2} = backup_revision_codec:encode_delta(P1, P2, c()),
    ?assertEqual({ok, P0}, backup_revision_codec:decode([Stock], c())),
    ?assertEqual({ok, P2}, backup_revision_codec:decode([Stock, D1, D2], c())),
    {ok, D2b} = backup_revision_codec:encode_delta_after([Stock, D1], P2, c()),
    ?assertEqual({ok, P2}, backup_revision_codec:decode([Stock, D1, D2b], c())).

rows_before_the_last_full_row_are_ignored_test() ->
    [P0, P1, P2] = lists:reverse(history(3)),
    {ok, K0} = backup_revision_codec:encode_keyframe(P0, c()),
    {ok, D1} = backup_revision_codec:encode_delta(P0, P1, c()),
    {ok, K2} = backup_revision_codec:encode_keyframe(P2, c()),
    ?assertEqual({ok, P2}, backup_revision_codec:decode([K0, D1, K2], c())).

delta_after_a_chain_equals_a_delta_from_its_props_test() ->
    [P0, P1, P2] = lists:reverse(history(3)),
    {ok, K0} = backup_revision_codec:encode_keyframe(P0, c()),
    {ok, D1} = backup_revision_codec:encode_delta(P0, P1, c()),
    {ok, {<<"zdelta2">>, _} = D2} = backup_revision_codec:encode_delta_after([K0, D1], P2, c()),
    ?assertEqual({ok, P2}, backup_revision_codec:decode([K0, D1, D2], c())).

rekey_makes_a_keyframe_of_the_chain_end_test() ->
    [P0, P1] = lists:reverse(history(2)),
    {ok, K0} = backup_revision_codec:encode_keyframe(P0, c()),
    {ok, D1} = backup_revision_codec:encode_delta(P0, P1, c()),
    {ok, {<<"zkey2">>, _} = K1} = backup_revision_codec:rekey([K0, D1], c()),
    ?assertEqual({ok, P1}, backup_revision_codec:decode([K1], c())),
    Stock = {<<"erlang">>, term_to_binary(P0, [compressed])},
    {ok, {<<"zkey2">>, _} = K1b} = backup_revision_codec:rekey([Stock, D1], c()),
    ?assertEqual({ok, P1}, backup_revision_codec:decode([K1b], c())).

a_small_edit_is_a_small_delta_test() ->
    [P0, P1] = lists:reverse(history(2)),
    {ok, {<<"zdelta2">>, Delta}} = backup_revision_codec:encode_delta(P0, P1, c()),
    Stock = byte_size(term_to_binary(P1, [compressed])),
    ?assert(byte_size(Delta) * 20 < Stock).

too_deep_props_fall_back_to_a_stock_row_test() ->
    Deep = lists:foldl(fun(_, Acc) -> {Acc} end, x, lists:seq(1, 100)),
    P = #{<<"deep">> => Deep},
    ?assertMatch({ok, {<<"erlang">>, _}}, backup_revision_codec:encode_keyframe(P, c())),
    ?assertMatch({ok, {<<"erlang">>, _}}, backup_revision_codec:encode_delta(#{}, P, c())),
    {ok, Row} = backup_revision_codec:encode_keyframe(P, c()),
    ?assertEqual({ok, P}, backup_revision_codec:decode([Row], c())).

%% ---------------------------------------------------------------------------------------------
%% Hostile and damaged rows

every_flipped_byte_of_a_delta_is_an_error_or_the_same_revision_test() ->
    [P0, P1] = lists:reverse(history(2)),
    {ok, K} = backup_revision_codec:encode_keyframe(P0, c()),
    {ok, {T, D}} = backup_revision_codec:encode_delta(P0, P1, c()),
    lists:foreach(
        fun(I) ->
            <<Pre:I/binary, B, Post/binary>> = D,
            Bad = <<Pre/binary, (B bxor 16#41), Post/binary>>,
            case backup_revision_codec:decode([K, {T, Bad}], c()) of
                {ok, Got} -> ?assert(Got =:= P1);
                {error, {bad_revision, #{message := M}}} -> ?assert(is_binary(M))
            end
        end,
        lists:seq(0, byte_size(D) - 1)
    ).

truncated_and_random_rows_are_bad_revision_errors_test() ->
    [P0, P1] = lists:reverse(history(2)),
    {ok, {KT, K}} = backup_revision_codec:encode_keyframe(P0, c()),
    {ok, {DT, D}} = backup_revision_codec:encode_delta(P0, P1, c()),
    rand:seed(exsss, {4, 5, 6}),
    Cases =
        [{KT, binary:part(K, 0, N)} || N <- [0, 1, 4, 5, 20, byte_size(K) - 1]] ++
        [[{KT, K}, {DT, binary:part(D, 0, N)}] || N <- [0, 3, 5, byte_size(D) - 1]] ++
        [[{KT, K}, {DT, <<"ZR", 1, $D, 0, (rand:bytes(N))/binary>>}] || N <- lists:seq(0, 200)] ++
        [{KT, <<"ZR", 1, $K, 1, (rand:bytes(N))/binary>>} || N <- lists:seq(0, 200)] ++
        [[{KT, K}, {DT, <<"z", 16#81, (rand:bytes(N))/binary>>}] || N <- lists:seq(0, 200)] ++
        [{KT, <<"z", 16#01, (rand:bytes(N))/binary>>} || N <- lists:seq(0, 200)] ++
        [{<<"erlang">>, rand:bytes(20)}, {<<"erlang">>, <<>>}],
    lists:foreach(
        fun
            (Chain) when is_list(Chain) ->
                ?assertMatch({error, {bad_revision, #{message := _}}}, backup_revision_codec:decode(Chain, c()));
            (Row) ->
                ?assertMatch({error, {bad_revision, #{message := _}}}, backup_revision_codec:decode([Row], c()))
        end,
        Cases
    ).

unknown_format_version_is_refused_test() ->
    {ok, {T, <<"z", _Flags, Rest/binary>>}} = backup_revision_codec:encode_keyframe(#{a => 1}, c()),
    {error, {bad_revision, #{message := M}}} = backup_revision_codec:decode([{T, <<"ZR", 3, $K, 0, Rest/binary>>}], c()),
    ?assertNotEqual(nomatch, binary:match(M, <<"version 3">>)),
    {error, {bad_revision, #{message := M2}}} = backup_revision_codec:decode([{T, <<"z", 16#40, Rest/binary>>}], c()),
    ?assertNotEqual(nomatch, binary:match(M2, <<"flags">>)).

delta_on_the_wrong_base_or_out_of_order_is_refused_test() ->
    [P0, P1, P2] = lists:reverse(history(3)),
    {ok, K0} = backup_revision_codec:encode_keyframe(P0, c()),
    {ok, D1} = backup_revision_codec:encode_delta(P0, P1, c()),
    {ok, D2} = backup_revision_codec:encode_delta(P1, P2, c()),
    ?assertMatch({error, {bad_revision, _}}, backup_revision_codec:decode([K0, D2], c())),
    ?assertMatch({error, {bad_revision, _}}, backup_revision_codec:decode([K0, D2, D1], c())),
    ?assertMatch({error, {bad_revision, _}}, backup_revision_codec:decode([D1, D2], c())),
    ?assertMatch({error, {bad_revision, _}}, backup_revision_codec:decode([], c())),
    ?assertMatch({error, {bad_revision, _}}, backup_revision_codec:decode([{<<"json">>, <<"{}">>}], c())),
    ?assertMatch({error, {bad_revision, _}}, backup_revision_codec:decode(not_a_list, c())),
    %% A keyframe given where a delta belongs, and the other way round.
    {_, KB} = K0,
    {_, DB} = D1,
    ?assertMatch({error, {bad_revision, _}}, backup_revision_codec:decode([K0, {<<"zdelta2">>, KB}], c())),
    ?assertMatch({error, {bad_revision, _}}, backup_revision_codec:decode([{<<"zkey2">>, DB}], c())).

undecodable_nif_arguments_are_badarg_test() ->
    D = backup_nif:revision_dicts_new(),
    ?assertError(badarg, backup_nif:revision_keyframe(D, 0, not_a_binary)),
    ?assertError(badarg, backup_nif:revision_keyframe(not_dicts, 0, <<>>)),
    ?assertError(badarg, backup_nif:revision_keyframe(D, -1, <<>>)),
    ?assertError(badarg, backup_nif:revision_reconstruct(D, [<<>> | not_a_list])),
    ?assertError(badarg, backup_nif:revision_reconstruct(D, [1, 2])),
    ?assertError(badarg, backup_nif:revision_diff(<<>>, 1)),
    ?assertMatch({error, {einval, _}}, backup_nif:revision_keyframe(D, 0, <<"not etf">>)),
    ?assertMatch({error, {bad_revision, _}}, backup_nif:revision_apply(D, <<"not etf">>, [])),
    ?assertMatch({error, {missing_dictionary, #{dictionary := 3}}},
                 backup_nif:revision_keyframe(D, 3, term_to_binary(#{}))),
    ?assertMatch({error, {bad_dictionary, #{dictionary := 3}}},
                 backup_nif:revision_dict_put(D, 3, <<"not a dictionary">>, false)).

%% ---------------------------------------------------------------------------------------------
%% Formats and dictionaries

format_1_rows_written_before_stay_readable_test() ->
    Src = proplists:get_value(source, ?MODULE:module_info(compile)),
    File = filename:join([filename:dirname(filename:dirname(Src)), "native", "backup_core", "tests",
                          "fixtures", "revision_v1.etf"]),
    {ok, Bin} = file:read_file(File),
    lists:foreach(
        fun({History, Rows}) ->
            ?assertMatch([{<<"zkey1">>, _} | _], Rows),
            lists:foreach(
                fun({Want, Chain}) -> ?assertEqual({ok, Want}, backup_revision_codec:decode(Chain, c())) end,
                lists:zip(History, prefixes(Rows)))
        end,
        binary_to_term(Bin)).

%% A dictionary trained on the rows of History (through the NIF's training job).
train(Dicts, History) ->
    Ref = make_ref(),
    {ok, _Job} = backup_nif:revision_train(Ref, Dicts, 0, [ [ term_to_binary(P) || P <- History ] ], [], 8192),
    receive
        {backup_job_done, Ref, {ok, #{ dict := Dict }}} -> Dict
    after 60000 ->
        error(training_timeout)
    end.

rows_with_a_site_dictionary_need_it_and_an_error_names_it_when_it_is_missing_test_() ->
    {timeout, 60, fun() ->
        History = lists:reverse(history(30)),
        [P0, P1 | _] = History,
        Dicts = backup_nif:revision_dicts_new(),
        Dict = train(Dicts, History),
        ok = backup_nif:revision_dict_put(Dicts, 1, Dict, true),
        NoLoad = fun(Id) -> {error, {missing_dictionary, #{ dictionary => Id, message => <<"gone">> }}} end,
        C1 = backup_revision_codec:codec(Dicts, 1, NoLoad),
        {ok, {<<"zkey2">>, KB} = K} = backup_revision_codec:encode_keyframe(P0, C1),
        {ok, {<<"zkey2">>, PlainKB}} = backup_revision_codec:encode_keyframe(P0, c()),
        ?assert(byte_size(KB) < byte_size(PlainKB)),
        {ok, D} = backup_revision_codec:encode_delta(P0, P1, C1),
        ?assertEqual({ok, P1}, backup_revision_codec:decode([K, D], C1)),
        % Another site's set, without the dictionary: the error names it.
        Fresh = backup_nif:revision_dicts_new(),
        ?assertMatch({error, {missing_dictionary, #{ dictionary := 1, message := <<"gone">> }}},
                     backup_revision_codec:decode([K, D], backup_revision_codec:codec(Fresh, 0, NoLoad))),
        ?assertMatch({error, {missing_dictionary, #{ dictionary := 1 }}},
                     backup_revision_codec:decode([K, D], c())),
        % A loader that finds it: loaded on the way, then read.
        Load = fun(1) -> backup_nif:revision_dict_put(Fresh, 1, Dict, false) end,
        ?assertEqual({ok, P1}, backup_revision_codec:decode([K, D], backup_revision_codec:codec(Fresh, 0, Load))),
        ?assertEqual([1], backup_nif:revision_dict_ids(Fresh)),
        % Another dictionary under the same id: an error, never a wrong revision.
        Other = backup_nif:revision_dicts_new(),
        OtherDict = train(Other, [ #{ <<"n">> => N, <<"t">> => body(N rem 3 + 1) } || N <- lists:seq(1, 40) ]),
        ok = backup_nif:revision_dict_put(Other, 1, OtherDict, false),
        ?assertMatch({error, {bad_revision, _}},
                     backup_revision_codec:decode([K, D], backup_revision_codec:codec(Other, 0, NoLoad))),
        % Writing with a dictionary that cannot be had: written without one.
        {ok, {<<"zkey2">>, _} = K2} = backup_revision_codec:encode_keyframe(P0, backup_revision_codec:codec(
            backup_nif:revision_dicts_new(), 1, NoLoad)),
        ?assertEqual({ok, P0}, backup_revision_codec:decode([K2], c()))
    end}.

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
