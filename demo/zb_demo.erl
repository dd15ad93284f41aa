%% Size: one linear script of the demo's steps, read top to bottom; splitting it would only
%% scatter the steps.
%%
%% @doc The demo behind `sh tools/demo.sh': a populated site backed up by mod_backup, checked,
%% restored into a second site and compared, next to the stock method timed in the same run.
%%
%% Runs in the test host (this module is compiled only in the rebar3 `test' profile, like the
%% rest of zotonic_host/). Steps:
%% <ol>
%% <li>site `zbdemo' with the generated media tree hard-linked into its files/archive dir, a
%%     couple of thousand resources (articles, images with medium records, persons), edges
%%     between them and an edit history, all through m_rsc_update/m_edge/m_media, so the
%%     revision log records them as a site's would;</li>
%% <li>the stock method, timed: `pg_dump --compress=7' and `tar -czf' of the media dir;</li>
%% <li>a full backup through mod_backup:start_backup/1 with a progress bar fed by the MQTT
%%     topic model/backup/event/backup;</li>
%% <li>the set from backup.json (files, sizes, sha256, checked against the files), `zbackup
%%     verify' of each archive, `gzip -t' of the dump, `zbackup restore-check' when the CLI has
%%     it;</li>
%% <li>site `zbdemo_restore': the set copied into its backup dir and restored with
%%     mod_backup:restore_backup/3 (database, files, security, config), then every table
%%     compared (row count and md5 of the rows) and `diff -r' of the media, security and config
%%     files;</li>
%% <li>revision storage: the rows as this module stores them (zkey2 + zdelta2, with the site's
%%     dictionaries; and again after mod_backup:revisions_compact/1) against the same
%%     rows rewritten as stock `erlang' rows by mod_backup:revisions_downgrade/1 on the restored
%%     copy;</li>
%% <li>one table with both methods' times and sizes.</li>
%% </ol>
%% Both sites are dropped at the end (and leftovers of an interrupted run at the start).
%%
%% Run (tools/demo.sh does all of this):
%%   erl -noshell -pa _build/test/lib/zotonic_mod_backup/ebin -run zb_demo main TREE WORKDIR
%% Environment: PGHOST/PGPORT/PGUSER/PGPASSWORD (tools/pg_env.sh), ZB_DEMO_TTY=1 to draw the
%% progress bar in place, ZB_DEMO_ARTICLES (1500), ZB_DEMO_WORKERS (4).
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

-module(zb_demo).

-export([main/1]).

% Zotonic's API as Zotonic exports it (or called by name: supervisors, observers); nothing
% here calls it directly.
-ignore_xref([main/1]).

-include_lib("zotonic_core/include/zotonic.hrl").

-define(SITE, zbdemo).
-define(RESTORE_SITE, zbdemo_restore).
-define(TOPIC, <<"model/backup/event/backup">>).
-define(PERSONS, 50).
-define(IMAGES, 300).

%% ---------------------------------------------------------------------------------------------
%% Entry points

%% @doc `-run zb_demo main TREE WORKDIR': run the demo and halt with 0 when everything held.
-spec main([string()]) -> no_return().
main([Tree, Work]) ->
    Status = try run(Tree, Work) of
        ok -> 0;
        {error, Reason} ->
            io:format("~nDEMO FAILED: ~p~n", [Reason]),
            1
    catch
        Class:Reason:Stack ->
            io:format("~nDEMO FAILED: ~p:~p~n~p~n", [Class, Reason, Stack]),
            1
    end,
    _ = (catch zotonic_host:stop_site(?SITE)),
    _ = (catch zotonic_host:stop_site(?RESTORE_SITE)),
    halt(Status);
main(_) ->
    io:format("usage: zb_demo main TREE WORKDIR~n"),
    halt(2).

%% @doc The whole demo. Tree is the generated media tree, Work a scratch dir (sites, stock
%% files, log).
-spec run(Tree, Work) -> ok | {error, term()} when
    Tree :: file:filename(),
    Work :: file:filename().
