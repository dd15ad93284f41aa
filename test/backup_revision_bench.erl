%% @doc Revision storage benchmark (not a test): stock `erlang' rows against ours, through the
%% real NIF, in one VM, on two kinds of history.
%%
%% site: a site's whole log (backup_revision_bench_site: a few thousand resources of a site's
%% kinds in one to three languages, long-tailed save counts, the edits editors make), saved in
%% the order the saves happened with the rules a save follows (a keyframe for the first save,
%% the save after a deletion and every 50th, deltas else, a deletion a delta too) and the
%% site's dictionary trained and adopted as the live site does it (backup_revision_dict: the
%% same samples, sizes and adoption rule; here the training runs in line, so the rows after it
%% use the new dictionary at once, where a live save would use the old one for the second or
%% two the training takes). Prints stock bytes against ours per revision, overall and by the
%% number of saves of a page, where the bytes of a delta go, what the log takes after
%% revisions_compact/1, and p50/p99 times to encode a save and to rebuild a revision.
%%
%% long: 40 resources with 5-200 saves each, 20-60 props and 1-50 KB bodies, for the
%% reconstruction time by chain length.
%%
%% Run:
%%   rebar3 as test compile && erl -noshell -pa _build/test/lib/zotonic_mod_backup/ebin \
%%       -pa _build/test/lib/zotonic_mod_backup/test \
%%       -eval 'backup_revision_bench:main(#{}), halt().'
%% Options (map): pages (3000), resources (40), key_every (50), seed (42), parts ([site, long]).

-module(backup_revision_bench).

-export([main/1, history/2]).

-define(LANGS, [en, nl, de]).
-define(BUCKETS, [{1, 1}, {2, 5}, {6, 20}, {21, 100}, {101, 1000}]).

-spec main(#{ pages => pos_integer(), resources => pos_integer(), key_every => pos_integer(),
              seed => integer(), parts => [site | long] }) -> ok.
main(Opts) ->
    Parts = maps:get(parts, Opts, [site, long]),
    [ site(Opts) || lists:member(site, Parts) ],
    [ long(Opts) || lists:member(long, Parts) ],
    ok.

%% ---------------------------------------------------------------------------------------------
%% A site's log

site(Opts) ->
    NPages = maps:get(pages, Opts, 3000),
    KeyEvery = maps:get(key_every, Opts, 50),
    Seed = maps:get(seed, Opts, 42),
    Saves = backup_revision_bench_site:saves(NPages, Seed),
    io:format("~n== site history: ~b resources, ~b saves (seed ~b), keyframe every ~b saves~n",
              [NPages, length(Saves), Seed, KeyEvery]),
    Dicts = backup_nif:revision_dicts_new(),
    St0 = #{ dicts => Dicts, current => 0, current_rows => 0, upto => 0, rows => 0, bytes_since => 0,
             saves => 0, train_at => 200, pages => #{}, log => [], trainings => [], dict_bytes => 0,
             dicts_raw => #{} },
    St = lists:foldl(fun(S, Acc) -> site_save(S, KeyEvery, Acc) end, St0, Saves),
    Log = lists:reverse(maps:get(log, St)),
    report_trainings(maps:get(trainings, St)),
    report_storage("live: rows as saved, dictionaries as trained on the way", Log, maps:get(dict_bytes, St)),
    report_ceiling(Log),
    report_costs(Log, Dicts),
    report_times(Log, St, KeyEvery),
    % revisions_compact/1: train once more on the whole log (forced), rewrite every row with
    % the newest dictionary; the older dictionaries are no longer needed.
    St1 = train(St, true),
    Final = maps:get(current, St1),
    Compacted = recode(Log, codec(St1)),
    FinalBytes = byte_size(maps:get(Final, maps:get(dicts_raw, St1), <<>>)),
    report_storage(io_lib:format("after revisions_compact/1: every row with dictionary ~b", [Final]),
                   Compacted, FinalBytes),
    ok.

codec(#{ dicts := Dicts, current := Current }) ->
    backup_revision_codec:codec(Dicts, Current, fun(Id) -> {error, {missing_dictionary, #{ dictionary => Id, message => <<>> }}} end).

%% One save: encode it as the live site would, log it, count it towards a training.
site_save(#{ rsc_id := Id, props := Props, deleted := IsDeleted } = S, KeyEvery, St) ->
    Pages = maps:get(pages, St),
    Page = maps:get(Id, Pages, #{ rows => [], chain => 0, prev => undefined, last_type => undefined }),
    Codec = codec(St),
    IsFull = maps:get(prev, Page) =:= undefined
        orelse maps:get(last_type, Page) =:= deleted
        orelse maps:get(chain, Page) >= KeyEvery,
    {Us, {ok, {DataType, Data} = Row}} = best_of(fun() ->
        case IsFull of
            true -> backup_revision_codec:encode_keyframe(Props, Codec);
            false -> backup_revision_codec:encode_delta(maps:get(prev, Page), Props, Codec)
        end
    end),
    Stock = byte_size(term_to_binary(Props, [compressed])),
    StockUs = element(1, best_of(fun() -> term_to_binary(Props, [compressed]) end)),
    IsKey = backup_revision_codec:is_full(DataType),
    Rows = case IsKey of
        true -> [Row];
        false -> maps:get(rows, Page) ++ [Row]
    end,
    Entry = S#{ row => Row, stock => Stock, ours => byte_size(Data), encode_us => Us, stock_us => StockUs,
                chain => Rows },
    Page1 = Page#{ rows => Rows, chain => length(Rows), prev => Props,
                   last_type => case IsDeleted of true -> deleted; false -> saved end },
    St1 = St#{ pages => Pages#{ Id => Page1 }, log => [Entry | maps:get(log, St)],
               rows => maps:get(rows, St) + 1, bytes_since => maps:get(bytes_since, St) + byte_size(Data),
               saves => maps:get(saves, St) + 1 },
    case maps:get(saves, St1) >= maps:get(train_at, St1) of
        true -> train(St1#{ train_at => maps:get(saves, St1) + 1000 }, false);
        false -> St1
    end.

%% A training as backup_revision_dict:train/2 does it, on the pages in memory.
train(St, Force) ->
    NewRows = maps:get(rows, St) - maps:get(upto, St),
    case backup_revision_dict:is_due(NewRows, maps:get(current_rows, St), Force) of
        false ->
            St;
        true ->
            {Histories, _Bytes} = samples(St),
            {Train, Holdout} = backup_revision_dict:split(Histories),
            T0 = erlang:monotonic_time(millisecond),
            Dicts = maps:get(dicts, St),
            Current = maps:get(current, St),
            case backup_revision_dict:train_job(Dicts, Current, Train, Holdout) of
                {ok, #{ dict := Dict } = Trained} ->
                    Ms = erlang:monotonic_time(millisecond) - T0,
                    Pays = backup_revision_dict:pays(Trained, maps:get(bytes_since, St)),
                    Info = (maps:without([dict], Trained))#{ rows => maps:get(rows, St), ms => Ms,
                                                             dict_bytes => byte_size(Dict), adopted => Pays },
                    St1 = St#{ trainings => [Info | maps:get(trainings, St)] },
                    case Pays of
                        true ->
                            Id = Current + 1,
                            ok = backup_nif:revision_dict_put(Dicts, Id, Dict, true),
                            St1#{ current => Id, current_rows => maps:get(rows, St), upto => maps:get(rows, St),
                                  bytes_since => 0, dict_bytes => maps:get(dict_bytes, St) + byte_size(Dict),
                                  dicts_raw => (maps:get(dicts_raw, St))#{ Id => Dict } };
                        false ->
                            St1#{ train_at => maps:get(saves, St) + max(1000, maps:get(rows, St)) }
                    end;
                {error, _} ->
                    St
            end
    end.

%% The samples backup_revision_dict takes: the resources saved last, each its last keyframe and
%% the revisions after it, within the same limits.
samples(St) ->
    #{ resources := NRes, depth := Depth, bytes := MaxBytes } = backup_revision_dict:limits(),
    Recent = lists:sublist(lists:usort(fun(A, B) -> A >= B end,
                                       [ {Seq, Id} || {Seq, #{ rsc_id := Id }} <- numbered(maps:get(log, St)) ]), 100000),
    Ids = lists:sublist(dedup([ Id || {_, Id} <- Recent ]), NRes),
    Pages = maps:get(pages, St),
    lists:foldl(
        fun(_Id, {Acc, Bytes}) when Bytes >= MaxBytes -> {Acc, Bytes};
           (Id, {Acc, Bytes}) ->
                #{ rows := Rows } = maps:get(Id, Pages),
                H = history_of(lists:sublist(Rows, Depth), codec(St)),
                {Acc ++ [H], Bytes + lists:sum([ byte_size(E) || E <- H ])}
        end,
        {[], 0},
        Ids).

numbered(Log) ->
    lists:zip(lists:seq(length(Log), 1, -1), Log).

dedup(L) ->
    {Out, _} = lists:foldl(fun(X, {Acc, Seen}) ->
                               case maps:is_key(X, Seen) of
                                   true -> {Acc, Seen};
                                   false -> {[X | Acc], Seen#{ X => true }}
                               end
                           end, {[], #{}}, L),
    lists:reverse(Out).

history_of(Rows, Codec) ->
    {H, _} = lists:mapfoldl(
        fun(Row, Prev) ->
            Chain = case Prev of
                undefined -> [Row];
                _ -> [{<<"erlang">>, term_to_binary(Prev)}, Row]
            end,
            {ok, P} = backup_revision_codec:decode(Chain, Codec),
            {term_to_binary(P), P}
        end,
        undefined,
        Rows),
    H.

%% Every row of the log written again in order with the codec's dictionary, as compacting does.
recode(Log, Codec) ->
    {Out, _} = lists:mapfoldl(
        fun(#{ rsc_id := Id, props := Props } = E, Prev) ->
            #{ row := {DataType, _} } = E,
            {ok, {_, Data} = Row} = case backup_revision_codec:is_full(DataType) of
                true -> backup_revision_codec:encode_keyframe(Props, Codec);
                false -> backup_revision_codec:encode_delta(maps:get(Id, Prev), Props, Codec)
            end,
            {E#{ row => Row, ours => byte_size(Data) }, Prev#{ Id => Props }}
        end,
        #{},
        Log),
    Out.

report_trainings(Trainings) ->
    lists:foreach(
        fun(#{ rows := Rows, ms := Ms, dict_bytes := DB, sample_bytes := SB, holdout_current := Cur,
               holdout_candidate := Cand, adopted := Adopted }) ->
            io:format("training at ~b rows: ~s KB samples -> ~s KB dictionary in ~b ms; held-out rows "
                      "~s KB with the current, ~s KB with the new one: ~s~n",
                      [Rows, kb(SB), kb(DB), Ms, kb(Cur), kb(Cand),
                       case Adopted of true -> "adopted"; false -> "kept the current one" end])
        end,
        lists:reverse(Trainings)).

report_storage(Title, Log, DictBytes) ->
    io:format("~n-- ~s~n", [Title]),
    Stock = lists:sum([ B || #{ stock := B } <- Log ]),
    Ours = lists:sum([ B || #{ ours := B } <- Log ]),
    N = length(Log),
    io:format("~-28s ~7s ~7s ~12s ~12s ~8s~n", ["", "pages", "rows", "stock B/rev", "ours B/rev", "ratio"]),
    io:format("~-28s ~7b ~7b ~12.1f ~12.1f ~7.1fx   (ours with ~s KB of dictionaries)~n",
              ["all", length(lists:usort([ I || #{ rsc_id := I } <- Log ])), N, Stock / N,
               (Ours + DictBytes) / N, Stock / (Ours + DictBytes), kb(DictBytes)]),
    lists:foreach(
        fun({Lo, Hi}) ->
            Es = [ E || #{ saves := S } = E <- Log, S >= Lo, S =< Hi ],
            case Es of
                [] -> ok;
                _ ->
                    St = lists:sum([ B || #{ stock := B } <- Es ]),
                    Ou = lists:sum([ B || #{ ours := B } <- Es ]),
                    Label = case Lo =:= Hi of
                        true -> io_lib:format("pages saved ~b time~s", [Lo, case Lo of 1 -> ""; _ -> "s" end]);
                        false -> io_lib:format("pages saved ~b-~b times", [Lo, Hi])
                    end,
                    io:format("~-28s ~7b ~7b ~12.1f ~12.1f ~7.1fx~n",
                              [Label, length(lists:usort([ I || #{ rsc_id := I } <- Es ])), length(Es),
                               St / length(Es), Ou / length(Es), St / Ou])
            end
        end,
        ?BUCKETS),
    Keys = [ B || #{ row := {T, _}, ours := B } <- Log, backup_revision_codec:is_full(T) ],
    Deltas = [ B || #{ row := {T, _}, ours := B } <- Log, not backup_revision_codec:is_full(T) ],
    io:format("keyframes ~b rows, ~s KB, mean ~b B; deltas ~b rows, ~s KB, mean ~.1f B; "
              "if every delta were free: ~.1fx~n",
              [length(Keys), kb(lists:sum(Keys)), lists:sum(Keys) div max(1, length(Keys)), length(Deltas),
               kb(lists:sum(Deltas)), lists:sum(Deltas) / max(1, length(Deltas)),
               Stock / (lists:sum(Keys) + DictBytes)]),
    Once = [ E || #{ saves := 1, deleted := false } = E <- Log ],
    ByKind = lists:usort([ C || #{ category := C } <- Once ]),
    io:format("pages saved once, by kind:"),
    [ begin
          Es = [ E || #{ category := C1 } = E <- Once, C1 =:= C ],
          io:format(" ~s ~.1fx (~b)", [C, lists:sum([ B || #{ stock := B } <- Es ]) / lists:sum([ B || #{ ours := B } <- Es ]),
                                       length(Es)])
      end || C <- ByKind ],
    io:format("~n").

%% The bound the generated words put on any log: each page's first save is stored whole, and
%% its words are independent draws from the generator's Zipf law, so no encoding stores them
%% in fewer bytes than their information (backup_revision_bench_site:word_bits/1). Deltas that
%% insert new words, markup, keys and values come on top; the bound leaves them out.
report_ceiling(Log) ->
    {Firsts, _} = lists:foldl(fun(#{ rsc_id := Id } = E, {Acc, Seen}) ->
                                  case maps:is_key(Id, Seen) of
                                      true -> {Acc, Seen};
                                      false -> {[E | Acc], Seen#{ Id => true }}
                                  end
                              end, {[], #{}}, Log),
    Bytes = fun(Es) -> lists:sum([ backup_revision_bench_site:word_bits(P) || #{ props := P } <- Es ]) / 8 end,
    Stock = fun(Es) -> lists:sum([ B || #{ stock := B } <- Es ]) end,
    All = Bytes(Firsts),
    OnceFirsts = [ E || #{ saves := 1 } = E <- Firsts ],
    Once = Bytes(OnceFirsts),
    io:format("information in the words of the pages' first saves (a floor no encoding gets under): "
              "~s KB, of pages saved once ~s KB (~.1f B per page); so at best: all ~.1fx, "
              "pages saved 1 time ~.1fx~n",
              [kb(All), kb(Once), Once / max(1, length(OnceFirsts)), Stock(Log) / All,
               Stock([ E || #{ saves := 1 } = E <- Log ]) / Once]).

report_costs(Log, Dicts) ->
    Codec = backup_revision_codec:codec(Dicts, 0, fun(_) -> {error, none} end),
    Costs = [ C || #{ row := {<<"zdelta2">>, D} } <- Log, {ok, C} <- [backup_revision_codec:delta_cost(D, Codec)] ],
    N = max(1, length(Costs)),
    Mean = fun(K) -> lists:sum([ maps:get(K, C) || C <- Costs ]) / N end,
    Parts = [checksum, framing, paths, ints, times, text_copies, text_inserts, sets, puts, drops, lists],
    io:format("~nwhere a delta's bytes go (~b deltas; mean per delta): stored ~.1f B (header and zstd "
              "framing included), payload ~.1f B before compression:~n  ", [length(Costs), Mean(stored), Mean(payload)]),
    io:format("~s~n", [lists:join(", ", [ io_lib:format("~s ~.1f", [K, Mean(K)]) || K <- Parts ])]),
    ok.

report_times(Log, St, KeyEvery) ->
    io:format("~n"),
    report("encode a save, stock term_to_binary(compressed)", [ T || #{ stock_us := T } <- Log ]),
    report("encode a save, ours (delta or keyframe)", [ T || #{ encode_us := T } <- Log ]),
    Codec = codec(St),
    rand:seed(exsss, {9, 9, 9}),
    Sample = [ E || E <- Log, rand:uniform(5) =:= 1 ],
    Recon = [ begin
                  {Us, {ok, Got}} = best_of(fun() -> backup_revision_codec:decode(Chain, Codec) end),
                  Got =:= Props orelse error({reconstruct_mismatch, Id}),
                  {length(Chain) - 1, Us}
              end || #{ chain := Chain, props := Props, rsc_id := Id } <- Sample ],
    StockDecode = [ element(1, best_of(fun() -> binary_to_term(B) end))
                    || #{ props := P } <- Sample, B <- [term_to_binary(P, [compressed])] ],
    report("reconstruct a revision, stock binary_to_term", StockDecode),
    report("reconstruct a revision, ours (any chain length)", [ T || {_, T} <- Recon ]),
    report_chains(Recon, KeyEvery).

report_chains(Recon, KeyEvery) ->
    lists:foreach(
        fun({Lo, Hi}) ->
            case [ T || {L, T} <- Recon, L >= Lo, L =< Hi ] of
                [] -> ok;
                Ts -> report(io_lib:format("  chain of ~b-~b deltas", [Lo, Hi]), Ts)
            end
        end,
        [{0, 0}, {1, 9}, {10, 24}, {25, 39}, {40, KeyEvery}]).

%% ---------------------------------------------------------------------------------------------
%% Long histories

long(Opts) ->
    NRes = maps:get(resources, Opts, 40),
    KeyEvery = maps:get(key_every, Opts, 50),
    Seed = maps:get(seed, Opts, 42),
    rand:seed(exsss, {Seed, Seed, Seed}),
    io:format("~n== long histories: ~b resources, keyframe every ~b saves~n", [NRes, KeyEvery]),
    Histories = [ history(rand:uniform(196) + 4, rand:uniform(41) + 19) || _ <- lists:seq(1, NRes) ],
    % The site's dictionary, trained on the first ten resources as the live site would.
    Dicts = backup_nif:revision_dicts_new(),
    Train = [ [ term_to_binary(P) || P <- lists:sublist(H, 8) ] || H <- lists:sublist(Histories, 10) ],
    {ok, #{ dict := Dict }} = backup_revision_dict:train_job(Dicts, 0, Train, []),
    ok = backup_nif:revision_dict_put(Dicts, 1, Dict, true),
    Codec = backup_revision_codec:codec(Dicts, 1, fun(_) -> {error, none} end),
    Results = [ bench_resource(H, KeyEvery, Codec) || H <- Histories ],
    Saves = lists:sum([S || #{saves := S} <- Results]),
    Stock = lists:sum([B || #{stock := B} <- Results]),
    Ours = lists:sum([B || #{ours := B} <- Results]),
    Keys = lists:sum([B || #{key_bytes := B} <- Results]),
    io:format("saves: ~b; props per save: ~s KB mean (term_to_binary, uncompressed)~n",
              [Saves, kb(lists:sum([B || #{raw := B} <- Results]) / Saves)]),
    io:format("stored by stock (erlang rows): ~s KB~n", [kb(Stock)]),
    io:format("stored by ours (zkey2 + zdelta2): ~s KB (keyframes ~s KB, deltas ~s KB, "
              "mean delta ~b bytes) + a ~s KB dictionary~n",
              [kb(Ours), kb(Keys), kb(Ours - Keys), round((Ours - Keys) / max(1, Saves - NRes)), kb(byte_size(Dict))]),
    io:format("storage ratio stock/ours: ~.1fx~n", [Stock / (Ours + byte_size(Dict))]),
    report("encode a save, stock term_to_binary(compressed)", lists:append([T || #{stock_us := T} <- Results])),
    report("encode a save, ours (delta or keyframe)", lists:append([T || #{encode_us := T} <- Results])),
    Recon = lists:append([T || #{reconstruct := T} <- Results]),
    report("reconstruct a revision, stock binary_to_term", lists:append([T || #{stock_decode_us := T} <- Results])),
    report("reconstruct a revision, ours (any chain length)", [T || {_, T} <- Recon]),
    report_chains(Recon, KeyEvery),
    ok.

bench_resource(History, KeyEvery, Codec) ->
    Indexed = lists:zip(lists:seq(0, length(History) - 1), History),
    {Rows, _} = lists:mapfoldl(
        fun({I, P}, Prev) ->
            {Us, {ok, Row}} = best_of(fun() -> encode(I, KeyEvery, Prev, P, Codec) end),
            {{Row, Us}, P}
        end,
        undefined,
        Indexed
    ),
    StockRows = [{best_of(fun() -> term_to_binary(P, [compressed]) end), P} || P <- History],
    Stored = [R || {R, _} <- Rows],
    %% Reconstruct a sample of revisions (all of them for short histories), checking each.
    Sample = [I || {I, _} <- Indexed, I < 10 orelse rand:uniform(4) =:= 1],
    Recon = [reconstruct(I, KeyEvery, Stored, lists:nth(I + 1, History), Codec) || I <- Sample],
    StockDecode = [element(1, best_of(fun() -> binary_to_term(lists:nth(I + 1, [B || {{_, B}, _} <- StockRows])) end))
                   || I <- Sample],
    #{
        saves => length(History),
        raw => lists:sum([byte_size(term_to_binary(P)) || P <- History]),
        stock => lists:sum([byte_size(B) || {{_, B}, _} <- StockRows]),
        ours => lists:sum([byte_size(D) || {_, D} <- Stored]),
        key_bytes => lists:sum([byte_size(D) || {T, D} <- Stored, backup_revision_codec:is_full(T)]),
        stock_us => [T || {{T, _}, _} <- StockRows],
        encode_us => [T || {_, T} <- Rows],
        stock_decode_us => StockDecode,
        reconstruct => Recon
    }.

encode(I, KeyEvery, _Prev, P, Codec) when I rem KeyEvery =:= 0 ->
    backup_revision_codec:encode_keyframe(P, Codec);
encode(_I, _KeyEvery, Prev, P, Codec) ->
    backup_revision_codec:encode_delta(Prev, P, Codec).

reconstruct(I, KeyEvery, Stored, Want, Codec) ->
    Start = I - I rem KeyEvery,
    Chain = lists:sublist(Stored, Start + 1, I - Start + 1),
    {Us, {ok, Got}} = best_of(fun() -> backup_revision_codec:decode(Chain, Codec) end),
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
    zb_test_util:memo({?MODULE, L}, fun() -> make_vocab(L) end).

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
