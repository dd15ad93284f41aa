%% Size: the cases share one site and one order (the first needs a site without a dictionary);
%% each case is short and named for what it proves.
%%
%% @doc The revision log in the test host against the real PostgreSQL server: the tables of the
%% contract, every save path, keyframe + delta chains that reconstruct every revision exactly
%% (before and after pruning, compacting and downgrading), revert with edges, dependents and
%% medium, the deleted-pages list, retention, ACL and hostile input.
%% Run: eval "$(sh tools/pg_env.sh)" && rebar3 ct --suite test/mod_backup_revision_SUITE
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

-module(mod_backup_revision_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").
-include_lib("zotonic_core/include/zotonic.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1, init_per_testcase/2, end_per_testcase/2]).
-export([
    install_makes_tables_indexes_and_trigger/1,
    save_paths_leave_the_contract_rows/1,
    user_name_is_the_editors_title_cut_at_60/1,
    keyframe_every_n_saves/1,
    history_of_200_reconstructs_exactly/1,
    stock_rows_compact_resumably/1,
    retention_months_prunes_revisions_edges_and_media/1,
    user_and_deleted_user_retention/1,
    tick_24h_prunes_but_not_in_backup_env/1,
    revert_restores_props_edges_dependent_and_medium/1,
    deleted_page_recovered_from_deleted_list/1,
    acl_refuses_revisions_to_those_who_may_not_edit/1,
    corrupt_delta_row_is_an_error_not_a_crash/1,
    update_deltas_from_the_cached_save_without_reading_the_chain/1,
    stale_cache_entry_falls_back_to_the_chain/1,
    revision_cache_never_holds_more_than_256_resources/1,
    rsc_upload_bert_and_json/1,
    corrupt_upload_changes_nothing/1,
    admin_diff_and_revert_through_the_controller/1,
    get_revision_reports_erlang_rows_with_decoded_props/1,
    insert_deleted_revisions_adds_the_missing_deleted_rows/1,
    dictionary_is_trained_while_saves_go_on_and_new_rows_use_it/1,
    lost_or_damaged_dictionary_row_is_an_error_naming_it/1,
    compact_recodes_with_the_newest_dictionary_and_drops_unused_ones/1
]).

-define(SITE, zrev_a).
-define(WAIT, 5000).

all() ->
    [
        install_makes_tables_indexes_and_trigger,
        % First: it needs a site without a dictionary.
        dictionary_is_trained_while_saves_go_on_and_new_rows_use_it,
        save_paths_leave_the_contract_rows,
        user_name_is_the_editors_title_cut_at_60,
        keyframe_every_n_saves,
        history_of_200_reconstructs_exactly,
        stock_rows_compact_resumably,
        retention_months_prunes_revisions_edges_and_media,
        user_and_deleted_user_retention,
        tick_24h_prunes_but_not_in_backup_env,
        revert_restores_props_edges_dependent_and_medium,
        deleted_page_recovered_from_deleted_list,
        acl_refuses_revisions_to_those_who_may_not_edit,
        corrupt_delta_row_is_an_error_not_a_crash,
        update_deltas_from_the_cached_save_without_reading_the_chain,
        stale_cache_entry_falls_back_to_the_chain,
        revision_cache_never_holds_more_than_256_resources,
        rsc_upload_bert_and_json,
        corrupt_upload_changes_nothing,
        admin_diff_and_revert_through_the_controller,
        get_revision_reports_erlang_rows_with_decoded_props,
        insert_deleted_revisions_adds_the_missing_deleted_rows,
        lost_or_damaged_dictionary_row_is_an_error_naming_it,
        compact_recodes_with_the_newest_dictionary_and_drops_unused_ones
    ].

init_per_suite(Config) ->
    % Dictionaries are trained only where a case asks for it, so rows are what each case expects.
    ok = application:set_env(zotonic_mod_backup, revision_dictionary_training, false),
    {ok, Ctx} = zotonic_host:start_site(?SITE, #{ modules => [mod_backup] }),
    [ {ctx, Ctx} | Config ].

end_per_suite(_Config) ->
    ok = application:unset_env(zotonic_mod_backup, revision_dictionary_training),
    ok = zotonic_host:stop_site(?SITE).

init_per_testcase(_Case, Config) ->
    Config.

end_per_testcase(_Case, _Config) ->
    ok = zotonic_host:set_environment(?SITE, production),
    ok.

%% ---------------------------------------------------------------------------------------------

install_makes_tables_indexes_and_trigger(Config) ->
    Ctx = ?config(ctx, Config),
    Cols = fun(T) ->
        z_db:q("select column_name::text, data_type::text, is_nullable::text,
                       coalesce(character_maximum_length, 0)
                from information_schema.columns where table_name = $1 order by ordinal_position",
               [T], Ctx)
    end,
    ?assertEqual([
        {<<"id">>, <<"bigint">>, <<"NO">>, 0},
        {<<"type">>, <<"character">>, <<"NO">>, 1},
        {<<"rsc_id">>, <<"integer">>, <<"NO">>, 0},
        {<<"created">>, <<"timestamp with time zone">>, <<"NO">>, 0},
        {<<"version">>, <<"integer">>, <<"YES">>, 0},
        {<<"user_id">>, <<"integer">>, <<"YES">>, 0},
        {<<"user_name">>, <<"character varying">>, <<"YES">>, 80},
        {<<"filename">>, <<"character varying">>, <<"YES">>, 400},
        {<<"note">>, <<"character varying">>, <<"YES">>, 200},
        {<<"data_type">>, <<"character varying">>, <<"NO">>, 10},
        {<<"data">>, <<"bytea">>, <<"NO">>, 0}
    ], Cols(<<"backup_revision">>)),
    ?assertEqual([
        {<<"id">>, <<"bigint">>, <<"NO">>, 0},
        {<<"subject_id">>, <<"integer">>, <<"NO">>, 0},
        {<<"predicate">>, <<"character varying">>, <<"YES">>, 300},
        {<<"object_id">>, <<"integer">>, <<"NO">>, 0},
        {<<"is_insert">>, <<"boolean">>, <<"NO">>, 0},
        {<<"timestamp">>, <<"timestamp with time zone">>, <<"NO">>, 0}
    ], Cols(<<"backup_edge_log">>)),
    ?assertEqual([
        {<<"id">>, <<"bigint">>, <<"NO">>, 0},
        {<<"rsc_id">>, <<"integer">>, <<"NO">>, 0},
        {<<"props">>, <<"bytea">>, <<"NO">>, 0},
        {<<"medium_created">>, <<"timestamp with time zone">>, <<"NO">>, 0},
        {<<"medium_deleted">>, <<"timestamp with time zone">>, <<"YES">>, 0}
    ], Cols(<<"backup_medium_log">>)),
    Indexes = [ {N, D} || {N, D} <- z_db:q("select indexname::text, indexdef from pg_indexes
                                             where tablename like 'backup_%' order by indexname", Ctx) ],
    Def = fun(Name) -> proplists:get_value(Name, Indexes) end,
    ?assertMatch({match, _}, re:run(Def(<<"backup_revision_id_created">>), "\\(rsc_id, created\\)")),
    ?assertMatch({match, _}, re:run(Def(<<"backup_revision_created_deleted_key">>),
                                    "\\(created, type\\) WHERE \\(type = 'D'::bpchar\\)")),
    ?assertMatch({match, _}, re:run(Def(<<"backup_edge_log_subject_id_created_key">>), "\\(subject_id, \"?timestamp\"?\\)")),
    ?assertMatch({match, _}, re:run(Def(<<"backup_edge_log_object_id_created_key">>), "\\(object_id, \"?timestamp\"?\\)")),
    ?assertMatch({match, _}, re:run(Def(<<"backup_medium_log_rsc_id_medium_created_key">>), "UNIQUE.*\\(rsc_id, medium_created\\)")),
    ?assertEqual(1, z_db:q1("select count(*) from pg_trigger where tgname = 'backup_medium_log_delete_trigger'
                             and tgrelid = 'medium'::regclass", Ctx)),
    % Installing again (a module restart) changes nothing.
    ok = m_backup_revision:install(Ctx),
    ?assertEqual([
        {<<"id">>, <<"integer">>, <<"NO">>, 0},
        {<<"created">>, <<"timestamp with time zone">>, <<"NO">>, 0},
        {<<"checksum">>, <<"bigint">>, <<"NO">>, 0},
        {<<"rows">>, <<"bigint">>, <<"NO">>, 0},
        {<<"upto">>, <<"bigint">>, <<"NO">>, 0},
        {<<"data">>, <<"bytea">>, <<"NO">>, 0}
    ], Cols(<<"backup_revision_dict">>)),
    ?assertEqual(5, z_module_manager:mod_schema(mod_backup)).

save_paths_leave_the_contract_rows(Config) ->
    Ctx = ?config(ctx, Config),
    Editor = zotonic_host:context(?SITE, editor),
    {ok, Id} = m_rsc_update:insert(#{ <<"category">> => text, <<"title">> => <<"First">> }, Editor),
    Rows1 = rows(Id, Ctx),
    ?assertMatch([ {_, <<"P">>, 1, <<"zkey2">>} ], Rows1),
    {ok, Id} = m_rsc_update:update(Id, #{ <<"title">> => <<"Second">> }, Editor),
    ?assertMatch([ {_, <<"P">>, 1, <<"zkey2">>}, {_, <<"P">>, 2, <<"zdelta2">>} ], rows(Id, Ctx)),
    % The same version again is not saved.
    {ok, Raw} = m_rsc:get_raw(Id, Ctx),
    ok = m_backup_revision:save_revision(Id, Raw, Ctx),
    ?assertEqual(2, length(rows(Id, Ctx))),
    % Every revision has the props that were saved, and user info.
    [ {R1, _, _, _}, {R2, _, _, _} ] = rows(Id, Ctx),
    {ok, #{ <<"data">> := P1, <<"user_id">> := UserId, <<"user_name">> := <<"Erin Editor">> }} =
        m_backup_revision:get_revision(R1, Ctx),
    ?assertEqual(zotonic_host:user_id(?SITE, editor), UserId),
    ?assertEqual(<<"First">>, maps:get(<<"title">>, P1)),
    {ok, #{ <<"data">> := P2 }} = m_backup_revision:get_revision(R2, Ctx),
    ?assertEqual(maps:filter(fun(_, V) -> V =/= undefined end, Raw), P2),
    ?assertEqual(<<"Second">>, maps:get(<<"title">>, P2)),
    % Delete: a D row with the props before the delete (a delta from the row before it).
    ok = m_rsc_update:delete(Id, Ctx),
    [ _, _, {D1, <<"D">>, 2, <<"zdelta2">>} ] = rows(Id, Ctx),
    {ok, #{ <<"data">> := PD }} = m_backup_revision:get_revision(D1, Ctx),
    ?assertEqual(<<"Second">>, maps:get(<<"title">>, PD)),
    % Revert and delete again: the new D row replaces the earlier one.
    ok = m_backup_revision:revert_resource(Id, D1, [], Ctx),
    ?assert(m_rsc:exists(Id, Ctx)),
    ?assertEqual(<<"Second">>, m_rsc:p(Id, <<"title">>, Ctx)),
    ok = m_rsc_update:delete(Id, Ctx),
    Rows5 = rows(Id, Ctx),
    ?assertEqual(1, length([ x || {_, <<"D">>, _, _} <- Rows5 ])),
    {D2, <<"D">>, _, _} = lists:last(Rows5),
    ?assert(D2 > D1),
    ?assertEqual({error, enoent}, m_backup_revision:get_revision(D1, Ctx)),
    % Every row left still reconstructs.
    lists:foreach(fun({R, _, _, _}) -> {ok, _} = m_backup_revision:get_revision(R, Ctx) end, Rows5),
    % Listed newest first, with the contract's columns.
    [ First | _ ] = m_backup_revision:list_revisions_assoc(Id, Ctx),
    ?assertEqual([id, type, created, version, user_id, user_name], [ K || {K, _} <- First ]),
    ?assertEqual(D2, proplists:get_value(id, First)),
    ?assertEqual(length(Rows5), length(m_backup_revision:list_revisions(Id, Ctx))),
    ?assertEqual(<<"Second">>, m_backup_revision:revision_title(Id, Ctx)).

user_name_is_the_editors_title_cut_at_60(Config) ->
    Ctx = ?config(ctx, Config),
    Long = binary:copy(<<"Éditeur "/utf8>>, 12),
    {ok, UserId} = zotonic_host:create_user(?SITE, editor, Long),
    UCtx = zotonic_host:context(?SITE, {user, UserId}),
    {ok, Id} = m_rsc_update:insert(#{ <<"category">> => text, <<"title">> => <<"By a long name">> }, UCtx),
    [ {RevId, _, _, _} ] = rows(Id, Ctx),
    {ok, #{ <<"user_name">> := Name, <<"user_id">> := UserId }} = m_backup_revision:get_revision(RevId, Ctx),
    ?assertEqual(60, string:length(Name)),
    ?assertEqual(z_string:truncatechars(Long, 60), Name).

pct(Values, P) ->
    Sorted = lists:sort(Values),
    lists:nth(max(1, (length(Sorted) * P) div 100), Sorted).

%% Also: the deltas made from the revision cache are byte for byte those made from the chain.
keyframe_every_n_saves(Config) ->
    Ctx = ?config(ctx, Config),
    N = backup_revision_save:keyframe_every(),
    Id = 900001,
    IdNoCache = 900011,
    History = history(2 * N + 10, 7),
    [ ok = m_backup_revision:save_revision(Id, P, Ctx) || P <- History ],
    [ begin
          ok = backup_revision_cache:flush(Ctx),
          ok = m_backup_revision:save_revision(IdNoCache, P, Ctx)
      end || P <- History ],
    Types = [ DT || {_, _, _, DT} <- rows(Id, Ctx) ],
    Keys = [ I || {I, <<"zkey2">>} <- lists:zip(lists:seq(0, length(Types) - 1), Types) ],
    ?assertEqual([0, N, 2 * N], Keys),
    ?assertEqual(2 * N + 10 - 3, length([ x || <<"zdelta2">> <- Types ])),
    Data = fun(R) -> z_db:q("select data_type, data from backup_revision where rsc_id = $1 order by id", [R], Ctx) end,
    ?assertEqual(Data(Id), Data(IdNoCache)).

history_of_200_reconstructs_exactly(Config) ->
    Ctx = ?config(ctx, Config),
    Id = 900002,
    History = history(200, 42),
    % Warm (code, connection, plans) as on a running site, on another resource.
    [ ok = m_backup_revision:save_revision(900012, P, Ctx) || P <- lists:sublist(History, 3) ],
    SaveUs = [ begin
                   {Us, ok} = timer:tc(fun() -> m_backup_revision:save_revision(Id, P, Ctx) end),
                   Us
               end || P <- History ],
    {ReadUs, ok} = timer:tc(fun() -> check_history(Id, History, Ctx) end),
    Stock = lists:sum([ byte_size(term_to_binary(P, [compressed])) || P <- History ]),
    Ours = z_db:q1("select sum(octet_length(data))::bigint from backup_revision where rsc_id = $1", [Id], Ctx),
    Ratio = Stock / Ours,
    Msg = io_lib:format("200-save history: stock ~b bytes, ours ~b bytes, ratio ~.1fx; "
                        "save incl. database p50 ~.2f ms p99 ~.2f ms max ~.2f ms; get_revision mean ~.2f ms",
                        [Stock, Ours, Ratio, pct(SaveUs, 50) / 1000, pct(SaveUs, 99) / 1000,
                         lists:max(SaveUs) / 1000, ReadUs / 200 / 1000]),
    ct:pal("~s", [Msg]),
    io:format(user, "~n~s~n", [Msg]),
    ?assert(Ratio >= 10),
    % Pruning the oldest 70 (older than the retention): the rest still reconstructs exactly and
    % the oldest surviving row became a keyframe.
    RevIds = [ R || {R, _, _, _} <- rows(Id, Ctx) ],
    {Old, _} = lists:split(70, RevIds),
    age_rows(Old, "20 months", Ctx),
    ok = m_backup_revision:periodic_cleanup(Ctx),
    Left = rows(Id, Ctx),
    ?assertEqual(130, length(Left)),
    ?assertMatch([ {_, _, 71, <<"zkey2">>} | _ ], Left),
    {_, Kept} = lists:split(70, History),
    ok = check_history(Id, Kept, Ctx),
    % Downgrade: every row an `erlang' row of exactly the saved props.
    Schema = fun() -> z_db:q1("select schema_version from module where name = 'mod_backup'", Ctx) end,
    ?assertEqual(5, Schema()),
    {ok, #{ rows := Down, errors := 0 }} = mod_backup:revisions_downgrade(Ctx),
    ?assert(Down >= 128),
    % The stock module's schema version is recorded, so it starts without Zotonic's
    % "Module downgrades not supported"; this module, started again, upgrades by installing.
    ?assertEqual(4, Schema()),
    ok = mod_backup:manage_schema({upgrade, 5}, Ctx),
    ?assertEqual([ <<"erlang">> ], lists:usort([ DT || {_, _, _, DT} <- rows(Id, Ctx) ])),
    ok = check_history(Id, Kept, Ctx),
    [ {FirstId, _, _, _} | _ ] = rows(Id, Ctx),
    ?assertEqual(hd(Kept), binary_to_term(z_db:q1("select data from backup_revision where id = $1", [FirstId], Ctx))),
    % Compact again: chains, exact, small.
    {done, #{ errors := 0 }} = backup_revision_compact:compact(Ctx),
    ok = check_history(Id, Kept, Ctx),
    Ours2 = z_db:q1("select sum(octet_length(data))::bigint from backup_revision where rsc_id = $1", [Id], Ctx),
    Stock2 = lists:sum([ byte_size(term_to_binary(P, [compressed])) || P <- Kept ]),
    ?assert(Stock2 / Ours2 >= 10).

stock_rows_compact_resumably(Config) ->
    Ctx = ?config(ctx, Config),
    Ids = lists:seq(900101, 900110),
    Histories = [ {Id, history(30, Id)} || Id <- Ids ],
    % Rows as stock mod_backup wrote them.
    lists:foreach(
        fun({Id, History}) ->
            [ z_db:q("insert into backup_revision (rsc_id, type, version, data_type, data)
                      values ($1, 'P', $2, 'erlang', $3)",
                     [Id, maps:get(<<"version">>, P), term_to_binary(P, [compressed])], Ctx) || P <- History ]
        end,
        Histories),
    % Interrupted before the first resource: nothing converted, nothing broken.
    self() ! {backup_revision_compact, stop},
    {stopped, #{ resources := 0 }} = backup_revision_compact:compact(Ctx),
    [ ok = check_history(Id, H, Ctx) || {Id, H} <- Histories ],
    % In the background, then all converted.
    {ok, Pid} = mod_backup:revisions_compact(Ctx),
    Ref = erlang:monitor(process, Pid),
    receive {'DOWN', Ref, process, Pid, _} -> ok after 60000 -> ct:fail(compact_timeout) end,
    ?assertEqual(0, z_db:q1("select count(*) from backup_revision where rsc_id = any($1) and data_type = 'erlang'",
                            [Ids], Ctx)),
    [ ok = check_history(Id, H, Ctx) || {Id, H} <- Histories ],
    ?assertNot(backup_revision_compact:is_running(Ctx)).

retention_months_prunes_revisions_edges_and_media(Config) ->
    Ctx = ?config(ctx, Config),
    Id = 900201,
    History = history(60, 3),
    [ ok = m_backup_revision:save_revision(Id, P, Ctx) || P <- History ],
    RevIds = [ R || {R, _, _, _} <- rows(Id, Ctx) ],
    % A gap in the middle of a chain (rows 10..19 older than the retention, as after a
    % clock change): rows 20.. must still be readable.
    age_rows(lists:sublist(RevIds, 11, 10), "19 months", Ctx),
    ok = m_config:set_value(mod_backup, revision_retention_months, <<"18">>, Ctx),
    _ = z_db:q("insert into backup_edge_log (subject_id, predicate, object_id, is_insert, timestamp)
                values (1, 'author', 2, true, now() - interval '19 months'),
                       (1, 'author', 3, true, now() - interval '17 months')", Ctx),
    _ = z_db:q("insert into backup_medium_log (rsc_id, props, medium_created, medium_deleted)
                values (5, $1, now() - interval '30 months', now() - interval '19 months'),
                       (6, $1, now() - interval '30 months', now() - interval '1 month'),
                       (7, $1, now() - interval '30 months', null)", [?DB_PROPS(#{})], Ctx),
    ok = m_backup_revision:periodic_cleanup(Ctx),
    ?assertEqual(50, length(rows(Id, Ctx))),
    ok = check_history(Id, lists:sublist(History, 10) ++ lists:nthtail(20, History), Ctx),
    ?assertEqual([{3}], z_db:q("select object_id from backup_edge_log where subject_id = 1", Ctx)),
    ?assertEqual([{6}, {7}], z_db:q("select rsc_id from backup_medium_log where rsc_id in (5, 6, 7) order by rsc_id", Ctx)).

user_and_deleted_user_retention(Config) ->
    Ctx = ?config(ctx, Config),
    {ok, UserId} = zotonic_host:create_user(?SITE, member, <<"Una User">>),
    {ok, GoneId} = zotonic_host:create_user(?SITE, member, <<"Gus Gone">>),
    {ok, PageId} = m_rsc_update:insert(#{ <<"category">> => text, <<"title">> => <<"Page">> }, Ctx),
    lists:foreach(
        fun(Id) ->
            [ {ok, _} = m_rsc_update:update(Id, #{ <<"title">> => <<"T", (integer_to_binary(N))/binary>> }, Ctx)
              || N <- lists:seq(1, 5) ]
        end,
        [UserId, GoneId, PageId]),
    % Everything 100 days old: user revisions (90 days) go, the page's stay (18 months).
    _ = z_db:q("update backup_revision set created = now() - interval '100 days' where rsc_id = any($1)",
               [[UserId, PageId]], Ctx),
    {ok, UserId} = m_rsc_update:update(UserId, #{ <<"title">> => <<"Recent">> }, Ctx),
    ok = m_rsc_update:delete(GoneId, Ctx),
    ?assert(z_db:q1("select is_personal_data from rsc_gone where id = $1", [GoneId], Ctx)),
    ok = m_backup_revision:periodic_cleanup(Ctx),
    ?assertMatch([ {_, <<"P">>, _, <<"zkey2">>} ], rows(UserId, Ctx)),
    ?assertEqual(6, length(rows(PageId, Ctx))),
    % The deleted user is kept while gone less than 30 days.
    ?assert(length(rows(GoneId, Ctx)) > 0),
    _ = z_db:q("update rsc_gone set modified = now() - interval '31 days' where id = $1", [GoneId], Ctx),
    ok = m_backup_revision:periodic_cleanup(Ctx),
    ?assertEqual([], rows(GoneId, Ctx)),
    [ {ok, _} = m_backup_revision:get_revision(R, Ctx) || {R, _, _, _} <- rows(UserId, Ctx) ++ rows(PageId, Ctx) ].

tick_24h_prunes_but_not_in_backup_env(Config) ->
    Ctx = ?config(ctx, Config),
    Id = 900301,
    [ ok = m_backup_revision:save_revision(Id, P, Ctx) || P <- history(3, 5) ],
    age_rows([ R || {R, _, _, _} <- rows(Id, Ctx) ], "5 years", Ctx),
    ok = zotonic_host:set_environment(?SITE, backup),
    ok = mod_backup:observe_tick_24h(tick_24h, Ctx),
    ?assertEqual(3, length(rows(Id, Ctx))),
    ok = zotonic_host:set_environment(?SITE, production),
    ok = mod_backup:observe_tick_24h(tick_24h, Ctx),
    ?assertEqual([], rows(Id, Ctx)).

revert_restores_props_edges_dependent_and_medium(Config) ->
    Ctx = ?config(ctx, Config),
    Ins = fun(Title, Extra) ->
        {ok, I} = m_rsc_update:insert(Extra#{ <<"category">> => text, <<"title">> => Title }, Ctx),
        I
    end,
    A = Ins(<<"A one">>, #{}),
    B = Ins(<<"B">>, #{}),
    C = Ins(<<"C">>, #{}),
    D = Ins(<<"D dependent">>, #{ <<"is_dependent">> => true }),
    {ok, _} = m_edge:insert(A, author, B, Ctx),
    {ok, _} = m_edge:insert(C, relation, A, Ctx),
    {ok, _} = m_edge:insert(A, haspart, D, Ctx),
    ok = m_media:replace(A, #{ <<"filename">> => <<"a/one.jpg">>, <<"mime">> => <<"image/jpeg">> }, Ctx),
    ok = z_edge_log_server:sync(Ctx),
    wait_until(fun() -> z_db:q1("select count(*) from backup_medium_log where rsc_id = $1", [A], Ctx) =:= 1 end),
    {ok, A} = m_rsc_update:update(A, #{ <<"title">> => <<"A two">>, <<"summary">> => <<"kept">> }, Ctx),
    {RevId, _, _, _} = lists:last(rows(A, Ctx)),
    % What happened so far is an hour old, the revision half an hour.
    _ = z_db:q("update backup_edge_log set timestamp = now() - interval '1 hour'", Ctx),
    _ = z_db:q("update backup_medium_log set medium_created = medium_created - interval '1 hour' where rsc_id = $1", [A], Ctx),
    _ = z_db:q("update medium set created = created - interval '1 hour' where id = $1", [A], Ctx),
    _ = z_db:q("update backup_revision set created = now() - interval '30 minutes' where id = $1", [RevId], Ctx),
    % Then: edges changed, the dependent deleted, the medium replaced, the props edited.
    ok = m_edge:delete(A, author, B, Ctx),
    ok = m_edge:delete(C, relation, A, Ctx),
    {ok, _} = m_edge:insert(A, relation, C, Ctx),
    ok = m_rsc_update:delete(D, Ctx),
    ok = m_media:replace(A, #{ <<"filename">> => <<"a/three.jpg">>, <<"mime">> => <<"image/jpeg">> }, Ctx),
    {ok, A} = m_rsc_update:update(A, #{ <<"title">> => <<"A three">>, <<"summary">> => <<"changed">> }, Ctx),
    ok = z_edge_log_server:sync(Ctx),
    wait_until(fun() -> z_db:q1("select count(*) from backup_medium_log where rsc_id = $1", [A], Ctx) =:= 2 end),
    ?assertNot(m_rsc:exists(D, Ctx)),
    % Only outgoing edges asked: the incoming one stays deleted, no dependent.
    ok = m_backup_revision:revert_resource(A, RevId, [outgoing_edges], Ctx),
    ok = z_edge_log_server:sync(Ctx),
    ?assertEqual(<<"A two">>, m_rsc:p(A, <<"title">>, Ctx)),
    ?assertEqual(<<"kept">>, m_rsc:p(A, <<"summary">>, Ctx)),
    ?assertEqual([B], m_edge:objects(A, author, Ctx)),
    ?assertEqual([], m_edge:objects(A, relation, Ctx)),
    ?assertEqual([], m_edge:subjects(A, relation, Ctx)),
    ?assertNot(m_rsc:exists(D, Ctx)),
    ?assertMatch(#{ <<"filename">> := <<"a/one.jpg">> }, m_media:get(A, Ctx)),
    % All three options: incoming edge and the dependent resource come back too.
    ok = m_backup_revision:revert_resource(A, RevId, [incoming_edges, outgoing_edges, dependent], Ctx),
    ok = z_edge_log_server:sync(Ctx),
    ?assertEqual([C], m_edge:subjects(A, relation, Ctx)),
    ?assert(m_rsc:exists(D, Ctx)),
    ?assertEqual(<<"D dependent">>, m_rsc:p(D, <<"title">>, Ctx)),
    ?assertEqual([D], m_edge:objects(A, haspart, Ctx)),
    ?assertNot(m_rsc_gone:is_gone(D, Ctx)),
    % A revision of another resource is refused.
    ?assertEqual({error, invalid}, m_backup_revision:revert_resource(B, RevId, [], Ctx)),
    ?assertEqual({error, enoent}, m_backup_revision:revert_resource(A, 999999999, [], Ctx)).

deleted_page_recovered_from_deleted_list(Config) ->
    Ctx = ?config(ctx, Config),
    Admin = zotonic_host:context(?SITE, admin),
    {ok, Id} = m_rsc_update:insert(#{ <<"category">> => article, <<"title">> => <<"Lost and found">>,
                                      <<"body">> => <<"<p>Hello</p>">> }, Ctx),
    {ok, Props} = m_rsc:get_raw(Id, Ctx),
    ok = m_rsc_update:delete(Id, Ctx),
    ?assert(m_rsc_gone:is_gone(Id, Ctx)),
    Search = #search_query{ name = <<"backup_deleted">>, offsetlimit = {1, 100} },
    #search_result{ result = Found, total = Total } = z_notifier:first(Search, Admin),
    ?assert(Total >= 1),
    [ #{ <<"id">> := RevId, <<"data">> := Data, <<"data_type">> := <<"term">> } ] =
        [ R || #{ <<"rsc_id">> := RId } = R <- Found, RId =:= Id ],
    ?assertEqual(maps:get(<<"body">>, Props), maps:get(<<"body">>, Data)),
    ?assertEqual(<<"Lost and found">>, m_backup_revision:revision_title(Id, Admin)),
    ?assertEqual({ok, {<<"Lost and found">>, []}}, m_backup_revision:m_get([<<"title">>, Id], undefined, Admin)),
    ok = m_backup_revision:revert_resource(Id, RevId, [incoming_edges, outgoing_edges], Admin),
    ?assert(m_rsc:exists(Id, Ctx)),
    ?assertNot(m_rsc_gone:is_gone(Id, Ctx)),
    ?assertEqual(<<"Lost and found">>, m_rsc:p(Id, <<"title">>, Ctx)),
    ?assertEqual(maps:get(<<"body">>, Props), m_rsc:p(Id, <<"body">>, Ctx)),
    #search_result{ result = Found2 } = z_notifier:first(Search, Admin),
    ?assertEqual([], [ R || #{ <<"rsc_id">> := RId } = R <- Found2, RId =:= Id ]).

acl_refuses_revisions_to_those_who_may_not_edit(Config) ->
    Ctx = ?config(ctx, Config),
    Editor = zotonic_host:context(?SITE, editor),
    Member = zotonic_host:context(?SITE, member),
    Anon = zotonic_host:context(?SITE, anonymous),
    {ok, Id} = m_rsc_update:insert(#{ <<"category">> => text, <<"title">> => <<"Guarded">>,
                                      <<"is_published">> => true }, Ctx),
    {ok, _} = m_rsc_update:update(Id, #{ <<"title">> => <<"Guarded 2">> }, Ctx),
    {ok, {Revs, []}} = m_backup_revision:m_get([<<"list">>, Id], undefined, Editor),
    ?assertEqual(2, length(Revs)),
    ?assertEqual({ok, {[], []}}, m_backup_revision:m_get([<<"list">>, Id], undefined, Member)),
    ?assertEqual({ok, {[], []}}, m_backup_revision:m_get([<<"list">>, Id], undefined, Anon)),
    % Deleted: only with use of mod_backup (the editor of this site has not).
    ok = m_rsc_update:delete(Id, Ctx),
    ?assertNot(z_acl:is_allowed(use, mod_backup, Editor)),
    ?assertEqual({ok, {[], []}}, m_backup_revision:m_get([<<"list">>, Id], undefined, Editor)),
    ?assertEqual({ok, {undefined, []}}, m_backup_revision:m_get([<<"title">>, Id], undefined, Editor)),
    {ok, {AdminRevs, []}} = m_backup_revision:m_get([<<"list">>, Id], undefined, zotonic_host:context(?SITE, admin)),
    ?assertEqual(3, length(AdminRevs)),
    Search = #search_query{ name = <<"backup_deleted">>, offsetlimit = {1, 10} },
    ?assertEqual([], z_notifier:first(Search, Editor)),
    ?assertEqual([], z_notifier:first(Search, Anon)),
    % The settings are public.
    ?assertEqual({ok, {18, []}}, m_backup_revision:m_get([<<"retention_months">>], undefined, Anon)),
    ?assertEqual({ok, {90, []}}, m_backup_revision:m_get([<<"user_retention_days">>], undefined, Anon)),
    ?assertEqual({ok, {30, []}}, m_backup_revision:m_get([<<"deleted_user_retention_days">>], undefined, Anon)),
    ?assertEqual({error, unknown_path}, m_backup_revision:m_get([<<"nope">>], undefined, Anon)),
    % Reverting needs edit rights of the resource (the update is refused, nothing changes).
    {ok, Id2} = m_rsc_update:insert(#{ <<"category">> => text, <<"title">> => <<"Mine">> }, Ctx),
    {ok, _} = m_rsc_update:update(Id2, #{ <<"title">> => <<"Mine 2">> }, Ctx),
    [ {Rev1, _, _, _} | _ ] = rows(Id2, Ctx),
    ?assertEqual({error, eacces}, m_backup_revision:revert_resource(Id2, Rev1, [], Member)),
    ?assertEqual(<<"Mine 2">>, m_rsc:p(Id2, <<"title">>, Ctx)).

corrupt_delta_row_is_an_error_not_a_crash(Config) ->
    Ctx = ?config(ctx, Config),
    {ok, Id} = m_rsc_update:insert(#{ <<"category">> => text, <<"title">> => <<"Fragile">> }, Ctx),
    {ok, _} = m_rsc_update:update(Id, #{ <<"title">> => <<"Fragile 2">> }, Ctx),
    {ok, _} = m_rsc_update:update(Id, #{ <<"title">> => <<"Fragile 3">> }, Ctx),
    [ {R1, _, _, _}, {R2, _, _, <<"zdelta2">>}, {R3, _, _, <<"zdelta2">>} ] = rows(Id, Ctx),
    {ok, #{ <<"data">> := Props3 }} = m_backup_revision:get_revision(R3, Ctx),
    Flip = fun(R) ->
        Data = z_db:q1("select data from backup_revision where id = $1", [R], Ctx),
        Half = byte_size(Data) div 2,
        <<Pre:Half/binary, Byte, Post/binary>> = Data,
        _ = z_db:q("update backup_revision set data = $2 where id = $1", [R, <<Pre/binary, (Byte bxor 16#5a), Post/binary>>], Ctx)
    end,
    Flip(R2),
    ?assertMatch({ok, _}, m_backup_revision:get_revision(R1, Ctx)),
    ?assertEqual({error, badarg}, m_backup_revision:get_revision(R2, Ctx)),
    % The row after it fails too, or (when it overwrites all the damage did) is exactly itself:
    % every revision is checked against the checksum of what was saved.
    case m_backup_revision:get_revision(R3, Ctx) of
        {error, badarg} -> ok;
        {ok, #{ <<"data">> := Got }} -> ?assertEqual(Props3, Got)
    end,
    Flip(R3),
    ?assertEqual({error, badarg}, m_backup_revision:get_revision(R3, Ctx)),
    {ok, Before} = m_rsc:get_raw(Id, Ctx),
    ?assertEqual({error, badarg}, m_backup_revision:revert_resource(Id, R3, [], Ctx)),
    ?assertEqual({ok, Before}, m_rsc:get_raw(Id, Ctx)),
    % Truncated and garbage rows too.
    _ = z_db:q("update backup_revision set data = $2 where id = $1", [R3, <<"ZR">>], Ctx),
    ?assertEqual({error, badarg}, m_backup_revision:get_revision(R3, Ctx)),
    _ = z_db:q("update backup_revision set data_type = 'zkey2', data = $2 where id = $1", [R3, <<1, 2, 3>>], Ctx),
    ?assertEqual({error, badarg}, m_backup_revision:get_revision(R3, Ctx)),
    _ = z_db:q("update backup_revision set data_type = 'erlang', data = $2 where id = $1", [R3, <<131, 0>>], Ctx),
    ?assertEqual({error, badarg}, m_backup_revision:get_revision(R3, Ctx)),
    _ = z_db:q("update backup_revision set data_type = 'nonsense' where id = $1", [R3], Ctx),
    ?assertEqual({error, badarg}, m_backup_revision:get_revision(R3, Ctx)),
    % The next save after an unreadable row is a keyframe, and readable.
    {ok, _} = m_rsc_update:update(Id, #{ <<"title">> => <<"Fragile 4">> }, Ctx),
    {R4, _, _, <<"zkey2">>} = lists:last(rows(Id, Ctx)),
    ?assertMatch({ok, #{ <<"data">> := #{ <<"title">> := <<"Fragile 4">> } }}, m_backup_revision:get_revision(R4, Ctx)),
    % Downgrade leaves what it cannot read and counts it.
    {ok, #{ errors := Errors }} = mod_backup:revisions_downgrade(Ctx),
    ?assert(Errors >= 2),
    ?assertEqual({error, enoent}, m_backup_revision:get_revision(<<"x">>, Ctx)).

%% A save makes its delta from the props of the previous save, kept by backup_revision_cache,
%% checked against the newest row's checksum, and never reads the rows before it: with a middle
%% row damaged, the next update still writes a delta. Without the cache the save needs the
%% chain, finds it unreadable and writes a keyframe.
update_deltas_from_the_cached_save_without_reading_the_chain(Config) ->
    Ctx = ?config(ctx, Config),
    {ok, Id} = m_rsc_update:insert(#{ <<"category">> => text, <<"title">> => <<"Quick 1">> }, Ctx),
    {ok, _} = m_rsc_update:update(Id, #{ <<"title">> => <<"Quick 2">> }, Ctx),
    {ok, _} = m_rsc_update:update(Id, #{ <<"title">> => <<"Quick 3">> }, Ctx),
    [ {_, _, _, <<"zkey2">>}, {R2, _, _, <<"zdelta2">>}, {R3, _, _, <<"zdelta2">>} ] = rows(Id, Ctx),
    {ok, #{ <<"data">> := Props3 }} = m_backup_revision:get_revision(R3, Ctx),
    ?assertMatch({ok, R3, _}, backup_revision_cache:lookup(Id, Ctx)),
    _ = z_db:q("update backup_revision set data = $2 where id = $1", [R2, <<"ZR", 1, $D, 0, "damaged">>], Ctx),
    {ok, _} = m_rsc_update:update(Id, #{ <<"title">> => <<"Quick 4">> }, Ctx),
    {R4, _, _, <<"zdelta2">>} = lists:last(rows(Id, Ctx)),
    % It follows revision 3 (read before the damage): applied to it, it gives the update.
    Delta4 = z_db:q1("select data from backup_revision where id = $1", [R4], Ctx),
    ?assertMatch({ok, #{ <<"title">> := <<"Quick 4">> }},
                 backup_revision_codec:decode([{<<"erlang">>, term_to_binary(Props3)}, {<<"zdelta2">>, Delta4}],
                                              backup_revision_dict:codec(Ctx))),
    ok = backup_revision_cache:flush(Ctx),
    {ok, _} = m_rsc_update:update(Id, #{ <<"title">> => <<"Quick 5">> }, Ctx),
    {R5, _, _, <<"zkey2">>} = lists:last(rows(Id, Ctx)),
    ?assertMatch({ok, #{ <<"data">> := #{ <<"title">> := <<"Quick 5">> } }}, m_backup_revision:get_revision(R5, Ctx)).

%% A cache entry that is not the newest revision's props (a restored database, a row rewritten
%% under it) is refused by the checksum: the delta comes from the chain, and every revision
%% still reads back exactly.
stale_cache_entry_falls_back_to_the_chain(Config) ->
    Ctx = ?config(ctx, Config),
    Id = 900003,
    [P1, P2, P3, P4] = history(4, 5),
    ok = m_backup_revision:save_revision(Id, P1, Ctx),
    ok = m_backup_revision:save_revision(Id, P2, Ctx),
    {ok, R2, _} = backup_revision_cache:lookup(Id, Ctx),
    ok = backup_revision_cache:store(Id, R2, P1, Ctx),
    ok = m_backup_revision:save_revision(Id, P3, Ctx),
    % The newest row becomes a stock row: it carries no checksum to check the cache against.
    {R3, _, _, _} = lists:last(rows(Id, Ctx)),
    _ = z_db:q("update backup_revision set data_type = 'erlang', data = $2 where id = $1",
               [R3, term_to_binary(P3, [compressed])], Ctx),
    ok = m_backup_revision:save_revision(Id, P4, Ctx),
    Rows = rows(Id, Ctx),
    ?assertEqual([<<"zkey2">>, <<"zdelta2">>, <<"erlang">>, <<"zdelta2">>], [ DT || {_, _, _, DT} <- Rows ]),
    ?assertEqual([P1, P2, P3, P4],
                 [ begin {ok, #{ <<"data">> := D }} = m_backup_revision:get_revision(R, Ctx), D end
                   || {R, _, _, _} <- Rows ]).

revision_cache_never_holds_more_than_256_resources(Config) ->
    Ctx = ?config(ctx, Config),
    Table = z_utils:name_for_site(backup_revision_cache, z_context:site(Ctx)),
    Sizes = [ begin
                  ok = backup_revision_cache:store(950000 + N, N, #{ <<"n">> => N }, Ctx),
                  ets:info(Table, size)
              end || N <- lists:seq(1, 600) ],
    ?assert(lists:max(Sizes) =< 256),
    % the newest store is always there to be found
    ?assertMatch({ok, 600, _}, backup_revision_cache:lookup(950600, Ctx)).

rsc_upload_bert_and_json(Config) ->
    Ctx = ?config(ctx, Config),
    {ok, Id} = m_rsc_update:insert(#{ <<"category">> => text, <<"title">> => <<"Upload me">> }, Ctx),
    Bert = term_to_binary([ {Id, [ {title, <<"From bert">>}, {computed_category, [article, text]},
                                   {version, 99}, {id, 12345} ]} ]),
    ?assertEqual({ok, Id}, z_notifier:first(#rsc_upload{ id = Id, format = bert, data = Bert }, Ctx)),
    ?assertEqual(<<"From bert">>, m_rsc:p(Id, <<"title">>, Ctx)),
    ?assert(m_rsc:is_a(Id, article, Ctx)),
    Map = term_to_binary([ #{ <<"title">> => <<"From map">>, <<"computed_category">> => [<<"text">>] } ]),
    ?assertEqual({ok, Id}, z_notifier:first(#rsc_upload{ id = Id, format = bert, data = Map }, Ctx)),
    ?assertEqual(<<"From map">>, m_rsc:p(Id, <<"title">>, Ctx)),
    JSON = z_json:encode(#{
        <<"uri">> => <<"https://elsewhere.test/id/77">>,
        <<"is_a">> => [<<"text">>],
        <<"resource">> => #{ <<"title">> => <<"From json">>, <<"id">> => 77 }
    }),
    ?assertEqual({ok, Id}, z_notifier:first(#rsc_upload{ id = Id, format = json, data = JSON }, Ctx)),
    ?assertEqual(<<"From json">>, m_rsc:p(Id, <<"title">>, Ctx)),
    % Each upload left a revision.
    ?assert(length(rows(Id, Ctx)) >= 4).

corrupt_upload_changes_nothing(Config) ->
    Ctx = ?config(ctx, Config),
    {ok, Id} = m_rsc_update:insert(#{ <<"category">> => text, <<"title">> => <<"Steady">> }, Ctx),
    {ok, Before} = m_rsc:get_raw(Id, Ctx),
    Good = term_to_binary([ {Id, [ {title, <<"x">>} ]} ]),
    Bad = [
        {bert, <<>>},
        {bert, <<"not a term">>},
        {bert, binary:part(Good, 0, byte_size(Good) - 3)},
        {bert, term_to_binary(42)},
        {bert, term_to_binary([ {Id, not_a_list} ])},
        {bert, term_to_binary([ {Id, [ {<<"title">>, 1}, garbage ]} ])},
        {bert, term_to_binary([ #{ 1 => 2 } ])},
        % an atom the VM does not know: refused, the atom table is not filled
        {bert, <<131, 108, 0, 0, 0, 1, 104, 2, 97, 1, 108, 0, 0, 0, 1, 104, 2, 100, 0, 20,
                 "zz_never_seen_atom_1", 109, 0, 0, 0, 1, "x", 106, 106>>},
        {json, <<"{not json">>},
        {json, <<"[1, 2, 3]">>},
        {json, <<"{\"resource\": 5}">>},
        {json, 12}
    ],
    lists:foreach(
        fun({Format, Data}) ->
            ?assertEqual({error, badarg}, backup_rsc_upload:rsc_upload(#rsc_upload{ id = Id, format = Format, data = Data }, Ctx))
        end,
        Bad),
    ?assertEqual({ok, Before}, m_rsc:get_raw(Id, Ctx)).

admin_diff_and_revert_through_the_controller(Config) ->
    Ctx = ?config(ctx, Config),
    Editor = zotonic_host:context(?SITE, editor),
    Member = zotonic_host:context(?SITE, member),
    {ok, Id} = m_rsc_update:insert(#{ <<"category">> => text,
                                      <<"title">> => #trans{ tr = [{en, <<"The quick brown fox">>}, {nl, <<"De vos">>}] },
                                      <<"summary">> => <<"a < b">> }, Editor),
    {ok, _} = m_rsc_update:update(Id, #{ <<"title">> => #trans{ tr = [{en, <<"The slow brown fox">>}, {nl, <<"De vos">>}] } }, Editor),
    [ {R1, _, _, _}, {R2, _, _, _} ] = rows(Id, Ctx),
    Notify = fun(Q, C) ->
        C1 = lists:foldl(fun({K, V}, Acc) -> z_context:set_q(K, V, Acc) end, C, Q),
        Before = length(zotonic_host:render_log(?SITE)),
        _ = controller_admin_backup_revision:event(#postback_notify{ message = <<"rev-diff">> }, C1),
        lists:nthtail(Before, zotonic_host:render_log(?SITE))
    end,
    Q = [ {<<"id">>, integer_to_binary(Id)}, {<<"a">>, integer_to_binary(R1)}, {<<"b">>, integer_to_binary(R2)} ],
    [ {update, <<"page-diff">>, #render{ vars = Vars }} ] = [ E || {update, _, _} = E <- Notify(Q, Editor) ],
    ?assertEqual([ [<<"title (en)">>, <<"The <del>quick</del> brown fox">>, <<"The <ins>slow</ins> brown fox">>] ],
                 [ Row || [<<"title", _/binary>> | _] = Row <- proplists:get_value(diff, Vars) ]),
    % One revision: all its props, escaped.
    [ {update, _, #render{ vars = Vars1 }} ] = [ E || {update, _, _} = E <- Notify(lists:sublist(Q, 2), Editor) ],
    ?assertEqual([ [<<"summary">>, <<"a &lt; b">>, <<>>] ],
                 [ Row || [<<"summary">> | _] = Row <- proplists:get_value(diff, Vars1) ]),
    % Against the page now.
    [ {update, _, _} ] = [ E || {update, _, _} = E <- Notify([ {<<"id">>, integer_to_binary(Id)}, {<<"a">>, integer_to_binary(R1)},
                                                              {<<"b">>, <<"latest">>} ], Editor) ],
    % A member may not see them, nor revert.
    ?assertMatch([ {growl, _, error, _} ], [ E || {growl, _, _, _} = E <- Notify(Q, Member) ]),
    ?assertMatch({false, _}, controller_admin_backup_revision:is_authorized(z_context:set_q(<<"id">>, integer_to_binary(Id), Member))),
    Submit = fun(C) ->
        C1 = lists:foldl(fun({K, V}, Acc) -> z_context:set_q(K, V, Acc) end, C,
                         [ {<<"outgoing_edges">>, <<"on">>}, {<<"incoming_edges">>, <<"on">>} ]),
        controller_admin_backup_revision:event(#submit{ message = {revert, [ {rsc_id, Id}, {rev_id, R1} ]} }, C1)
    end,
    _ = Submit(Member),
    ?assertEqual(<<"The slow brown fox">>, z_trans:lookup_fallback(m_rsc:p(Id, <<"title">>, Ctx), Ctx)),
    _ = Submit(Editor),
    ?assertEqual(<<"The quick brown fox">>, z_trans:lookup_fallback(m_rsc:p(Id, <<"title">>, Ctx), Ctx)),
    % A damaged revision gives a growl, not a crash.
    _ = z_db:q("update backup_revision set data = $2 where id = $1", [R2, <<"ZRbroken">>], Ctx),
    ?assertMatch([ {growl, _, error, _} ], [ E || {growl, _, _, _} = E <- Notify(Q, Editor) ]),
    % Deleted: only for users of mod_backup.
    ok = m_rsc_update:delete(Id, Ctx),
    ?assertMatch({false, _}, controller_admin_backup_revision:is_authorized(z_context:set_q(<<"id">>, integer_to_binary(Id), Editor))),
    ?assertMatch({true, _}, controller_admin_backup_revision:is_authorized(
                                z_context:set_q(<<"id">>, integer_to_binary(Id), zotonic_host:context(?SITE, admin)))).

%% Callers of the stock model only ever see `erlang' rows with the decoded props: our storage
%% format (keyframes, deltas) stays inside the module, whatever row a revision is stored as.
get_revision_reports_erlang_rows_with_decoded_props(Config) ->
    Ctx = ?config(ctx, Config),
    {ok, Id} = m_rsc_update:insert(#{ <<"category">> => text, <<"title">> => <<"Kind 1">> }, Ctx),
    {ok, _} = m_rsc_update:update(Id, #{ <<"title">> => <<"Kind 2">> }, Ctx),
    Stock = #{ <<"title">> => <<"Kind 3">>, <<"version">> => 99 },
    _ = z_db:q("insert into backup_revision (rsc_id, type, version, data_type, data)
                values ($1, 'P', 99, 'erlang', $2)", [Id, term_to_binary(Stock, [compressed])], Ctx),
    {ok, _} = m_rsc_update:update(Id, #{ <<"title">> => <<"Kind 4">> }, Ctx),
    Rows = rows(Id, Ctx),
    % stored as all three kinds...
    ?assertEqual([<<"zkey2">>, <<"zdelta2">>, <<"erlang">>, <<"zdelta2">>], [ DT || {_, _, _, DT} <- Rows ]),
    % ...reported as stock rows.
    Revs = [ begin {ok, R} = m_backup_revision:get_revision(RevId, Ctx), R end || {RevId, _, _, _} <- Rows ],
    ?assertEqual([<<"erlang">>], lists:usort([ DT || #{ <<"data_type">> := DT } <- Revs ])),
    ?assertEqual([<<"Kind 1">>, <<"Kind 2">>, <<"Kind 3">>, <<"Kind 4">>],
                 [ T || #{ <<"data">> := #{ <<"title">> := T } } <- Revs ]),
    ?assertEqual(Stock, maps:get(<<"data">>, lists:nth(3, Revs))),
    % The other columns are the row's own.
    [ #{ <<"id">> := RevId1, <<"rsc_id">> := Id, <<"type">> := <<"P">>, <<"version">> := 1 } | _ ] = Revs,
    ?assertEqual(element(1, hd(Rows)), RevId1),
    % The deleted-pages list reports them as stock does (`term', decoded).
    ok = m_rsc_update:delete(Id, Ctx),
    #search_result{ result = Found } = m_backup_revision:list_deleted({1, 1000}, Ctx),
    [ #{ <<"data_type">> := <<"term">>, <<"data">> := #{ <<"title">> := <<"Kind 4">> } } ] =
        [ R || #{ <<"rsc_id">> := RId } = R <- Found, RId =:= Id ].

%% Stock's insert_deleted_revisions/1: every deleted resource (in rsc_gone) with revisions but
%% no deleted-revision gets one, a copy of its newest revision dated at its deletion; stock
%% queues it when install/1 adds the index on deleted revisions to an older table.
insert_deleted_revisions_adds_the_missing_deleted_rows(Config) ->
    Ctx = ?config(ctx, Config),
    {ok, A} = m_rsc_update:insert(#{ <<"category">> => text, <<"title">> => <<"Gone A 1">> }, Ctx),
    {ok, _} = m_rsc_update:update(A, #{ <<"title">> => <<"Gone A 2">> }, Ctx),
    {ok, _} = m_rsc_update:update(A, #{ <<"title">> => <<"Gone A 3">> }, Ctx),
    ok = m_rsc_update:delete(A, Ctx),
    % B: gone with only stock rows, as an older site has them.
    B = 900401,
    PropsB = [ #{ <<"title">> => <<"Gone B">>, <<"version">> => V } || V <- [1, 2] ],
    [ z_db:q("insert into backup_revision (rsc_id, type, version, user_id, user_name, data_type, data)
              values ($1, 'P', $2, 7, 'Seven', 'erlang', $3)",
             [B, V, term_to_binary(P, [compressed])], Ctx) || #{ <<"version">> := V } = P <- PropsB ],
    _ = z_db:q("insert into rsc_gone (id, version, modified) values ($1, 2, now() - interval '3 days')", [B], Ctx),
    % C: gone, and its deleted-revision is there already.
    {ok, C} = m_rsc_update:insert(#{ <<"category">> => text, <<"title">> => <<"Gone C">> }, Ctx),
    ok = m_rsc_update:delete(C, Ctx),
    RowsC = rows(C, Ctx),
    % Older mod_backups wrote no deleted-revisions.
    _ = z_db:q("delete from backup_revision where rsc_id = $1 and type = 'D'", [A], Ctx),
    RowsA = rows(A, Ctx),
    ?assertEqual(ok, m_backup_revision:insert_deleted_revisions(Ctx)),
    ?assertEqual(RowsC, rows(C, Ctx)),
    Deleted = fun(Id) ->
        [ {RevId, <<"D">>, _, _} ] = [ R || {_, <<"D">>, _, _} = R <- rows(Id, Ctx) ],
        {ok, Rev} = m_backup_revision:get_revision(RevId, Ctx),
        Rev
    end,
    Gone = fun(Id) -> z_db:q1("select modified from rsc_gone where id = $1", [Id], Ctx) end,
    {LastA, _, VersionA, _} = lists:last(RowsA),
    {ok, #{ <<"data">> := PropsA }} = m_backup_revision:get_revision(LastA, Ctx),
    ?assertMatch(#{ <<"title">> := <<"Gone A 3">> }, PropsA),
    ?assertMatch(#{ <<"data">> := PropsA, <<"version">> := VersionA, <<"data_type">> := <<"erlang">> }, Deleted(A)),
    ?assertEqual(Gone(A), maps:get(<<"created">>, Deleted(A))),
    ?assertMatch(#{ <<"data">> := #{ <<"title">> := <<"Gone B">>, <<"version">> := 2 }, <<"version">> := 2,
                    <<"user_id">> := 7, <<"user_name">> := <<"Seven">> }, Deleted(B)),
    ?assertEqual(Gone(B), maps:get(<<"created">>, Deleted(B))),
    % Every row still reads; a second run adds nothing.
    [ {ok, _} = m_backup_revision:get_revision(R, Ctx) || {R, _, _, _} <- rows(A, Ctx) ++ rows(B, Ctx) ],
    Before = [ rows(Id, Ctx) || Id <- [A, B, C] ],
    ok = m_backup_revision:insert_deleted_revisions(Ctx),
    ?assertEqual(Before, [ rows(Id, Ctx) || Id <- [A, B, C] ]),
    % install/1 on a table without the index queues it, as stock's does.
    _ = z_db:q("delete from backup_revision where rsc_id = any($1) and type = 'D'", [[A, B]], Ctx),
    _ = z_db:q("drop index backup_revision_created_deleted_key", Ctx),
    z_db:flush(Ctx),
    ok = m_backup_revision:install(Ctx),
    ?assertEqual(1, z_db:q1("select count(*) from pivot_task_queue
                             where module = 'm_backup_revision' and function = 'insert_deleted_revisions'", Ctx)),
    _ = z_pivot_rsc:run_tasks(Ctx),
    NoIds = fun(Rs) -> [ [ {T, V, DT} || {_, T, V, DT} <- R ] || R <- Rs ] end,
    ?assertEqual(NoIds(Before), NoIds([ rows(Id, Ctx) || Id <- [A, B, C] ])).

%% The first dictionary is trained in the background once the log is long enough: saves go on
%% while it trains (here it is kept from storing its result by a transaction holding the table
%% of dictionaries in share mode, which saves do not mind), and once adopted new rows are
%% compressed with it and read back exactly.
dictionary_is_trained_while_saves_go_on_and_new_rows_use_it(Config) ->
    Ctx = ?config(ctx, Config),
    ?assertEqual(0, z_db:q1("select count(*) from backup_revision_dict", Ctx)),
    % A log long enough to train on (saved while training is off).
    [ ok = m_backup_revision:save_revision(900500 + N, P, Ctx) || N <- lists:seq(1, 8), P <- history(30, N) ],
    ?assert(z_db:q1("select count(*) from backup_revision", Ctx) >= 200),
    Holder = hold_dictionaries(Ctx),
    ok = application:set_env(zotonic_mod_backup, revision_dictionary_training, true),
    try
        Id = 900511,
        History = history(12, 511),
        [ ok = m_backup_revision:save_revision(Id, P, Ctx) || P <- lists:sublist(History, 6) ],
        wait_until(fun() -> backup_revision_dict:is_training(Ctx) end),
        % The training waits for the table; saves do not wait for the training.
        [ ok = m_backup_revision:save_revision(Id, P, Ctx) || P <- lists:nthtail(6, History) ],
        ?assert(backup_revision_dict:is_training(Ctx)),
        ?assertEqual(0, z_db:q1("select count(*) from backup_revision_dict", Ctx)),
        release(Holder),
        wait_until(fun() -> not backup_revision_dict:is_training(Ctx) end),
        ?assertEqual(1, z_db:q1("select count(*) from backup_revision_dict", Ctx)),
        ok = check_history(Id, History, Ctx),
        % A new resource's first row names the dictionary.
        Id2 = 900512,
        History2 = history(3, 512),
        [ ok = m_backup_revision:save_revision(Id2, P, Ctx) || P <- History2 ],
        DictId = z_db:q1("select id from backup_revision_dict", Ctx),
        [ {First, _, _, <<"zkey2">>} | _ ] = rows(Id2, Ctx),
        ?assertEqual(DictId, row_dictionary(First, Ctx)),
        ok = check_history(Id2, History2, Ctx)
    after
        ok = application:set_env(zotonic_mod_backup, revision_dictionary_training, false)
    end.

%% A dictionary row that is lost or damaged (as after a bad manual edit of the table) makes the
%% revisions written with it fail with an error naming it, never a crash or a wrong revision;
%% other revisions still read, saves go on, and with the row back all is readable again.
lost_or_damaged_dictionary_row_is_an_error_naming_it(Config) ->
    Ctx = ?config(ctx, Config),
    DictId = ensure_dictionary(Ctx),
    {ok, Id} = m_rsc_update:insert(#{ <<"category">> => text, <<"title">> => <<"Compressed">>,
                                      <<"body">> => html(12) }, Ctx),
    {ok, _} = m_rsc_update:update(Id, #{ <<"title">> => <<"Compressed 2">> }, Ctx),
    [ {R1, _, _, <<"zkey2">>}, {R2, _, _, _} ] = rows(Id, Ctx),
    ?assertEqual(DictId, row_dictionary(R1, Ctx)),
    {ok, #{ <<"data">> := Props2 }} = m_backup_revision:get_revision(R2, Ctx),
    {ok, Before} = m_rsc:get_raw(Id, Ctx),
    {Data, Checksum} = z_db:q_row("select data, checksum from backup_revision_dict where id = $1", [DictId], Ctx),
    % Rows written before the site had a dictionary (the first case's).
    Other = 900501,
    {OtherRev, _, _, _} = hd(rows(Other, Ctx)),
    ?assertEqual(undefined, row_dictionary(OtherRev, Ctx)),
    Fails = fun(Reason, Text) ->
        % A restarted node knows no dictionary until a row needs it.
        ok = restart_site(Ctx),
        lists:foreach(
            fun(R) ->
                {error, {Reason, #{ dictionary := DictId, message := Message }}} = m_backup_revision:get_revision(R, Ctx),
                ?assertNotEqual(nomatch, binary:match(Message, iolist_to_binary(["revision dictionary ", integer_to_list(DictId), " ", Text])))
            end,
            [R1, R2]),
        ?assertMatch({error, {Reason, _}}, m_backup_revision:revert_resource(Id, R2, [], Ctx)),
        ?assertEqual({ok, Before}, m_rsc:get_raw(Id, Ctx)),
        ?assertMatch({ok, _}, m_backup_revision:get_revision(OtherRev, Ctx)),
        % Saves go on, and read back.
        {ok, #{ <<"data">> := Last }} = m_backup_revision:get_revision(element(1, lists:last(rows(Other, Ctx))), Ctx),
        Next = Last#{ <<"version">> => maps:get(<<"version">>, Last) + 1, <<"title">> => <<"Saved meanwhile">> },
        ok = m_backup_revision:save_revision(Other, Next, Ctx),
        {NewRev, _, _, _} = lists:last(rows(Other, Ctx)),
        ?assertEqual({ok, Next}, maps:find(<<"data">>, element(2, m_backup_revision:get_revision(NewRev, Ctx)))),
        % The admin shows it, naming the dictionary.
        Q = [ {<<"id">>, integer_to_binary(Id)}, {<<"a">>, integer_to_binary(R1)} ],
        Growls = [ Text1 || {growl, Text1, error, _} <- admin_diff(Q, zotonic_host:context(?SITE, admin)) ],
        ?assertMatch([ _ ], Growls),
        ?assertNotEqual(nomatch, binary:match(iolist_to_binary(Growls), integer_to_binary(DictId)))
    end,
    _ = z_db:q("delete from backup_revision_dict where id = $1", [DictId], Ctx),
    Fails(missing_dictionary, "is missing"),
    <<B0, Rest/binary>> = Data,
    _ = z_db:q("insert into backup_revision_dict (id, checksum, data) values ($1, $2, $3)",
               [DictId, Checksum, <<(B0 bxor 1), Rest/binary>>], Ctx),
    Fails(bad_dictionary, "is damaged"),
    Garbage = binary:part(Data, 100, 2000),
    _ = z_db:q("update backup_revision_dict set data = $2, checksum = $3 where id = $1",
               [DictId, Garbage, erlang:crc32(Garbage)], Ctx),
    Fails(bad_dictionary, "is damaged"),
    _ = z_db:q("update backup_revision_dict set data = $2, checksum = $3 where id = $1", [DictId, Data, Checksum], Ctx),
    ok = restart_site(Ctx),
    ?assertMatch({ok, #{ <<"data">> := Props2 }}, m_backup_revision:get_revision(R2, Ctx)).

%% revisions_compact/1 rewrites every row not written the way a save writes now (stock rows,
%% rows without a dictionary, rows with an older one) with the newest dictionary; the
%% dictionaries no row needs any more are deleted, except the two newest; and a downgrade
%% still makes stock rows of everything.
compact_recodes_with_the_newest_dictionary_and_drops_unused_ones(Config) ->
    Ctx = ?config(ctx, Config),
    Old = ensure_dictionary(Ctx),
    % Written with the dictionary Old.
    Id1 = 900601,
    History1 = history(8, 601),
    [ ok = m_backup_revision:save_revision(Id1, P, Ctx) || P <- History1 ],
    ?assertEqual(Old, row_dictionary(element(1, hd(rows(Id1, Ctx))), Ctx)),
    % Stock rows.
    Id2 = 900602,
    History2 = history(8, 602),
    [ z_db:q("insert into backup_revision (rsc_id, type, version, data_type, data) values ($1, 'P', $2, 'erlang', $3)",
             [Id2, maps:get(<<"version">>, P), term_to_binary(P, [compressed])], Ctx) || P <- History2 ],
    % Two newer dictionaries (copies of Old, as if trained twice since).
    _ = z_db:q("insert into backup_revision_dict (checksum, data)
                select checksum, data from backup_revision_dict, generate_series(1, 2) n
                where id = $1", [Old], Ctx),
    ok = restart_site(Ctx),
    {ok, Pid} = mod_backup:revisions_compact(Ctx),
    Ref = erlang:monitor(process, Pid),
    receive {'DOWN', Ref, process, Pid, _} -> ok after 120000 -> ct:fail(compact_timeout) end,
    [ Newest, Second | _ ] = [ D || {D} <- z_db:q("select id from backup_revision_dict order by id desc", Ctx) ],
    ?assert(Newest >= Old + 2),
    % (Resources whose rows earlier cases damaged are left as they are.)
    ?assertEqual(0, z_db:q1(["select count(*) from backup_revision where rsc_id = any($2) and ",
                             backup_revision_dict:recode_sql("$1")], [Newest, [Id1, Id2]], Ctx)),
    % Left: the two newest, and those rows still name (rows earlier cases damaged, which no
    % compaction can rewrite).
    Named = lists:usort([ D || {R} <- z_db:q("select id from backup_revision", Ctx),
                               D <- [row_dictionary(R, Ctx)], D =/= undefined ]),
    ?assertEqual(lists:usort([Second, Newest | Named]),
                 [ D || {D} <- z_db:q("select id from backup_revision_dict order by id", Ctx) ]),
    ?assert(lists:member(Old, Named) orelse not lists:member(Old, [ D || {D} <- z_db:q("select id from backup_revision_dict", Ctx) ])),
    [ ?assertEqual(Newest, row_dictionary(R, Ctx)) || {R, _, _, DT} <- rows(Id1, Ctx) ++ rows(Id2, Ctx),
                                                       DT =:= <<"zkey2">> ],
    ok = check_history(Id1, History1, Ctx),
    ok = check_history(Id2, History2, Ctx),
    % Back to stock rows: every readable row, exactly (the damaged ones are counted as errors).
    {ok, #{ errors := Errors }} = mod_backup:revisions_downgrade(Ctx),
    ?assertEqual(Errors, z_db:q1("select count(*) from backup_revision where data_type <> 'erlang'", Ctx)),
    ?assertEqual([<<"erlang">>], lists:usort([ DT || {_, _, _, DT} <- rows(Id1, Ctx) ++ rows(Id2, Ctx) ])),
    ok = check_history(Id1, History1, Ctx),
    ok = check_history(Id2, History2, Ctx).

%% ---------------------------------------------------------------------------------------------

rows(Id, Ctx) ->
    z_db:q("select id, type, version, data_type from backup_revision where rsc_id = $1 order by id", [Id], Ctx).

%% The dictionary a row is compressed with (undefined for none).
row_dictionary(RevId, Ctx) ->
    case z_db:q1("select data from backup_revision where id = $1", [RevId], Ctx) of
        <<"z", Flags, Id, _/binary>> when Flags band 3 =:= 2, Id < 128 -> Id;
        _ -> undefined
    end.

%% The site's newest dictionary, trained now when it has none.
ensure_dictionary(Ctx) ->
    case z_db:q1("select max(id) from backup_revision_dict", Ctx) of
        undefined ->
            {ok, #{ adopted := true, dictionary := Id }} = backup_revision_dict:train(Ctx, #{ force => true }),
            Id;
        Id ->
            Id
    end.

%% A process in a transaction holding the table of dictionaries in share mode: reads go on,
%% nothing can be stored in it.
hold_dictionaries(Ctx) ->
    Self = self(),
    Pid = spawn_link(fun() ->
        z_db:transaction(fun(C) ->
            _ = z_db:q("lock table backup_revision_dict in share mode", C),
            Self ! {self(), holding},
            receive {Self, release} -> ok end
        end, Ctx),
        Self ! {self(), released}
    end),
    receive {Pid, holding} -> Pid after ?WAIT -> ct:fail(no_lock) end.

release(Pid) ->
    Pid ! {self(), release},
    receive {Pid, released} -> ok after ?WAIT -> ct:fail(no_release) end.

%% What the admin's revision page sends for a diff request with query Q.
admin_diff(Q, C) ->
    C1 = lists:foldl(fun({K, V}, Acc) -> z_context:set_q(K, V, Acc) end, C, Q),
    Before = length(zotonic_host:render_log(?SITE)),
    _ = controller_admin_backup_revision:event(#postback_notify{ message = <<"rev-diff">> }, C1),
    lists:nthtail(Before, zotonic_host:render_log(?SITE)).

%% Restart the site's modules (as a restore does) and wait for mod_backup to be up again.
restart_site(Ctx) ->
    Server = z_utils:name_for_site(mod_backup, z_context:site(Ctx)),
    Table = z_utils:name_for_site(backup_revision_dict, z_context:site(Ctx)),
    Old = whereis(Server),
    ok = z_sites_manager:restart(?SITE),
    wait_until(fun() ->
        New = whereis(Server),
        is_pid(New) andalso New =/= Old andalso ets:info(Table, owner) =:= New
    end).

age_rows(RevIds, Interval, Ctx) ->
    _ = z_db:q(["update backup_revision set created = now() - interval '", Interval, "' where id = any($1)"],
               [RevIds], Ctx),
    ok.

%% Every row of the resource reconstructs to exactly the props saved, in order.
check_history(Id, History, Ctx) ->
    RevIds = [ R || {R, _, _, _} <- rows(Id, Ctx) ],
    ?assertEqual(length(History), length(RevIds)),
    lists:foreach(
        fun({RevId, Props}) ->
            {ok, #{ <<"data">> := Data }} = m_backup_revision:get_revision(RevId, Ctx),
            case Data =:= Props of
                true -> ok;
                false -> ct:fail({revision_differs, RevId, maps:get(<<"version">>, Props)})
            end
        end,
        lists:zip(RevIds, History)).

wait_until(Fun) ->
    wait_until(Fun, ?WAIT div 20).

wait_until(_Fun, 0) ->
    ct:fail(timeout);
wait_until(Fun, N) ->
    case Fun() of
        true -> ok;
        false -> timer:sleep(20), wait_until(Fun, N - 1)
    end.

%% A resource's edit history like a site's: 20-60 props, long HTML bodies in a few languages,
%% each save bumping version and modified and editing one to three props a little; now and
%% then a body is rewritten.
history(N, Seed) ->
    rand:seed(exsss, {Seed, Seed * 7, Seed * 13}),
    Base = base_props(20 + rand:uniform(40)),
    {Hs, _} = lists:mapfoldl(
        fun(V, P) ->
            P1 = edit(P),
            P2 = P1#{ <<"version">> => V, <<"modified">> => {{2025, 1 + V rem 12, 1 + V rem 28}, {V rem 24, V rem 60, 0}} },
            {P2, P2}
        end,
        Base,
        lists:seq(1, N)),
    Hs.

base_props(NProps) ->
    Fixed = #{
        <<"id">> => 1234,
        <<"category_id">> => 106,
        <<"title">> => #trans{ tr = [{en, <<"A title">>}, {nl, <<"Een titel">>}] },
        <<"body">> => #trans{ tr = [{en, html(30)}, {nl, html(25)}, {de, html(20)}] },
        <<"summary">> => #trans{ tr = [{en, words(40)}, {nl, words(35)}] },
        <<"is_published">> => true,
        <<"language">> => [en, nl, de],
        <<"created">> => {{2024, 3, 4}, {5, 6, 7}},
        <<"blocks">> => [ #{ <<"type">> => <<"text">>, <<"name">> => <<"b1">>, <<"body">> => html(8) } ]
    },
    lists:foldl(
        fun(I, Acc) -> Acc#{ <<"extra_", (integer_to_binary(I))/binary>> => words(1 + rand:uniform(8)) } end,
        Fixed,
        lists:seq(1, max(0, NProps - maps:size(Fixed)))).

edit(P) ->
    lists:foldl(fun(_, Acc) -> edit_one(Acc) end, P, lists:seq(1, rand:uniform(3))).

edit_one(P) ->
    case rand:uniform(33) of
        1 ->
            P#{ <<"body">> => #trans{ tr = [{en, html(30)}, {nl, html(25)}, {de, html(20)}] } };
        N when N < 18 ->
            #trans{ tr = Tr } = maps:get(<<"body">>, P),
            {Lang, Text} = lists:nth(rand:uniform(length(Tr)), Tr),
            P#{ <<"body">> => #trans{ tr = lists:keyreplace(Lang, 1, Tr, {Lang, small_edit(Text)}) } };
        N when N < 24 ->
            P#{ <<"title">> => #trans{ tr = [{en, words(3)}, {nl, words(3)}] } };
        N when N < 28 ->
            P#{ <<"is_featured">> => rand:uniform(2) =:= 1 };
        _ ->
            Keys = [ K || <<"extra_", _/binary>> = K <- maps:keys(P) ],
            case Keys of
                [] -> P;
                _ -> P#{ lists:nth(rand:uniform(length(Keys)), Keys) => words(1 + rand:uniform(8)) }
            end
    end.

small_edit(Text) ->
    Pos = rand:uniform(max(1, byte_size(Text) - 20)),
    <<Pre:Pos/binary, Rest/binary>> = Text,
    Cut = min(byte_size(Rest), rand:uniform(12)),
    <<_:Cut/binary, Post/binary>> = Rest,
    <<Pre/binary, (words(1 + rand:uniform(3)))/binary, Post/binary>>.

html(Paragraphs) ->
    iolist_to_binary([ [<<"<p>">>, words(20 + rand:uniform(60)), <<"</p>\n">>] || _ <- lists:seq(1, Paragraphs) ]).

words(N) ->
    Dict = {<<"the">>, <<"revision">>, <<"backup">>, <<"zotonic">>, <<"page">>, <<"editor">>, <<"site">>,
            <<"content">>, <<"quick">>, <<"brown">>, <<"fox">>, <<"lazy">>, <<"dog">>, <<"over">>,
            <<"jumps">>, <<"media">>, <<"image">>, <<"text">>, <<"article">>, <<"person">>,
            <<"een">>, <<"het">>, <<"de">>, <<"und">>, <<"der">>, <<"die">>, <<"das">>, <<"mit">>},
    iolist_to_binary(lists:join(<<" ">>, [ element(rand:uniform(tuple_size(Dict)), Dict) || _ <- lists:seq(1, N) ])).
