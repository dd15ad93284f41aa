%% @doc A site's revision history for backup_revision_bench (not a test): a few thousand
%% resources of the kinds a Zotonic site holds, each with the props Zotonic 1.0 saves, saved a
%% long-tailed number of times with the edits editors make, in the order the saves happened.
%%
%% The mix, by count: images 30%, articles 20%, news 12%, persons 12%, keywords 10%,
%% events 6%, text pages 5%, documents 5%. Every resource has Zotonic's system props (id,
%% version, category, content group, creator/modifier, dates, flags, language, tz, slug). Texts
%% are in one (55%), two (35%) or three (10%) languages; bodies are HTML paragraphs of
%% sentences drawn word by word from a made-up vocabulary per language (5,000 words, Zipf
%% frequencies): pages share words, markup and structure, never whole sentences.
%%
%% Saves per resource follow a truncated zeta law (P(n) ~ n^-2.3, at most 400): about 60% are
%% saved once, 9 in 10 at most five times, a few hundreds of times. Every save after the first
%% bumps `version' and `modified' (by 30 s to 30 days), sets the editor, and makes one edit: a
%% typo fix (30%), a sentence rewritten, added or removed (20%), a paragraph rewritten (8%) or
%% added (7%), a title (8%) or summary (8%) change, a publish toggle (5%), an edge change (10%:
%% in Zotonic edges are not props, so the save only touches version and modified) or another
%% field (4%). Two percent of the resources are deleted at the end.
%% @end

%% Copyright 2026 The zotonic_mod_backup authors
%%
%% Licensed under the Apache License, Version 2.0 (the "License");
%% you may not use this file except in compliance with the License.
%% You may obtain a copy of the License at
%%
%%     http://www.apache.org/licenses/LICENSE-2.0
%%
%% Unless required by applicable law or agreed to in writing, software
%% distributed under the License is distributed on an "AS IS" BASIS,
%% WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
%% See the License for the specific language governing permissions and
%% limitations under the License.

-module(backup_revision_bench_site).

-export([saves/2, word_bits/1]).

-define(LANGS, [en, nl, de]).
-define(MAX_SAVES, 400).
-define(EDITORS, 12).
-define(START, 63_850_000_000).     % Gregorian seconds in 2023

-type save() :: #{ rsc_id := pos_integer(), category := atom(), saves := pos_integer(),
                   deleted := boolean(), props := map() }.
-export_type([save/0]).

%% @doc The saves of NPages resources in the order they happened: one map per save with the
%% resource, its category, how many saves it has in all, whether this save is its deletion,
%% and the props saved.
-spec saves(pos_integer(), integer()) -> [save()].
saves(NPages, Seed) ->
    rand:seed(exsss, {Seed, Seed + 1, Seed + 2}),
    Timed = lists:append([ page(1000 + N) || N <- lists:seq(1, NPages) ]),
    [ S || {_, _, S} <- lists:sort(Timed) ].

page(Id) ->
    Category = category(),
    Langs = lists:sublist(?LANGS, pick([{55, 1}, {35, 2}, {10, 3}])),
    NSaves = save_count(),
    Created = ?START + rand:uniform(3 * 365 * 86400),
    P0 = initial(Id, Category, Langs, Created),
    {Hist, _} = lists:mapfoldl(
        fun(V, {P, T}) ->
            T1 = T + gap(),
            P1 = (edit(edit_kind(), P, Langs))#{
                <<"version">> => V,
                <<"modified">> => datetime(T1),
                <<"modifier_id">> => editor(maps:get(<<"modifier_id">>, P))
            },
            {{T1, P1}, {P1, T1}}
        end,
        {P0, Created},
        lists:seq(2, NSaves)),
    Saves = [ {Created, P0} | Hist ],
    IsDeleted = rand:uniform(50) =:= 1,
    Rows = [ {T, Id, #{ rsc_id => Id, category => Category, saves => NSaves, deleted => false, props => P }}
             || {T, P} <- Saves ],
    case IsDeleted of
        true ->
            {TLast, PLast} = lists:last(Saves),
            Rows ++ [ {TLast + gap(), Id, #{ rsc_id => Id, category => Category, saves => NSaves,
                                             deleted => true, props => PLast }} ];
        false ->
            Rows
    end.

%% Truncated zeta: P(N >= n) = n^-1.3.
save_count() ->
    min(?MAX_SAVES, trunc(math:pow(1 - rand:uniform(), -1 / 1.3))).