run(Tree0, Work0) ->
    Tree = filename:absname(Tree0),
    Work = filename:absname(Work0),
    ok = setup_logging(Work),
    ok = cleanup_leftovers(Work),

    step("starting the demo site ~p (test host, PostgreSQL ~s)", [?SITE, os:getenv("PGHOST", "")]),
    {ok, Ctx} = zotonic_host:start_site(?SITE, #{ dir => filename:join([Work, "sites", "a"]) }),
    Archive = z_path:media_archive(Ctx),
    {0, _} = cmd(["cp", "-al", Tree ++ "/.", Archive]),
    {NFiles, NBytes} = tree_stats(Archive),
    info("media: ~b files, ~s (hard links to ~s)", [NFiles, mib(NBytes), Tree]),

    step("filling it: resources, edges and an edit history through m_rsc_update/m_edge/m_media", []),
    {PopUs, Pop} = timer:tc(fun() -> populate(Ctx, Archive) end),
    info("~b articles, ~b images with medium records, ~b persons; ~b edits of the articles "
         "(~.1f per article, at most ~b); ~b edges; ~b deleted; in ~s",
         [maps:get(articles, Pop), maps:get(images, Pop), maps:get(persons, Pop), maps:get(edits, Pop),
          maps:get(edits, Pop) / max(1, maps:get(articles, Pop)), maps:get(max_edits, Pop),
          maps:get(edges, Pop), maps:get(deleted, Pop), secs(PopUs)]),
    ?LOG_INFO(#{ in => zb_demo, text => <<"Demo site populated">>, site => ?SITE, counts => Pop, micros => PopUs }),
    ok = z_edge_log_server:sync(Ctx),
    % A dictionary training the saves started may still run: let it end, so the site is still.
    ok = wait_training(Ctx),
    Counts = table_counts([rsc, edge, medium, backup_revision, backup_edge_log, backup_medium_log], Ctx),
    info("rows: ~s", [lists:join(", ", [ io_lib:format("~s ~b", [T, N]) || {T, N} <- Counts ])]),

    % Both methods read the media from the page cache: one read of the tree first.
    {0, _} = sh("tar -cf - -C \"$0\" . > /dev/null", [Archive]),

    step("the stock method, timed: pg_dump --compress=7 and tar -czf", []),
    Stock = stock_backup(Ctx, Archive, filename:join(Work, "stock")),
    info("pg_dump --compress=7: ~s, ~s", [secs(maps:get(db_us, Stock)), mib(maps:get(db_bytes, Stock))]),
    info("tar -czf:             ~s, ~s", [secs(maps:get(tar_us, Stock)), mib(maps:get(tar_bytes, Stock))]),

    step("a full backup with mod_backup:start_backup/1 (progress from MQTT ~s)", [?TOPIC]),
    {ok, Ours} = our_backup(Ctx),
    Dir = z_path:files_subdir_ensure(<<"backup">>, Ctx),
    {Name, Entry} = newest_set(Dir),
    ?LOG_INFO(#{ in => zb_demo, text => <<"Demo backup done">>, site => ?SITE, set => Name, timings => Ours, stock => Stock }),

    step("the set ~s in ~s (from backup.json)", [Name, Dir]),
    {ok, SetFiles} = print_set(Dir, Entry),

    step("verifying the set", []),
    ok = verify_set(Dir, Entry),

    step("restoring it into a second site, ~p", [?RESTORE_SITE]),
    {ok, Ctx2} = zotonic_host:start_site(?RESTORE_SITE, #{ dir => filename:join([Work, "sites", "b"]) }),
    {RestoreUs, RestoreHow} = timer:tc(fun() -> restore(Dir, Name, Entry, Ctx2) end),
    info("restored (~s) in ~s", [RestoreHow, secs(RestoreUs)]),

    step("proving the copy equal: every table (rows + md5 of the rows), diff -r of the files", []),
    ok = compare_sites(Ctx, Ctx2, RestoreHow),

    step("revision storage: ours (zkey2 + zdelta2 and the site's dictionaries) against the same rows as stock erlang rows", []),
    Rev = revision_storage(Ctx, Ctx2),

    step("summary (same machine, same run; stock = what Zotonic's own mod_backup runs)", []),
    summary(Stock, Ours, SetFiles, Rev, NBytes),

    zotonic_host:stop_site(?RESTORE_SITE),
    zotonic_host:stop_site(?SITE),
    _ = file:del_dir_r(filename:join(Work, "stock")),
    ok.

%% ---------------------------------------------------------------------------------------------
%% Setup

setup_logging(Work) ->
    ok = filelib:ensure_path(Work),
    Log = filename:join(Work, "demo.log"),
    _ = file:delete(Log),
    ok = logger:set_primary_config(level, info),
    ok = logger:set_handler_config(default, level, error),
    ok = logger:add_handler(zb_demo_log, logger_std_h, #{ level => info, config => #{ file => Log } }),
    ok.

%% Sites of an interrupted run: their dirs and their databases.
cleanup_leftovers(Work) ->
    _ = file:del_dir_r(filename:join(Work, "sites")),
    _ = file:del_dir_r(filename:join(Work, "stock")),
    {0, Out} = cmd(["psql", "-X", "-q", "-d", "postgres", "-tAc",
                    "select datname from pg_database where datname like 'zh\\_zbdemo%'"]),
    lists:foreach(
        fun(Db) ->
            info("dropping the database ~s of an earlier run", [Db]),
            {_, _} = cmd(["psql", "-X", "-q", "-d", "postgres", "-c",
                          "DROP DATABASE IF EXISTS \"" ++ binary_to_list(Db) ++ "\""])
        end,
        lines(Out)),
    ok.

%% ---------------------------------------------------------------------------------------------
%% Populating the site

populate(Ctx, Archive) ->
    rand:seed(exsss, {7, 11, 13}),
    Workers = env_int("ZB_DEMO_WORKERS", 4),
    NArticles = env_int("ZB_DEMO_ARTICLES", 1500),
    Sudo = z_acl:sudo(Ctx),
    Editor = zotonic_host:context(?SITE, editor),
    Persons = parallel(Workers, lists:seq(1, ?PERSONS), fun(N) ->
        {ok, Id} = m_rsc_update:insert(#{
            <<"category">> => person,
            <<"title">> => iolist_to_binary([words(2), " ", integer_to_binary(N)]),
            <<"summary">> => sentence(),
            <<"is_published">> => true
        }, Sudo),
        Id
    end),
    Media = lists:sublist(media_files(Archive), ?IMAGES),
    Images = parallel(Workers, Media, fun({Rel, Size}) ->
        {Cat, Mime} = case filename:extension(Rel) of
            <<".mp4">> -> {document, <<"video/mp4">>};
            <<".html">> -> {document, <<"text/html">>};
            _ -> {image, <<"image/jpeg">>}
        end,
        {ok, Id} = m_rsc_update:insert(#{
            <<"category">> => Cat,
            <<"title">> => iolist_to_binary(["Media ", filename:basename(Rel)]),
            <<"is_published">> => true
        }, Sudo),
        ok = m_media:replace(Id, #{
            <<"filename">> => Rel,
            <<"rootname">> => filename:rootname(filename:basename(Rel)),
            <<"original_filename">> => filename:basename(Rel),
            <<"mime">> => Mime,
            <<"size">> => Size,
            <<"width">> => 1600,
            <<"height">> => 1200
        }, Sudo),
        Id
    end),
    % Articles: inserted, edited once, and one in ten edited 10-25 more times, by the editor.
    Seeds = [ {N, rand:uniform(1 bsl 30)} || N <- lists:seq(1, NArticles) ],
    Results = parallel(Workers, Seeds, fun({N, Seed}) ->
        rand:seed(exsss, {Seed, N, 3}),
        Props0 = article(N),
        {ok, Id} = m_rsc_update:insert(Props0, Editor),
        % Saves after the first: most pages a few, one in ten many (a page that is worked on).
        Edits = case N rem 10 of
            0 -> 15 + rand:uniform(26);
            _ -> geometric(3)
        end,
        _ = lists:foldl(
            fun(_, P) ->
                Change = edit(P),
                {ok, Id} = m_rsc_update:update(Id, Change, Editor),
                maps:merge(P, Change)
            end,
            Props0,
            lists:seq(1, Edits)),
        {Id, Edits}
    end),
    Articles = [ Id || {Id, _} <- Results ],
    ArticleT = list_to_tuple(Articles),
    PersonT = list_to_tuple(Persons),
    ImageT = list_to_tuple(Images),
    Pick = fun(T) -> element(rand:uniform(tuple_size(T)), T) end,
    EdgeSpecs = lists:append([
        [ {Id, author, Pick(PersonT)} || Id <- Articles ],
        [ {Id, depiction, Pick(ImageT)} || Id <- Articles, rand:uniform(2) =:= 1 ],
        [ {Id, relation, Pick(ArticleT)} || Id <- Articles, _ <- lists:seq(1, rand:uniform(2)) ]
    ]),
    Edges = parallel(Workers, lists:usort([ E || {S, _, O} = E <- EdgeSpecs, S =/= O ]), fun({S, P, O}) ->
        {ok, EdgeId} = m_edge:insert(S, P, O, Sudo),
        EdgeId
    end),
    % Some pages are deleted, as on any site: deleted revisions, edge log, rsc_gone.
    Deleted = lists:sublist(lists:reverse(Articles), 20),
    [ ok = m_rsc_update:delete(Id, Sudo) || Id <- Deleted ],
    #{
        articles => length(Articles),
        images => length(Images),
        persons => length(Persons),
        edits => lists:sum([ E || {_, E} <- Results ]),
        max_edits => lists:max([ E || {_, E} <- Results ]),
        edges => length(Edges),
        deleted => length(Deleted)
    }.

%% 1 + a geometric number with mean Mean - 1.
geometric(Mean) ->
    case rand:uniform() < 1 / Mean of
        true -> 1;
        false -> 1 + geometric(Mean)
    end.

%% Run Fun over Items in Workers processes; results in the order of Items.
parallel(Workers, Items, Fun) ->
    Parent = self(),
    Indexed = lists:zip(lists:seq(1, length(Items)), Items),
    Chunks = [ [ X || {I, _} = X <- Indexed, I rem Workers =:= W ] || W <- lists:seq(0, Workers - 1) ],
    Pids = [ spawn_link(fun() ->
                 _ = rand:seed(exsss, {W, 17, 19}),
                 Parent ! {self(), [ {I, Fun(X)} || {I, X} <- Chunk ]}
             end) || {W, Chunk} <- lists:zip(lists:seq(1, Workers), Chunks) ],
    Results = lists:append([ receive {Pid, R} -> R end || Pid <- Pids ]),
    [ R || {_, R} <- lists:keysort(1, Results) ].

media_files(Archive) ->
    Files = filelib:fold_files(Archive, ".*", true, fun(F, Acc) -> [F | Acc] end, []),
    Prefix = byte_size(unicode:characters_to_binary(Archive)) + 1,
    lists:sort([ {binary:part(B, Prefix, byte_size(B) - Prefix), filelib:file_size(F)}
                 || F <- Files, B <- [unicode:characters_to_binary(F)] ]).

%% A page like a site's: a title, a summary, an HTML body of 1-12 paragraphs in English and
%% Dutch, some plain properties.
article(N) ->
    #{
        <<"category">> => article,
        <<"title">> => {trans, [{en, iolist_to_binary([words(3 + rand:uniform(4)), " ", integer_to_binary(N)])},
                                {nl, words(4)}]},
        <<"summary">> => {trans, [{en, sentence()}, {nl, sentence()}]},
        <<"body">> => {trans, [{en, body(1 + rand:uniform(12))}, {nl, body(1 + rand:uniform(6))}]},
        <<"is_published">> => true,
        <<"publication_start">> => {{2020 + rand:uniform(5), rand:uniform(12), rand:uniform(28)}, {9, 0, 0}},
        <<"seo_keywords">> => words(5),
        <<"subtitle">> => words(4)
    }.

