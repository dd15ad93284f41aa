%% @doc Revision storage benchmark (not a test): stock `erlang' rows against our keyframe + delta
%% chains, through the real NIF, in one VM.
%%
%% Generates edit histories like a site's: resources with 20-60 properties, bodies of 1-50 KB of
%% HTML in one to three languages, 5-200 saves each; every save bumps `version' and `modified'
%% and edits one to three properties a little; about 3% of saves rewrite a body. Prints the bytes
%% stock mod_backup stores (`term_to_binary(Props, [compressed])' per save) against ours, and
%% p50/p99 times to encode a save and to reconstruct a revision, by chain length.
%%
%% Run:
%%   rebar3 as test compile && erl -noshell -pa _build/test/lib/zotonic_mod_backup/ebin \
%%       -pa _build/test/lib/zotonic_mod_backup/test \
%%       -eval 'backup_revision_bench:main(#{}), halt().'
%% Options (map): resources (40), key_every (50: a keyframe at least every N saves), seed (42).

-module(backup_revision_bench).

-export([main/1, history/2]).

-define(LANGS, [en, nl, de]).

-spec main(#{resources => pos_integer(), key_every => pos_integer(), seed => integer()}) -> ok.
main(Opts) ->
    NRes = maps:get(resources, Opts, 40),
    KeyEvery = maps:get(key_every, Opts, 50),
    Seed = maps:get(seed, Opts, 42),
    rand:seed(exsss, {Seed, Seed, Seed}),
    io:format("revision benchmark: ~b resources, keyframe every ~b saves~n", [NRes, KeyEvery]),
    Results = [bench_resource(history(rand:uniform(196) + 4, rand:uniform(41) + 19), KeyEvery)
               || _ <- lists:seq(1, NRes)],
    Saves = lists:sum([S || #{saves := S} <- Results]),
    Stock = lists:sum([B || #{stock := B} <- Results]),
    Ours = lists:sum([B || #{ours := B} <- Results]),
    Keys = lists:sum([B || #{key_bytes := B} <- Results]),
    io:format("saves: ~b; props per save: ~s KB mean (term_to_binary, uncompressed)~n",
              [Saves, kb(lists:sum([B || #{raw := B} <- Results]) / Saves)]),
    io:format("stored by stock (erlang rows): ~s KB~n", [kb(Stock)]),
    io:format("stored by ours (zkey1 + zdelta1): ~s KB (keyframes ~s KB, deltas ~s KB, "
              "mean delta ~b bytes)~n",
              [kb(Ours), kb(Keys), kb(Ours - Keys), round((Ours - Keys) / max(1, Saves - NRes))]),
    io:format("storage ratio stock/ours: ~.1fx~n", [Stock / Ours]),
    report("encode a save, stock term_to_binary(compressed)", lists:append([T || #{stock_us := T} <- Results])),
    report("encode a save, ours (delta or keyframe)", lists:append([T || #{encode_us := T} <- Results])),
    Recon = lists:append([T || #{reconstruct := T} <- Results]),
    report("reconstruct a revision, stock binary_to_term", lists:append([T || #{stock_decode_us := T} <- Results])),
    report("reconstruct a revision, ours (any chain length)", [T || {_, T} <- Recon]),
    lists:foreach(
        fun({Lo, Hi}) ->
            case [T || {L, T} <- Recon, L >= Lo, L =< Hi] of
                [] -> ok;
                Ts -> report(io_lib:format("  chain of ~b-~b deltas", [Lo, Hi]), Ts)
            end
        end,
        [{0, 0}, {1, 9}, {10, 24}, {25, 39}, {40, KeyEvery}]
    ),
    ok.

bench_resource(History, KeyEvery) ->
    Indexed = lists:zip(lists:seq(0, length(History) - 1), History),
    {Rows, _} = lists:mapfoldl(
        fun({I, P}, Prev) ->
            {Us, {ok, Row}} = best_of(fun() -> encode(I, KeyEvery, Prev, P) end),
            {{Row, Us}, P}
        end,
        undefined,
        Indexed
    ),
    StockRows = [{best_of(fun() -> term_to_binary(P, [compressed]) end), P} || P <- History],
    Stored = [R || {R, _} <- Rows],
    %% Reconstruct a sample of revisions (all of them for short histories), checking each.
    Sample = [I || {I, _} <- Indexed, I < 10 orelse rand:uniform(4) =:= 1],
    Recon = [reconstruct(I, KeyEvery, Stored, lists:nth(I + 1, History)) || I <- Sample],
    StockDecode = [element(1, best_of(fun() -> binary_to_term(lists:nth(I + 1, [B || {{_, B}, _} <- StockRows])) end))
                   || I <- Sample],
    #{
        saves => length(History),
        raw => lists:sum([byte_size(term_to_binary(P)) || P <- History]),
        stock => lists:sum([byte_size(B) || {{_, B}, _} <- StockRows]),
        ours => lists:sum([byte_size(D) || {_, D} <- Stored]),
        key_bytes => lists:sum([byte_size(D) || {T, D} <- Stored, T =/= <<"zdelta1">>]),
        stock_us => [T || {{T, _}, _} <- StockRows],
        encode_us => [T || {_, T} <- Rows],
        stock_decode_us => StockDecode,
        reconstruct => Recon
    }.

encode(I, KeyEvery, _Prev, P) when I rem KeyEvery =:= 0 ->
    backup_revision_codec:encode_keyframe(P);
encode(_I, _KeyEvery, Prev, P) ->
    backup_revision_codec:encode_delta(Prev, P).

reconstruct(I, KeyEvery, Stored, Want) ->
    Start = I - I rem KeyEvery,
    Chain = lists:sublist(Stored, Start + 1, I - Start + 1),
    {Us, {ok, Got}} = best_of(fun() -> backup_revision_codec:decode(Chain) end),
    Got =:= Want orelse error({reconstruct_mismatch, I}),
    {I - Start, Us}.

%% The fastest of three runs: on a shared 2-core machine a single run mostly measures the
%% neighbours. Used for both methods alike.
best_of(F) ->
    lists:min([tc(F) || _ <- lists:seq(1, 3)]).

report(Label, Times) ->
    S = lists:sort(Times),
    N = length(S),
    P = fun(Q) -> lists:nth(max(1, min(N, round(Q * N))), S) end,
    io:format("~-52s n=~-6b p50 ~8.3f ms  p99 ~8.3f ms  max ~8.3f ms~n",
              [Label, N, P(0.5) / 1000, P(0.99) / 1000, lists:last(S) / 1000]).

%% Microseconds (a float) and the result; timer:tc/2 with a unit needs OTP 26.
tc(F) ->
    T0 = erlang:monotonic_time(nanosecond),
    R = F(),
    {(erlang:monotonic_time(nanosecond) - T0) / 1000, R}.

kb(Bytes) -> io_lib:format("~.1f", [Bytes / 1024]).

%% ---------------------------------------------------------------------------------------------
%% Histories

%% @doc The props of Saves successive saves of one resource with NProps properties.
-spec history(pos_integer(), pos_integer()) -> [map()].
history(Saves, NProps) ->
    Langs = lists:sublist(?LANGS, rand:uniform(3)),
    P0 = initial(NProps, Langs),
    {Hist, _} = lists:mapfoldl(fun(V, P) -> Next = save(V, P, Langs), {Next, Next} end, P0, lists:seq(2, Saves)),
    [P0 | Hist].

initial(NProps, Langs) ->
    Base = #{
        <<"title">> => trans(Langs, fun(L) -> sentence(L, 3 + rand:uniform(6)) end),
        <<"summary">> => trans(Langs, fun(L) -> sentence(L, 20 + rand:uniform(30)) end),
        <<"body">> => trans(Langs, fun(L) -> html(L, 1024 * (1 + rand:uniform(49))) end),
        <<"version">> => 1,
        <<"modified">> => {{2024, 1, 1}, {9, 0, 0}},
        <<"created">> => {{2024, 1, 1}, {9, 0, 0}},
        <<"creator_id">> => rand:uniform(100),
        <<"modifier_id">> => rand:uniform(100),
        <<"is_published">> => true,
        <<"is_featured">> => false,
        <<"is_protected">> => false,
        <<"visible_for">> => 0,
        <<"category_id">> => rand:uniform(300),
        <<"content_group_id">> => rand:uniform(300),
        <<"publication_start">> => {{2024, 1, 1}, {9, 0, 0}},
        <<"publication_end">> => {{9999, 8, 17}, {12, 0, 0}},
        <<"language">> => Langs,
        <<"page_path">> => undefined,
        <<"name">> => undefined,
        <<"seo_noindex">> => false
    },
    Extra = maps:from_list([extra(I, Langs) || I <- lists:seq(1, max(0, NProps - maps:size(Base)))]),
    maps:merge(Base, Extra).

extra(I, Langs) ->
    Key = <<"prop_", (integer_to_binary(I))/binary>>,
    Value = case I rem 7 of
        0 -> trans(Langs, fun(L) -> sentence(L, 5 + rand:uniform(20)) end);
        1 -> rand:uniform(100000);
        2 -> word(en);
        3 -> rand:uniform() * 100;
        4 -> [rand:uniform(1000) || _ <- lists:seq(1, rand:uniform(5))];
        5 -> #{<<"street">> => sentence(en, 3), <<"city">> => word(nl), <<"zip">> => <<"1012 AB">>};
        _ -> rand:uniform(2) =:= 1
    end,
    {Key, Value}.

save(V, P, Langs) ->
    Edits = case rand:uniform(100) of
        N when N =< 3 -> [rewrite_body];
        _ -> [edit || _ <- lists:seq(1, rand:uniform(3))]
    end,
    P1 = lists:foldl(fun(E, Acc) -> apply_edit(E, Acc, Langs) end, P, Edits),
    {{Y, M, D}, {H, _, _}} = maps:get(<<"modified">>, P),
    P1#{<<"version">> => V, <<"modified">> => {{Y, M, D}, {H, V rem 60, V rem 60}}}.

apply_edit(rewrite_body, P, Langs) ->
    P#{<<"body">> => trans(Langs, fun(L) -> html(L, 1024 * (1 + rand:uniform(49))) end)};
apply_edit(edit, P, _Langs) ->
    Keys = [K || K <- maps:keys(P), K =/= <<"version">>, K =/= <<"modified">>],
    %% Texts are what editors touch most: half the edits go to the body.
    Key = case rand:uniform(2) of
        1 -> <<"body">>;
        _ -> lists:nth(rand:uniform(length(Keys)), Keys)
    end,
    P#{Key => edit_value(maps:get(Key, P))}.

edit_value({trans, Tr}) ->
    {L, T} = lists:nth(rand:uniform(length(Tr)), Tr),
    {trans, lists:keyreplace(L, 1, Tr, {L, edit_text(L, T)})};
edit_value(B) when is_binary(B) -> edit_text(en, B);
edit_value(I) when is_integer(I) -> I + rand:uniform(10);
edit_value(F) when is_float(F) -> F * 1.01;
edit_value(B) when is_boolean(B) -> not B;
edit_value(L) when is_list(L) -> [rand:uniform(1000) | L];
edit_value(M) when is_map(M) -> M#{<<"city">> => word(de)};
edit_value(undefined) -> word(en);
edit_value(Other) -> Other.

%% A small edit: replace, insert or delete a few words somewhere.
edit_text(L, T) when byte_size(T) > 20 ->
    At = rand:uniform(byte_size(T) - 10),
    Cut = rand:uniform(min(40, byte_size(T) - At)),
    <<Pre:At/binary, _:Cut/binary, Post/binary>> = T,
    case rand:uniform(3) of
        1 -> <<Pre/binary, Post/binary>>;
        _ -> <<Pre/binary, (sentence(L, rand:uniform(6)))/binary, Post/binary>>
    end;
edit_text(L, T) ->
    <<T/binary, " ", (word(L))/binary>>.

trans(Langs, F) -> {trans, [{L, F(L)} || L <- Langs]}.

html(L, Size) -> html(L, Size, []).

html(_L, Size, Acc) when Size =< 0 -> iolist_to_binary(lists:reverse(Acc));
html(L, Size, Acc) ->
    P = case rand:uniform(6) of
        1 -> [<<"<h2>">>, sentence(L, 3 + rand:uniform(5)), <<"</h2>\n">>];
        2 -> [<<"<p>">>, sentence(L, 10), <<" <a href=\"/page/">>, integer_to_binary(rand:uniform(9999)),
              <<"\">">>, sentence(L, 2), <<"</a> ">>, sentence(L, 15), <<"</p>\n">>];
        _ -> [<<"<p>">>, sentence(L, 20 + rand:uniform(40)), <<"</p>\n">>]
    end,
    B = iolist_to_binary(P),
    html(L, Size - byte_size(B), [B | Acc]).

sentence(L, N) ->
    Ws = [word(L) || _ <- lists:seq(1, N)],
    iolist_to_binary([lists:join(<<" ">>, Ws), <<".">>]).

word(L) ->
    Vocab = vocab(L),
    element(rand:uniform(tuple_size(Vocab)), Vocab).

vocab(L) ->
    case persistent_term:get({?MODULE, L}, undefined) of
        undefined ->
            V = make_vocab(L),
            persistent_term:put({?MODULE, L}, V),
            V;
        V ->
            V
    end.

%% A few thousand made-up words per language, Zipf-like: common words repeat more.
make_vocab(L) ->
    S0 = rand:seed_s(exsss, {erlang:phash2(L), 1, 2}),
    Syll = case L of
        en -> [<<"th">>, <<"an">>, <<"ing">>, <<"er">>, <<"on">>, <<"re">>, <<"st">>, <<"al">>, <<"ou">>, <<"ed">>];
        nl -> [<<"ij">>, <<"en">>, <<"aa">>, <<"oe">>, <<"sch">>, <<"ge">>, <<"de">>, <<"ver">>, <<"ui">>, <<"el">>];
        _ -> [<<"ei">>, <<"ch">>, <<"sch">>, <<"en">>, <<"ung">>, <<"ie">>, <<"ge">>, <<"au">>, <<"er">>, <<"st">>]
    end,
    Cons = [<<"b">>, <<"d">>, <<"f">>, <<"k">>, <<"l">>, <<"m">>, <<"n">>, <<"p">>, <<"r">>, <<"s">>, <<"t">>, <<"w">>],
    {Words, _} = lists:mapfoldl(
        fun(_, S) ->
            {N, S1} = rand:uniform_s(3, S),
            {Parts, S2} = lists:mapfoldl(
                fun(_, Sx) ->
                    {A, Sa} = rand:uniform_s(length(Cons), Sx),
                    {B, Sb} = rand:uniform_s(length(Syll), Sa),
                    {[lists:nth(A, Cons), lists:nth(B, Syll)], Sb}
                end,
                S1,
                lists:seq(1, N)
            ),
            {iolist_to_binary(Parts), S2}
        end,
        S0,
        lists:seq(1, 3000)
    ),
    %% Zipf-ish: word i appears about 3000/i times in the table.
    Weighted = lists:append([lists:duplicate(max(1, 300 div I), W) || {I, W} <- lists:zip(lists:seq(1, 3000), Words)]),
    list_to_tuple(Weighted).