%% 30 seconds to 30 days, log-uniform: edits come in bursts, then pages rest.
gap() ->
    trunc(30 * math:pow(86400, rand:uniform())).

category() ->
    pick([{30, image}, {20, article}, {12, news}, {12, person}, {10, keyword}, {6, event},
          {5, text}, {5, document}]).

category_id(image) -> 317;
category_id(article) -> 309;
category_id(news) -> 312;
category_id(person) -> 304;
category_id(keyword) -> 322;
category_id(event) -> 311;
category_id(text) -> 308;
category_id(document) -> 318.

editor(Current) ->
    case rand:uniform(5) of
        1 -> 100 + rand:uniform(?EDITORS);
        _ -> Current
    end.

%% @doc The information in the words of the texts of Props: the sum of -log2 P(word) over the
%% words drawn from the vocabularies (the Zipf law word/1 draws them by), markup and other
%% strings not counted. The words are independent draws, so no code can store them in fewer
%% bits on average: the revisions that hold them cannot be smaller than this.
-spec word_bits(map()) -> float().
word_bits(Props) ->
    lists:sum([ text_bits(L, T) || V <- maps:values(Props), {L, T} <- texts(V) ]).

texts({trans, Tr}) -> [ {L, T} || {L, T} <- Tr, is_binary(T) ];
texts(_) -> [].

text_bits(L, T) ->
    Probs = word_probs(L),
    Plain = re:replace(T, "<[^>]*>", " ", [global, {return, binary}]),
    lists:sum([ -math:log2(P)
                || W <- re:split(Plain, "[^a-zA-Z\\x80-\\xff]+", [{return, binary}]), W =/= <<>>,
                   P <- [maps:get(lower_first(W), Probs, undefined)], P =/= undefined ]).

lower_first(<<C, Rest/binary>>) when C >= $A, C =< $Z -> <<(C + 32), Rest/binary>>;
lower_first(B) -> B.

%% Word -> probability of word/1 drawing it (words made twice add up).
word_probs(L) ->
    zb_test_util:memo({?MODULE, probs, L}, fun() ->
        {Words, Cum} = vocab(L),
        Total = element(tuple_size(Cum), Cum),
        lists:foldl(fun(I, Acc) ->
                        maps:update_with(element(I, Words), fun(P) -> P + 1 / I / Total end, 1 / I / Total, Acc)
                    end, #{}, lists:seq(1, tuple_size(Words)))
    end).

%% ---------------------------------------------------------------------------------------------
%% A new resource

initial(Id, Category, Langs, Created) ->
    Title = title(Category, Langs),
    Editor = 100 + rand:uniform(?EDITORS),
    IsPublished = rand:uniform(10) > 1,
    System = #{
        <<"id">> => Id,
        <<"version">> => 1,
        <<"category_id">> => category_id(Category),
        <<"content_group_id">> => pick([{80, 330}, {15, 331}, {5, 332}]),
        <<"created">> => datetime(Created),
        <<"modified">> => datetime(Created),
        <<"creator_id">> => Editor,
        <<"modifier_id">> => Editor,
        <<"is_published">> => IsPublished,
        <<"is_featured">> => rand:uniform(20) =:= 1,
        <<"is_protected">> => false,
        <<"is_dependent">> => Category =:= image andalso rand:uniform(3) =:= 1,
        <<"is_authoritative">> => true,
        <<"is_unfindable">> => false,
        <<"visible_for">> => 0,
        <<"publication_start">> => datetime(Created),
        <<"publication_end">> => {{9999, 8, 17}, {12, 0, 0}},
        <<"language">> => Langs,
        <<"tz">> => <<"Europe/Amsterdam">>,
        <<"title">> => Title,
        <<"slug">> => slug(Title),
        <<"seo_noindex">> => false
    },
    maps:merge(System, content(Category, Langs, Created)).

title(image, Langs) ->
    case rand:uniform(2) of
        1 -> trans(Langs, fun(_) -> iolist_to_binary(["IMG_", integer_to_binary(rand:uniform(9999)), ".jpg"]) end);
        2 -> trans(Langs, fun(L) -> capital(words(L, 2 + rand:uniform(4))) end)
    end;
title(person, Langs) ->
    Name = iolist_to_binary([capital(word(nl)), " ", capital(word(de))]),
    trans(Langs, fun(_) -> Name end);
title(keyword, Langs) ->
    trans(Langs, fun(L) -> capital(words(L, 1 + rand:uniform(2))) end);