%% One save's change: mostly a small edit of one or two texts; now and then a rewrite.
edit(#{ <<"title">> := {trans, Title}, <<"body">> := {trans, Body}, <<"summary">> := {trans, Summary} }) ->
    case rand:uniform(100) of
        R when R =< 40 ->
            #{ <<"body">> => {trans, lists:keyreplace(en, 1, Body, {en, change_sentence(proplists:get_value(en, Body))})} };
        R when R =< 60 ->
            #{ <<"body">> => {trans, lists:keyreplace(en, 1, Body, {en, <<(proplists:get_value(en, Body))/binary, (body(1))/binary>>})} };
        R when R =< 75 ->
            #{ <<"summary">> => {trans, lists:keyreplace(en, 1, Summary, {en, sentence()})} };
        R when R =< 85 ->
            #{ <<"title">> => {trans, lists:keyreplace(en, 1, Title, {en, iolist_to_binary([proplists:get_value(en, Title), " ", words(1)])})} };
        R when R =< 97 ->
            #{ <<"seo_keywords">> => words(5), <<"body">> => {trans, lists:keyreplace(nl, 1, Body, {nl, change_sentence(proplists:get_value(nl, Body))})} };
        _ ->
            #{ <<"body">> => {trans, lists:keyreplace(en, 1, Body, {en, body(1 + rand:uniform(12))})} }
    end.

change_sentence(Html) ->
    Parts = binary:split(Html, <<". ">>, [global]),
    K = rand:uniform(length(Parts)),
    {Before, [_ | After]} = lists:split(K - 1, Parts),
    iolist_to_binary(lists:join(<<". ">>, Before ++ [words(6 + rand:uniform(10)) | After])).

body(Paragraphs) ->
    iolist_to_binary([ ["<p>", [ sentence() || _ <- lists:seq(1, 3 + rand:uniform(5)) ], "</p>\n"]
                       || _ <- lists:seq(1, Paragraphs) ]).

sentence() ->
    <<First:8, Rest/binary>> = words(6 + rand:uniform(12)),
    <<(string:to_upper(First)):8, Rest/binary, ". ">>.

words(N) ->
    iolist_to_binary(lists:join(" ", [ word() || _ <- lists:seq(1, N) ])).

%% A Zipf-like choice from a fixed vocabulary of made-up words: text that compresses like prose.
word() ->
    Vocab = vocabulary(),
    I = min(tuple_size(Vocab), trunc(math:pow(tuple_size(Vocab), rand:uniform()))),
    element(max(1, I), Vocab).

vocabulary() ->
    case persistent_term:get({?MODULE, vocabulary}, undefined) of
        undefined ->
            Syl = {<<"ka">>, <<"ro">>, <<"mi">>, <<"te">>, <<"lun">>, <<"sa">>, <<"ver">>, <<"do">>,
                   <<"an">>, <<"is">>, <<"pol">>, <<"ze">>, <<"ni">>, <<"bor">>, <<"et">>, <<"ga">>},
            {Words, _} = lists:mapfoldl(
                fun(_, S0) ->
                    {Len, S1} = rand:uniform_s(3, S0),
                    lists:mapfoldl(fun(_, S) -> {I, S2} = rand:uniform_s(16, S), {element(I, Syl), S2} end,
                                   S1, lists:seq(0, Len))
                end,
                rand:seed_s(exsss, {1, 2, 3}),
                lists:seq(1, 3000)),
            V = list_to_tuple([ iolist_to_binary(W) || W <- Words ]),
            persistent_term:put({?MODULE, vocabulary}, V),
            V;
        V ->
            V
    end.

%% ---------------------------------------------------------------------------------------------
%% The stock method

stock_backup(Ctx, Archive, Dir) ->
    ok = filelib:ensure_path(Dir ++ "/"),
    DbOpts = z_db_pool:get_database_options(Ctx),
    Sql = filename:join(Dir, "stock.sql.gz"),
    Tar = filename:join(Dir, "stock.tar.gz"),
    {DbUs, {0, _}} = timer:tc(fun() ->
        cmd(["pg_dump", "-h", opt(dbhost, DbOpts), "-p", opt(dbport, DbOpts), "-U", opt(dbuser, DbOpts),
             "-w", "--compress=7", "--quote-all-identifiers", "-n", opt(dbschema, DbOpts),
             "-f", Sql, opt(dbdatabase, DbOpts)])
    end),
    {TarUs, {0, _}} = timer:tc(fun() -> cmd(["tar", "-C", Archive, "-czf", Tar, "."]) end),
    #{ db_us => DbUs, db_bytes => filelib:file_size(Sql), tar_us => TarUs, tar_bytes => filelib:file_size(Tar) }.

%% ---------------------------------------------------------------------------------------------
%% Our backup, with the progress bar

our_backup(Ctx) ->
    ok = z_mqtt:subscribe(?TOPIC, Ctx),
    T0 = now_us(),
    ok = mod_backup:start_backup(Ctx),
    Tty = os:getenv("ZB_DEMO_TTY") =:= "1",
    Marks = progress_loop(T0, Tty, #{ last => -1 }),
    ok = z_mqtt:unsubscribe(?TOPIC, Ctx),
    ok = wait_idle(Ctx, 600),
    case Marks of
        #{ <<"completed">> := Done } ->
            Sql = maps:get(<<"sql_backup_started">>, Marks, 0),
            Arch = maps:get(<<"archive_backup_started">>, Marks, Sql),
            {ok, #{ total_us => Done, db_us => Arch - Sql, files_us => Done - Arch }};
        _ ->
            {error, {backup_failed, Marks}}
    end.

progress_loop(T0, Tty, Marks) ->
    receive
        {mqtt_msg, #{ payload := #{ status := <<"progress">>, percent := P } = Payload }} ->
            Phase = maps:get(phase, Payload, <<>>),
            Marks1 = draw(P, Phase, now_us() - T0, Tty, Marks),
            progress_loop(T0, Tty, Marks1);
        {mqtt_msg, #{ payload := #{ status := Status } }} when Status =:= <<"completed">>; Status =:= <<"error">> ->
            Elapsed = now_us() - T0,
            _ = draw(100, Status, Elapsed, Tty, Marks#{ last => -1 }),
            io:format("~n"),
            Marks#{ Status => Elapsed };
        {mqtt_msg, #{ payload := #{ status := Status } }} ->
            progress_loop(T0, Tty, Marks#{ Status => now_us() - T0 });
        {mqtt_msg, _} ->
            progress_loop(T0, Tty, Marks)
    after 600000 ->
        Marks#{ <<"timeout">> => now_us() - T0 }
    end.

draw(Percent, Phase, Elapsed, true, Marks) ->
    Filled = Percent * 40 div 100,
    io:format("\r    [~s~s] ~3b%  ~-14s ~6.1f s",
              [lists:duplicate(Filled, $#), lists:duplicate(40 - Filled, $.), Percent,
               phase_name(Phase), Elapsed / 1.0e6]),
    Marks;
draw(Percent, Phase, Elapsed, false, #{ last := Last } = Marks) ->
    % Not a terminal: one line per 10%.
    Step = Percent div 10,
    case Step > Last of
        true ->
            io:format("    [~s~s] ~3b%  ~-14s ~6.1f s~n",
                      [lists:duplicate(Percent * 40 div 100, $#), lists:duplicate(40 - Percent * 40 div 100, $.),
                       Percent, phase_name(Phase), Elapsed / 1.0e6]),
            Marks#{ last => Step };
        false ->
            Marks
    end.

phase_name(<<"database">>) -> "database";
phase_name(<<"config_files">>) -> "config files";
phase_name(<<"files">>) -> "media archive";
phase_name(<<"done">>) -> "registering";
phase_name(<<"completed">>) -> "completed";
phase_name(P) when is_binary(P) -> binary_to_list(P);
phase_name(P) -> io_lib:format("~p", [P]).

wait_idle(_Ctx, 0) ->
    {error, timeout};
wait_idle(Ctx, N) ->
    case mod_backup:backup_in_progress(Ctx) orelse mod_backup:is_uploading(Ctx) of
        true -> timer:sleep(100), wait_idle(Ctx, N - 1);
        false -> ok
    end.

newest_set(Dir) ->
    {ok, Json} = file:read_file(filename:join(Dir, "backup.json")),
    Index = z_json:decode(Json),
    [{_, Name, Entry} | _] = lists:reverse(lists:sort([ {maps:get(<<"timestamp">>, E, 0), N, E}
                                                       || {N, E} <- maps:to_list(Index) ])),
    {Name, Entry}.

%% ---------------------------------------------------------------------------------------------
%% The set: files, sizes, hashes, checks

print_set(Dir, Entry) ->
    info("~-34s ~12s  ~-64s  ~s", ["file", "size", "sha256 (backup.json)", "sha256 of the file"]),
    Files = lists:filtermap(
        fun(Key) ->
            case maps:get(Key, Entry, null) of
                File when is_binary(File) ->
                    Path = filename:join(Dir, File),
                    {ok, #{ sha256 := Sha, size := Size }} = backup_nif:file_digest(Path),
                    Recorded = maps:get(<<Key/binary, "_hash">>, Entry),
                    Ok = case Recorded =:= Sha of true -> "ok"; false -> "MISMATCH" end,
                    info("~-34s ~12s  ~s  ~s", [File, mib(Size), Recorded, Ok]),
                    {true, {Key, #{ file => File, size => Size, ok => Recorded =:= Sha }}};
                _ ->
                    false
            end
        end,
        [<<"database">>, <<"config_files">>, <<"files">>]),
    info("encrypted: ~p, uploaded to a filestore: ~p",
         [maps:get(<<"is_encrypted">>, Entry, false), maps:get(<<"is_filestore_uploaded">>, Entry, false)]),
    case lists:all(fun({_, #{ ok := Ok }}) -> Ok end, Files) of
        true -> {ok, maps:from_list(Files)};
        false -> error(sha256_mismatch)
    end.

verify_set(Dir, Entry) ->
    Zb = zbackup(),
    Sql = filename:join(Dir, maps:get(<<"database">>, Entry)),
    {0, _} = cmd(["gzip", "-t", Sql]),
    info("gzip -t ~s: ok", [filename:basename(Sql)]),
    lists:foreach(
        fun(Key) ->
            File = filename:join(Dir, maps:get(Key, Entry)),
            case cmd([Zb, "verify", File]) of
                {0, Out} -> info("zbackup verify ~s: ~s", [filename:basename(File), short(Out)]);
                {_, Out} -> error({verify_failed, File, Out})
            end
        end,
        [ K || K <- [<<"config_files">>, <<"files">>], is_binary(maps:get(K, Entry, null)) ]),
    {0, Help} = cmd([Zb, "help"]),
    case binary:match(Help, <<"restore-check">>) of
        nomatch ->
            info("zbackup restore-check: not in this build of the CLI (zbackup help does not list it); skipped", []);
        _ ->
            case cmd([Zb, "restore-check", Dir]) of
                {0, Out} -> [ info("zbackup restore-check: ~s", [L]) || L <- lines(Out) ], ok;
                {_, Out} -> error({restore_check_failed, Out})
            end
    end,
    ok.

%% ---------------------------------------------------------------------------------------------
%% Restore into the second site

restore(FromDir, Name, Entry, Ctx2) ->
    ToDir = z_path:files_subdir_ensure(<<"backup">>, Ctx2),
    Files = [ F || K <- [<<"database">>, <<"config_files">>, <<"files">>], F <- [maps:get(K, Entry, null)], is_binary(F) ],
    [ {ok, _} = file:copy(filename:join(FromDir, F), filename:join(ToDir, F)) || F <- [<<"backup.json">> | Files] ],
    case restore_available() of
        true ->
            OldPid = whereis(z_utils:name_for_site(mod_backup, ?RESTORE_SITE)),
            ok = mod_backup:restore_backup(Name, [database, files, security, config], Ctx2),
            ok = wait_restarted(OldPid, 300),
            "mod_backup:restore_backup/3 with [database, files, security, config]";
        false ->
            info("mod_backup:restore_backup/3 is not in this build yet: restoring the set by hand "
                 "(gunzip | psql, zbackup extract)", []),
            ok = restore_by_hand(ToDir, Entry, Ctx2),
            "by hand: gunzip | psql and zbackup extract (mod_backup:restore_backup/3 not in this build)"
    end.

restore_available() ->
    _ = code:ensure_loaded(mod_backup),
    erlang:function_exported(mod_backup, restore_backup, 3)
        andalso code:ensure_loaded(backup_restore) =:= {module, backup_restore}.

%% The site restarts after a database restore: wait for its new mod_backup server.
wait_restarted(_OldPid, 0) ->
    {error, not_restarted};
wait_restarted(OldPid, N) ->
    case whereis(z_utils:name_for_site(mod_backup, ?RESTORE_SITE)) of
        Pid when is_pid(Pid), Pid =/= OldPid -> ok;
        _ -> timer:sleep(100), wait_restarted(OldPid, N - 1)
    end.

restore_by_hand(Dir, Entry, Ctx2) ->
    DbOpts = z_db_pool:get_database_options(Ctx2),
    Db = opt(dbdatabase, DbOpts),
    Sql = filename:join(Dir, maps:get(<<"database">>, Entry)),
    {0, _} = cmd(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", Db, "-c", "DROP SCHEMA public CASCADE"]),
    {0, <<>>} = sh("gunzip -c \"$0\" | psql -X -q -o /dev/null -v ON_ERROR_STOP=1 -d \"$1\"", [Sql, Db]),
    Archive = z_path:media_archive(Ctx2),
    _ = file:del_dir_r(Archive),
    {0, _} = cmd([zbackup(), "extract", filename:join(Dir, maps:get(<<"files">>, Entry)), Archive]),
    ok.

%% ---------------------------------------------------------------------------------------------
%% Equality of the two sites

compare_sites(Ctx, Ctx2, RestoreHow) ->
    Tables = lists:usort(tables(Ctx) ++ tables(Ctx2)),
    info("~-26s ~10s ~10s  ~-34s ~s", ["table", "rows", "restored", "md5 of the rows (source)", ""]),
    Results = lists:map(
        fun(T) ->
            {NA, DA} = table_digest(T, Ctx),
            {NB, DB} = table_digest(T, Ctx2),
            Same = {NA, DA} =:= {NB, DB},
            info("~-26s ~10s ~10s  ~-34s ~s", [T, fmt_n(NA), fmt_n(NB), DA, case Same of true -> "equal"; false -> "DIFFERENT" end]),
            Same
        end,
        Tables),
    A = site_dirs(?SITE),
    B = site_dirs(?RESTORE_SITE),
    Media = diff(z_path:media_archive(Ctx), z_path:media_archive(Ctx2)),
    info("diff -r of the media archive dirs: ~s", [Media]),
    Checks = case RestoreHow of
        "mod_backup" ++ _ ->
            Sec = diff(maps:get(security, A), maps:get(security, B)),
            info("diff -r of the security dirs: ~s", [Sec]),
            Cfg = diff_files(filename:join([maps:get(site, A), "priv"]), filename:join([maps:get(site, B), "priv"])),
            info("site config files (priv/zotonic_site.config, priv/config.d/*): ~s", [Cfg]),
            [Media, Sec, Cfg];
        _ ->
            [Media]
    end,
    case lists:all(fun(S) -> S end, Results) andalso lists:all(fun(C) -> C =:= "identical" end, Checks) of
        true -> ok;
        false -> error(restored_site_differs)
    end.

tables(Ctx) ->
    [ T || {T} <- z_db:q("select tablename::text from pg_tables where schemaname = 'public' order by 1", Ctx) ].

table_digest(T, Ctx) ->
    case lists:member(T, tables(Ctx)) of
        false ->
            {missing, "-"};
        true ->
            Q = ["select count(*), md5(coalesce(string_agg(t::text, E'\\n' order by t::text), '')) from \"public\".\"",
                 binary:replace(T, <<"\"">>, <<"\"\"">>, [global]), "\" t"],
            [{N, Md5}] = z_db:q(iolist_to_binary(Q), Ctx),
            {N, binary_to_list(Md5)}
    end.

table_counts(Tables, Ctx) ->
    [ {T, z_db:q1(iolist_to_binary(["select count(*) from ", atom_to_list(T)]), Ctx)} || T <- Tables ].

site_dirs(Site) ->
    maps:get(dirs, zotonic_host:site_info(Site)).

diff(A, B) ->
    case cmd(["diff", "-r", A, B]) of
        {0, _} -> "identical";
        {_, Out} -> "DIFFERENT: " ++ short(Out)
    end.

%% The site config files the backup carries, compared one by one (the restored site's priv
%% holds exactly those).
diff_files(A, B) ->
    Files = [ F || F <- ["zotonic_site.config"] ++ [ filename:join("config.d", C) || C <- list_dir(filename:join(A, "config.d")) ] ],
    case [ F || F <- Files, file:read_file(filename:join(A, F)) =/= file:read_file(filename:join(B, F)) ] of
        [] -> "identical";
        Diff -> "DIFFERENT: " ++ lists:join(", ", Diff)
    end.

list_dir(D) ->
    case file:list_dir(D) of
        {ok, L} -> lists:sort(L);
        {error, _} -> []
    end.

%% ---------------------------------------------------------------------------------------------
%% Revision storage

revision_storage(Ctx, Ctx2) ->
    Ours = revision_bytes(Ctx),
    OursLong = long_history_bytes(Ctx),
    lists:foreach(
        fun({Type, N, Bytes}) -> info("~-12s ~8b rows ~12s", [Type, N, mib(Bytes)]) end,
        Ours),
    % Reconstruct a sample of revisions the way the admin's revision list does.
    Ids = [ Id || {Id} <- z_db:q("select id from backup_revision order by random() limit 400", Ctx) ],
    Times = lists:sort([ element(1, timer:tc(fun() -> {ok, _} = m_backup_revision:get_revision(Id, Ctx) end)) || Id <- Ids ]),
    info("reconstructing a revision (m_backup_revision:get_revision/2, with its query): p50 ~.2f ms, p99 ~.2f ms (~b samples)",
         [pct(Times, 50) / 1000, pct(Times, 99) / 1000, length(Times)]),
    {DownUs, {ok, Down}} = timer:tc(fun() -> mod_backup:revisions_downgrade(Ctx2) end),
    Stock = revision_bytes(Ctx2),
    info("mod_backup:revisions_downgrade/1 on the restored copy rewrote ~b rows as stock erlang rows in ~s (~b errors)",
         [maps:get(rows, Down), secs(DownUs), maps:get(errors, Down)]),
    lists:foreach(
        fun({Type, N, Bytes}) -> info("~-12s ~8b rows ~12s", [Type, N, mib(Bytes)]) end,
        Stock),
    {LongRes, LongRows, LongOurs} = OursLong,
    {_, _, LongStock} = long_history_bytes(Ctx2),
    info("of which the ~b pages with 16 or more saves (~b rows): stock ~s, ours ~s (~.1fx smaller)",
         [LongRes, LongRows, mib(LongStock), mib(LongOurs), LongStock / max(1, LongOurs)]),
    StockBytes = lists:sum([ B || {_, _, B} <- Stock ]),
    OursBytes = lists:sum([ B || {_, _, B} <- Ours ]),
    info("ours vs stock: ~.1fx smaller (the dictionaries included)", [StockBytes / max(1, OursBytes)]),
    % What revisions_compact/1 makes of the live log: every row with the newest dictionary.
    {CompactUs, {done, CStats}} = timer:tc(fun() -> backup_revision_compact:compact(Ctx) end),
    Compacted = revision_bytes(Ctx),
    CompactedBytes = lists:sum([ B || {_, _, B} <- Compacted ]),
    info("after mod_backup:revisions_compact/1 (~s, ~b rows rewritten, ~b errors): ~s, ~.1fx smaller than stock",
         [secs(CompactUs), maps:get(rows, CStats), maps:get(errors, CStats), mib(CompactedBytes),
          StockBytes / max(1, CompactedBytes)]),
    #{
        rows => lists:sum([ N || {T, N, _} <- Ours, T =/= <<"dictionaries">> ]),
        ours => OursBytes,
        compacted => CompactedBytes,
        stock => StockBytes,
        p99_us => pct(Times, 99)
    }.

%% Until no dictionary training runs in the background.
wait_training(Ctx) ->
    case backup_revision_dict:is_training(Ctx) of
        true -> timer:sleep(100), wait_training(Ctx);
        false -> ok
    end.

%% Resources with long histories (16+ saves): how many, their rows and bytes.
long_history_bytes(Ctx) ->
    [{Res, Rows, Bytes}] = z_db:q("
        select count(*), coalesce(sum(n), 0)::bigint, coalesce(sum(b), 0)::bigint
        from (select count(*) as n, sum(octet_length(data)) as b
              from backup_revision group by rsc_id having count(*) >= 16) r", Ctx),
    {Res, Rows, Bytes}.

%% Bytes of the revision rows by data_type, and of the dictionaries they need.
revision_bytes(Ctx) ->
    [ {T, N, z_convert:to_integer(B)}
      || {T, N, B} <- z_db:q("select data_type::text, count(*), sum(octet_length(data))::bigint from backup_revision group by 1 order by 1", Ctx) ]
    ++ [ {<<"dictionaries">>, N, z_convert:to_integer(B)}
         || {N, B} <- z_db:q("select count(*), coalesce(sum(octet_length(data)), 0)::bigint from backup_revision_dict", Ctx),
            N > 0 ].

%% ---------------------------------------------------------------------------------------------
%% The summary table

summary(Stock, Ours, SetFiles, Rev, MediaBytes) ->
    #{ db_us := SDb, db_bytes := SDbB, tar_us := STar, tar_bytes := STarB } = Stock,
    #{ total_us := OTotal, db_us := ODb, files_us := OFiles } = Ours,
    Size = fun(K) -> case maps:get(K, SetFiles, undefined) of #{ size := S } -> S; _ -> 0 end end,
    ODbB = Size(<<"database">>),
    OFilesB = Size(<<"files">>),
    OCfgB = Size(<<"config_files">>),
    Row = fun(Label, SUs, SB, OUs, OB) ->
        io:format("  ~-34s ~9s ~11s ~9s ~11s ~9s ~9s~n",
                  [Label, secs(SUs), mib(SB), secs(OUs), mib(OB), ratio(SUs, OUs), size_ratio(OB, SB)])
    end,
    io:format("~n  ~-34s ~21s ~21s ~19s~n", ["", "stock mod_backup", "this mod_backup", "ours vs stock"]),
    io:format("  ~-34s ~9s ~11s ~9s ~11s ~9s ~9s~n", ["", "time", "size", "time", "size", "speed", "size"]),
    io:format("  ~s~n", [lists:duplicate(108, $-)]),
    Row("database dump (.sql.gz)", SDb, SDbB, ODb, ODbB + OCfgB),
    Row(io_lib:format("media archive (.tar.gz, ~s)", [mib(MediaBytes)]), STar, STarB, OFiles, OFilesB),
    Row("whole set", SDb + STar, SDbB + STarB, OTotal, ODbB + OFilesB + OCfgB),
    #{ rows := RevRows, ours := RevOurs, stock := RevStock, compacted := RevCompacted } = Rev,
    io:format("  ~-34s ~9s ~11s ~9s ~11s ~9s ~9s~n",
              [io_lib:format("revision log (~b rows)", [RevRows]), "", mib(RevStock), "", mib(RevOurs), "",
               size_ratio(RevOurs, RevStock)]),
    io:format("  ~-34s ~9s ~11s ~9s ~11s ~9s ~9s~n",
              ["  after revisions_compact/1", "", mib(RevStock), "", mib(RevCompacted), "",
               size_ratio(RevCompacted, RevStock)]),
    io:format("  ~s~n", [lists:duplicate(108, $-)]),
    io:format("  stock = pg_dump --compress=7 --quote-all-identifiers -n public, then tar -czf of files/archive;~n"
              "  ours  = mod_backup:start_backup/1, phases from its MQTT statuses (our database row includes~n"
              "          the config tar); revision log = backup_revision.data, ours (zkey2 + zdelta2 and the site's~n"
              "          dictionaries) vs the same rows rewritten as stock erlang rows (term_to_binary(Props, [compressed])).~n"),
    ok.

ratio(_, 0) -> "-";
ratio(S, O) -> io_lib:format("~.1fx", [S / O]).

size_ratio(_, 0) -> "-";
size_ratio(O, S) -> io_lib:format("~.2fx", [O / S]).

%% ---------------------------------------------------------------------------------------------
%% Helpers

step(Fmt, Args) ->
    io:format("==> " ++ Fmt ++ "~n", Args).

info(Fmt, Args) ->
    io:format("    " ++ Fmt ++ "~n", Args).

now_us() ->
    erlang:monotonic_time(microsecond).

secs(Us) ->
    io_lib:format("~.1f s", [Us / 1.0e6]).

mib(Bytes) when Bytes >= 1048576 * 10 -> io_lib:format("~b MiB", [round(Bytes / 1048576)]);
mib(Bytes) when Bytes >= 1048576 -> io_lib:format("~.1f MiB", [Bytes / 1048576]);
mib(Bytes) when Bytes >= 1024 -> io_lib:format("~.1f KiB", [Bytes / 1024]);
mib(Bytes) -> io_lib:format("~b B", [Bytes]).

fmt_n(missing) -> "missing";
fmt_n(N) -> integer_to_list(N).

pct([], _) -> 0;
pct(Sorted, P) -> lists:nth(max(1, min(length(Sorted), round(length(Sorted) * P / 100))), Sorted).

short(Bin) ->
    S = string:trim(unicode:characters_to_list(Bin)),
    case length(S) > 160 of
        true -> lists:sublist(S, 157) ++ "...";
        false -> S
    end.

tree_stats(Dir) ->
    filelib:fold_files(Dir, ".*", true, fun(F, {N, B}) -> {N + 1, B + filelib:file_size(F)} end, {0, 0}).

env_int(Name, Default) ->
    case os:getenv(Name) of
        false -> Default;
        V -> list_to_integer(V)
    end.

zbackup() ->
    filename:absname(filename:join([code:priv_dir(zotonic_mod_backup), "native", "zbackup"])).

opt(Key, Opts) ->
    to_list(z_convert:to_binary(proplists:get_value(Key, Opts))).

lines(Bin) ->
    [ L || L <- binary:split(Bin, <<"\n">>, [global]), L =/= <<>> ].

sh(Script, Args) ->
    cmd(["/bin/sh", "-c", Script | Args]).

%% A command without a shell, in this VM's environment (PGHOST etc. from tools/pg_env.sh).
cmd([Exe | Args]) ->
    Path = case filename:pathtype(Exe) of
        absolute -> Exe;
        _ -> os:find_executable(Exe)
    end,
    Port = open_port({spawn_executable, Path},
                     [{args, [ to_list(A) || A <- Args ]}, exit_status, binary, stderr_to_stdout, use_stdio]),
    collect(Port, []).

collect(Port, Acc) ->
    receive
        {Port, {data, D}} -> collect(Port, [D | Acc]);
        {Port, {exit_status, S}} -> {S, iolist_to_binary(lists:reverse(Acc))}
    end.

to_list(B) when is_binary(B) -> unicode:characters_to_list(B);
to_list(I) when is_integer(I) -> integer_to_list(I);
to_list(L) -> unicode:characters_to_list(L).