title(_, Langs) ->
    trans(Langs, fun(L) -> capital(words(L, 3 + rand:uniform(7))) end).

content(image, Langs, _Created) ->
    Summary = sometimes(#{ <<"summary">> => trans(Langs, fun(L) -> sentence(L) end) }, 3),
    Summary#{ <<"original_filename">> => iolist_to_binary(["DSC", integer_to_binary(rand:uniform(99999)), ".JPG"]) };
content(document, Langs, _Created) ->
    #{ <<"summary">> => trans(Langs, fun(L) -> sentence(L) end),
       <<"original_filename">> => iolist_to_binary([words(en, 2), ".pdf"]) };
content(keyword, _Langs, _Created) ->
    #{};
content(person, Langs, _Created) ->
    maps:merge(
        #{
            <<"name_first">> => capital(word(nl)),
            <<"name_surname">> => capital(word(de)),
            <<"email">> => iolist_to_binary([word(en), "@", word(nl), ".example"]),
            <<"phone">> => iolist_to_binary(["+31 6 ", integer_to_binary(10_000_000 + rand:uniform(89_999_999))])
        },
        sometimes(#{
            <<"summary">> => trans(Langs, fun(L) -> sentences(L, 1 + rand:uniform(3)) end),
            <<"address_street_1">> => iolist_to_binary([capital(word(nl)), "straat ", integer_to_binary(rand:uniform(200))]),
            <<"address_city">> => capital(word(nl)),
            <<"address_postcode">> => iolist_to_binary([integer_to_binary(1000 + rand:uniform(8999)), " AB"]),
            <<"address_country">> => <<"nl">>
        }, 2));
content(event, Langs, Created) ->
    Start = Created + rand:uniform(90) * 86400,
    maps:merge(
        #{
            <<"summary">> => trans(Langs, fun(L) -> sentences(L, 1 + rand:uniform(2)) end),
            <<"body">> => trans(Langs, fun(L) -> html(L, 1 + rand:uniform(3)) end),
            <<"date_start">> => datetime(Start),
            <<"date_end">> => datetime(Start + 3600 * (1 + rand:uniform(8))),
            <<"date_is_all_day">> => false
        },
        sometimes(#{ <<"address_city">> => capital(word(nl)), <<"address_country">> => <<"nl">> }, 2));
content(Category, Langs, _Created) ->
    Paragraphs = case Category of
        news -> 1 + rand:uniform(5);
        article -> long_tail(2, 14);
        _ -> long_tail(1, 20)
    end,
    maps:merge(
        #{
            <<"summary">> => trans(Langs, fun(L) -> sentences(L, 1 + rand:uniform(3)) end),
            <<"body">> => trans(Langs, fun(L) -> html(L, Paragraphs) end)
        },
        maps:merge(
            sometimes(#{ <<"subtitle">> => trans(Langs, fun(L) -> capital(words(L, 3 + rand:uniform(5))) end) }, 4),
            sometimes(#{ <<"seo_desc">> => trans(Langs, fun(L) -> sentence(L) end) }, 3))).

%% Min..Max, most near Min.
long_tail(Min, Max) ->
    Min + trunc((Max - Min) * rand:uniform() * rand:uniform()).

sometimes(Map, OneIn) ->
    case rand:uniform(OneIn) of
        1 -> Map;
        _ -> #{}
    end.

%% ---------------------------------------------------------------------------------------------
%% Edits

edit_kind() ->
    pick([{30, typo}, {20, sentence}, {8, paragraph}, {7, add_paragraph}, {8, title}, {8, summary},
          {5, publish}, {10, edge}, {4, other}]).

edit(typo, P, Langs) -> edit_text(P, fun typo/2, Langs);
edit(sentence, P, Langs) -> edit_text(P, fun sentence_edit/2, Langs);
edit(paragraph, P, Langs) -> edit_body(P, fun paragraph_rewrite/2, Langs);
edit(add_paragraph, P, Langs) -> edit_body(P, fun paragraph_add/2, Langs);
edit(title, #{ <<"title">> := T } = P, _Langs) ->
    P#{ <<"title">> => edit_trans(T, fun(L, Old) -> retitle(L, Old) end) };
edit(summary, #{ <<"summary">> := S } = P, _Langs) ->
    P#{ <<"summary">> => edit_trans(S, fun sentence_edit/2) };
edit(summary, P, Langs) ->
    P#{ <<"summary">> => trans(Langs, fun(L) -> sentence(L) end) };
edit(publish, #{ <<"is_published">> := true } = P, _Langs) ->
    P#{ <<"is_published">> => false };
edit(publish, P, _Langs) ->
    P#{ <<"is_published">> => true, <<"publication_start">> => maps:get(<<"modified">>, P) };
edit(edge, P, _Langs) ->
    P;
edit(other, P, Langs) ->
    case rand:uniform(4) of
        1 -> P#{ <<"is_featured">> => not maps:get(<<"is_featured">>, P) };
        2 -> P#{ <<"seo_desc">> => trans(Langs, fun(L) -> sentence(L) end) };
        3 -> P#{ <<"subtitle">> => trans(Langs, fun(L) -> capital(words(L, 3 + rand:uniform(5))) end) };
        4 -> P#{ <<"seo_noindex">> => not maps:get(<<"seo_noindex">>, P) }
    end.

%% A text edit in the body when there is one, else the summary, else the title.
edit_text(P, F, _Langs) ->
    Key = case P of
        #{ <<"body">> := _ } -> <<"body">>;
        #{ <<"summary">> := _ } -> <<"summary">>;
        _ -> <<"title">>
    end,
    P#{ Key => edit_trans(maps:get(Key, P), F) }.

edit_body(#{ <<"body">> := B } = P, F, _Langs) ->
    P#{ <<"body">> => edit_trans(B, F) };
edit_body(P, _F, Langs) ->
    edit(summary, P, Langs).

%% One language of a translated text changed (editors work in one language at a time).
edit_trans({trans, Tr}, F) ->
    {L, Old} = lists:nth(rand:uniform(length(Tr)), Tr),
    {trans, lists:keyreplace(L, 1, Tr, {L, F(L, Old)})}.

%% A letter changed, dropped or doubled somewhere.
typo(_L, T) when byte_size(T) < 4 ->
    T;
typo(_L, T) ->
    At = rand:uniform(byte_size(T) - 2),
    <<Pre:At/binary, C, Post/binary>> = T,
    case rand:uniform(3) of
        1 -> <<Pre/binary, Post/binary>>;
        2 -> <<Pre/binary, C, C, Post/binary>>;
        3 -> <<Pre/binary, ($a + rand:uniform(26) - 1), Post/binary>>
    end.

%% A sentence replaced, inserted or removed.
sentence_edit(L, T) ->
    Parts = binary:split(T, <<". ">>, [global]),
    K = rand:uniform(length(Parts)),
    {Before, [Cur | After]} = lists:split(K - 1, Parts),
    New = case rand:uniform(3) of
        1 -> Before ++ [words(L, 5 + rand:uniform(15)) | After];
        2 -> Before ++ [Cur, words(L, 5 + rand:uniform(15)) | After];
        3 when Parts =/= [Cur] -> Before ++ After;
        3 -> Before ++ [words(L, 5 + rand:uniform(15)) | After]
    end,
    iolist_to_binary(lists:join(<<". ">>, New)).

paragraph_rewrite(L, T) ->
    Parts = binary:split(T, <<"\n">>, [global, trim]),
    K = rand:uniform(length(Parts)),
    {Before, [_ | After]} = lists:split(K - 1, Parts),
    iolist_to_binary([ [P, "\n"] || P <- Before ++ [paragraph(L) | After] ]).

paragraph_add(L, T) ->
    Parts = binary:split(T, <<"\n">>, [global, trim]),
    {Before, After} = lists:split(rand:uniform(length(Parts) + 1) - 1, Parts),
    iolist_to_binary([ [P, "\n"] || P <- Before ++ [paragraph(L) | After] ]).

retitle(L, Old) ->
    case rand:uniform(2) of
        1 -> <<Old/binary, " ", (word(L))/binary>>;
        2 -> capital(words(L, 3 + rand:uniform(6)))
    end.

%% ---------------------------------------------------------------------------------------------
%% Texts

trans(Langs, F) -> {trans, [ {L, F(L)} || L <- Langs ]}.

html(L, N) ->
    iolist_to_binary([ [paragraph(L), "\n"] || _ <- lists:seq(1, N) ]).

paragraph(L) ->
    case rand:uniform(8) of
        1 -> iolist_to_binary(["<h2>", capital(words(L, 2 + rand:uniform(5))), "</h2>"]);
        2 -> iolist_to_binary(["<ul>", [ ["<li>", words(L, 2 + rand:uniform(8)), "</li>"] || _ <- lists:seq(1, 2 + rand:uniform(4)) ], "</ul>"]);
        3 -> iolist_to_binary(["<p>", sentences(L, 1 + rand:uniform(3)), " <a href=\"/page/",
                               integer_to_binary(1000 + rand:uniform(5000)), "/", word(L), "\">",
                               words(L, 1 + rand:uniform(3)), "</a> ", sentences(L, 1 + rand:uniform(3)), "</p>"]);
        _ -> iolist_to_binary(["<p>", sentences(L, 2 + rand:uniform(6)), "</p>"])
    end.

sentences(L, N) ->
    iolist_to_binary(lists:join(<<" ">>, [ sentence(L) || _ <- lists:seq(1, N) ])).

sentence(L) ->
    iolist_to_binary([capital(words(L, 4 + rand:uniform(18))), "."]).

words(L, N) ->
    iolist_to_binary(lists:join(<<" ">>, [ word(L) || _ <- lists:seq(1, N) ])).

capital(<<C, Rest/binary>>) when C >= $a, C =< $z -> <<(C - 32), Rest/binary>>;
capital(B) -> B.

slug({trans, [{_, T} | _]}) ->
    iolist_to_binary(string:replace(string:lowercase(T), " ", "-", all)).

datetime(Secs) ->
    calendar:gregorian_seconds_to_datetime(Secs).

%% An element of a weighted list [{Weight, Value}].
pick(Weighted) ->
    R = rand:uniform(lists:sum([ W || {W, _} <- Weighted ])),
    pick(R, Weighted).

pick(R, [{W, V} | _]) when R =< W -> V;
pick(R, [{W, _} | Rest]) -> pick(R - W, Rest).

%% A word of language L: Zipf frequencies over a made-up vocabulary of 5,000 words.
word(L) ->
    {Words, Cum} = vocab(L),
    R = rand:uniform() * element(tuple_size(Cum), Cum),
    element(bisect(Cum, R, 1, tuple_size(Cum)), Words).

bisect(_Cum, _R, Lo, Lo) -> Lo;
bisect(Cum, R, Lo, Hi) ->
    Mid = (Lo + Hi) div 2,
    case element(Mid, Cum) >= R of
        true -> bisect(Cum, R, Lo, Mid);
        false -> bisect(Cum, R, Mid + 1, Hi)
    end.

vocab(L) ->
    zb_test_util:memo({?MODULE, L}, fun() -> make_vocab(L) end).

make_vocab(L) ->
    S0 = rand:seed_s(exsss, {erlang:phash2(L), 5, 7}),
    Syll = case L of
        en -> {<<"th">>, <<"an">>, <<"ing">>, <<"er">>, <<"on">>, <<"re">>, <<"st">>, <<"al">>, <<"ou">>, <<"ed">>, <<"ly">>, <<"ion">>};
        nl -> {<<"ij">>, <<"en">>, <<"aa">>, <<"oe">>, <<"sch">>, <<"ge">>, <<"de">>, <<"ver">>, <<"ui">>, <<"el">>, <<"heid">>, <<"ee">>};
        de -> {<<"ei">>, <<"ch">>, <<"sch">>, <<"en">>, <<"ung">>, <<"ie">>, <<"ge">>, <<"au">>, <<"er">>, <<"st">>, <<"keit">>, <<"ä"/utf8>>}
    end,
    Cons = {<<"b">>, <<"d">>, <<"f">>, <<"g">>, <<"k">>, <<"l">>, <<"m">>, <<"n">>, <<"p">>, <<"r">>, <<"s">>, <<"t">>, <<"v">>, <<"w">>, <<"">>},
    {Words, _} = lists:mapfoldl(
        fun(I, S) ->
            % Frequent words are short, as in any language.
            {N, S1} = rand:uniform_s(1 + min(3, I div 60), S),
            {Parts, S2} = lists:mapfoldl(
                fun(_, Sx) ->
                    {A, Sa} = rand:uniform_s(tuple_size(Cons), Sx),
                    {B, Sb} = rand:uniform_s(tuple_size(Syll), Sa),
                    {[element(A, Cons), element(B, Syll)], Sb}
                end,
                S1,
                lists:seq(1, N)),
            {iolist_to_binary(Parts), S2}
        end,
        S0,
        lists:seq(1, 5000)),
    {Cum, _} = lists:mapfoldl(fun(I, Acc) -> Acc1 = Acc + 1 / I, {Acc1, Acc1} end, 0.0, lists:seq(1, 5000)),
    {list_to_tuple(Words), list_to_tuple(Cum)}.
