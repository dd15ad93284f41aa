%% @doc The test host (zotonic_host/) against the real PostgreSQL server: two sites side by side
%% with their own database and dirs, mod_backup found by Zotonic's module scan and started per
%% site, the notifications of resource, edge, medium and config changes with the contents Zotonic
%% sends, ACL roles, the PostgreSQL client's types and transactions, MQTT, filestore and jobs.
%% Run: eval "$(sh tools/pg_env.sh)" && rebar3 ct --suite test/zotonic_host_SUITE
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

-module(zotonic_host_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").
-include_lib("zotonic_core/include/zotonic.hrl").
-include_lib("zotonic_core/include/zotonic_file.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1, init_per_testcase/2, end_per_testcase/2]).
-export([
    two_sites_have_own_database_and_dirs/1,
    module_scan_finds_mod_backup_by_its_src_file/1,
    mod_backup_started_per_site_with_context/1,
    observers_registered_from_exports_in_prio_order/1,
    insert_sends_rsc_update_done_insert/1,
    update_sends_pre_and_post_props/1,
    unchanged_update_sends_nothing/1,
    delete_sends_rsc_delete_then_rsc_update_done/1,
    edge_insert_and_delete_notify_with_sudo_context/1,
    resource_delete_notifies_its_edges_deleted/1,
    media_replace_and_delete_send_media_update_done/1,
    config_set_value_notifies_only_on_change/1,
    notifications_stay_within_their_site/1,
    props_stored_as_term_in_bytea/1,
    acl_roles_decide_like_zotonic/1,
    pg_client_types_roundtrip/1,
    pg_client_errors_and_transactions/1,
    mqtt_publish_recorded_and_delivered/1,
    filestore_answers_only_when_switched_on/1,
    jobs_counter_limits_concurrency/1,
    rsc_import_of_an_export_updates_as_import/1,
    rsc_reads_come_from_the_depcache_until_a_change_flushes_the_id/1
]).

-define(A, zhost_a).
-define(B, zhost_b).
-define(WAIT, 5000).

all() ->
    [
        two_sites_have_own_database_and_dirs,
        module_scan_finds_mod_backup_by_its_src_file,
        mod_backup_started_per_site_with_context,
        observers_registered_from_exports_in_prio_order,
        insert_sends_rsc_update_done_insert,
        update_sends_pre_and_post_props,
        unchanged_update_sends_nothing,
        delete_sends_rsc_delete_then_rsc_update_done,
        edge_insert_and_delete_notify_with_sudo_context,
        resource_delete_notifies_its_edges_deleted,
        media_replace_and_delete_send_media_update_done,
        config_set_value_notifies_only_on_change,
        notifications_stay_within_their_site,
        props_stored_as_term_in_bytea,
        acl_roles_decide_like_zotonic,
        pg_client_types_roundtrip,
        pg_client_errors_and_transactions,
        mqtt_publish_recorded_and_delivered,
        filestore_answers_only_when_switched_on,
        jobs_counter_limits_concurrency,
        rsc_import_of_an_export_updates_as_import,
        rsc_reads_come_from_the_depcache_until_a_change_flushes_the_id
    ].

init_per_suite(Config) ->
    Modules = [mod_backup, {code, zb_test_observer}],
    {ok, CtxA} = zotonic_host:start_site(?A, #{ modules => Modules }),
    {ok, CtxB} = zotonic_host:start_site(?B, #{ modules => Modules }),
    [ {a, CtxA}, {b, CtxB} | Config ].

end_per_suite(_Config) ->
    ok = zotonic_host:stop_site(?A),
    ok = zotonic_host:stop_site(?B).

init_per_testcase(_Case, Config) ->
    ok = zb_test_observer:listen(?A),
    ok = zb_test_observer:listen(?B),
    flush_notes(),
    Config.

end_per_testcase(_Case, _Config) ->
    ok.

%% ---------------------------------------------------------------------------------------------

two_sites_have_own_database_and_dirs(Config) ->
    CtxA = ?config(a, Config),
    CtxB = ?config(b, Config),
    DbA = proplists:get_value(dbdatabase, z_db_pool:get_database_options(CtxA)),
    DbB = proplists:get_value(dbdatabase, z_db_pool:get_database_options(CtxB)),
    ?assertNotEqual(DbA, DbB),
    ?assertEqual(list_to_binary(DbA), z_db:q1("select current_database()::text", CtxA)),
    ?assertEqual(list_to_binary(DbB), z_db:q1("select current_database()::text", CtxB)),
    {ok, Id} = m_rsc_update:insert(#{ <<"category">> => text, <<"title">> => <<"only in A">> }, CtxA),
    ?assert(m_rsc:exists(Id, CtxA)),
    ?assertNot(m_rsc:exists(Id, CtxB)),
    ArchiveA = z_path:media_archive(CtxA),
    ?assertNotEqual(ArchiveA, z_path:media_archive(CtxB)),
    ?assert(filelib:is_dir(ArchiveA)),
    {ok, SecA} = z_sites_config:security_dir(?A),
    ?assert(filelib:is_dir(SecA)),
    [SiteConfig | _] = z_sites_config:config_files(?A),
    ?assertEqual("zotonic_site.config", filename:basename(SiteConfig)),
    ?assertMatch({ok, [_ | _]}, file:consult(SiteConfig)),
    ?assert(lists:all(fun(T) -> z_db:table_exists(T, CtxA) end,
                      [rsc, edge, medium, config, identity, rsc_gone, hierarchy, module, edge_log])).

module_scan_finds_mod_backup_by_its_src_file(Config) ->
    Scan = z_module_manager:scan(),
    {mod_backup, zotonic_mod_backup, Dir} = lists:keyfind(mod_backup, 1, Scan),
    ?assert(filelib:is_regular(filename:join([Dir, "src", "mod_backup.erl"]))),
    % A *zotonic_mod_* dir without src/mod_x.erl is a module named after the dir.
    Tmp = filename:join(?config(priv_dir, Config), "lib"),
    ok = filelib:ensure_path(filename:join([Tmp, "zotonic_mod_other", "src"])),
    ok = filelib:ensure_path(filename:join([Tmp, "zotonic_mod_thing", "src"])),
    ok = file:write_file(filename:join([Tmp, "zotonic_mod_thing", "src", "mod_thing.erl"]), <<>>),
    ?assertEqual([mod_thing, zotonic_mod_other],
                 lists:sort([ M || {M, _, _} <- z_module_manager:scan([Tmp]) ])).

mod_backup_started_per_site_with_context(Config) ->
    {ok, PidA} = z_module_manager:whereis(mod_backup, ?config(a, Config)),
    {ok, PidB} = z_module_manager:whereis(mod_backup, ?config(b, Config)),
    ?assertNotEqual(PidA, PidB),
    ?assert(is_process_alive(PidA)),
    % Started with start_link([{context, Ctx} | _]): the context is the one of its own site.
    ?assertEqual(?A, element(#context.site, context_of(PidA))),
    ?assertEqual(?B, element(#context.site, context_of(PidB))),
    % The test observer is not a gen_server: it runs under z_module_dummy like in Zotonic.
    {ok, DummyPid} = z_module_manager:whereis(zb_test_observer, ?config(a, Config)),
    ?assertEqual({z_module_dummy, init, 1}, proplists:get_value('$initial_call',
                                                                element(2, process_info(DummyPid, dictionary)))),
    ?assertEqual(600, z_module_manager:prio(mod_backup)).

observers_registered_from_exports_in_prio_order(Config) ->
    Ctx = ?config(a, Config),
    Obs = z_notifier:get_observers(rsc_update_done, Ctx),
    ?assertMatch([{100, {zb_test_observer, observe_rsc_update_done}} | _], Obs),
    ?assertEqual(lists:sort([ P || {P, _} <- Obs ]), [ P || {P, _} <- Obs ]),
    % A fold: the lowest prio number runs first in foldl, last in foldr.
    Self = self(),
    ok = z_notifier:observe(zb_fold, fun(_, Acc, _) -> [late | Acc] end, Self, 900, Ctx),
    ok = z_notifier:observe(zb_fold, fun(_, Acc, _) -> [early | Acc] end, Self, 10, Ctx),
    ?assertEqual([late, early], z_notifier:foldl(zb_fold, [], Ctx)),
    ?assertEqual([early, late], z_notifier:foldr(zb_fold, [], Ctx)),
    ok = z_notifier:detach(zb_fold, Self, Ctx),
    ?assertEqual([], z_notifier:get_observers(zb_fold, Ctx)).

insert_sends_rsc_update_done_insert(_Config) ->
    Editor = zotonic_host:context(?A, editor),
    EditorId = z_acl:user(Editor),
    {ok, Id} = m_rsc_update:insert(#{ <<"category">> => article, <<"title">> => <<"Hello">>,
                                      <<"is_published">> => true }, Editor),
    #rsc_update{ action = insert, id = Id } = wait_note(?A, rsc_update),
    #rsc_update_done{ action = insert, id = Id, pre_is_a = PreIsA, post_is_a = PostIsA,
                      pre_props = Pre, post_props = Post } = wait_note(?A, rsc_update_done),
    ?assertEqual([], PreIsA),
    ?assertEqual([text, article], PostIsA),
    ?assertMatch(#{ <<"version">> := 0, <<"is_published">> := false }, Pre),
    ?assertMatch(#{ <<"id">> := Id, <<"title">> := <<"Hello">>, <<"version">> := 1,
                    <<"is_published">> := true, <<"modifier_id">> := EditorId,
                    <<"category_id">> := _ }, Post),
    ?assertMatch({{_, _, _}, {_, _, _}}, maps:get(<<"publication_start">>, Post)),
    ?assertEqual(EditorId, m_rsc:p(Id, creator_id, Editor)),
    ?assertEqual([#{ id => Id, pre_is_a => [], post_is_a => [text, article] }],
                 zotonic_host:mqtt_messages(?A, topic(Id, <<"insert">>))).

update_sends_pre_and_post_props(_Config) ->
    Ctx = zotonic_host:context(?A, admin),
    {ok, Id} = m_rsc_update:insert(#{ <<"category">> => text, <<"title">> => <<"v1">>, <<"summary">> => <<"s">> }, Ctx),
    _ = wait_note(?A, rsc_update_done),
    {ok, Id} = m_rsc_update:update(Id, #{ <<"title">> => <<"v2">>, <<"summary">> => undefined }, [], Ctx),
    #rsc_update_done{ action = update, id = Id, pre_is_a = [text], post_is_a = [text],
                      pre_props = Pre, post_props = Post } = wait_note(?A, rsc_update_done),
    ?assertMatch(#{ <<"title">> := <<"v1">>, <<"summary">> := <<"s">>, <<"version">> := 1 }, Pre),
    ?assertMatch(#{ <<"title">> := <<"v2">>, <<"version">> := 2 }, Post),
    ?assertNot(maps:is_key(<<"summary">>, Post)),
    ?assertEqual(<<"v2">>, m_rsc:p(Id, title, Ctx)),
    ?assertEqual(2, m_rsc:p(Id, <<"version">>, Ctx)),
    % An import keeps the given modification date and does not touch the modifier.
    Modified = {{2020, 1, 2}, {3, 4, 5}},
    {ok, Id} = m_rsc_update:update(Id, #{ <<"title">> => <<"v3">>, <<"modified">> => Modified }, [is_import], Ctx),
    #rsc_update_done{ post_props = Post3 } = wait_note(?A, rsc_update_done),
    ?assertEqual(Modified, maps:get(<<"modified">>, Post3)),
    ?assertEqual(Modified, m_rsc:p(Id, modified, Ctx)).

unchanged_update_sends_nothing(_Config) ->
    Ctx = zotonic_host:context(?A, admin),
    {ok, Id} = m_rsc_update:insert(#{ <<"category">> => text, <<"title">> => <<"same">> }, Ctx),
    _ = wait_note(?A, rsc_update_done),
    {ok, Id} = m_rsc_update:update(Id, #{ <<"title">> => <<"same">> }, Ctx),
    ?assertEqual(none, maybe_note(?A, rsc_update_done, 300)),
    ?assertEqual(1, m_rsc:p(Id, version, Ctx)).

delete_sends_rsc_delete_then_rsc_update_done(_Config) ->
    Ctx = zotonic_host:context(?A, editor),
    {ok, Id} = m_rsc_update:insert(#{ <<"category">> => person, <<"title">> => <<"Gone">> }, Ctx),
    _ = wait_note(?A, rsc_update_done),
    flush_notes(),
    ok = m_rsc_update:delete(Id, Ctx),
    Notes = [ N || {N, _} <- collect_notes(?A, 300) ],
    ?assertMatch([#rsc_delete{ id = Id, is_a = [person] },
                  #rsc_update_done{ action = delete, id = Id, pre_is_a = [person], post_is_a = [],
                                    post_props = #{} }], Notes),
    #rsc_update_done{ pre_props = Pre } = lists:last(Notes),
    ?assertMatch(#{ <<"title">> := <<"Gone">>, <<"id">> := Id }, Pre),
    ?assertNot(m_rsc:exists(Id, Ctx)),
    ?assert(m_rsc_gone:is_gone(Id, Ctx)),
    ?assertEqual({error, eacces}, m_rsc_update:delete(1, Ctx)).

edge_insert_and_delete_notify_with_sudo_context(_Config) ->
    Ctx = zotonic_host:context(?A, editor),
    {ok, S} = m_rsc_update:insert(#{ <<"category">> => text, <<"title">> => <<"s">> }, Ctx),
    {ok, O} = m_rsc_update:insert(#{ <<"category">> => person, <<"title">> => <<"o">> }, Ctx),
    flush_notes(),
    {ok, EdgeId} = m_edge:insert(S, author, O, Ctx),
    ?assertEqual({ok, EdgeId}, m_edge:insert(S, author, O, Ctx)),
    {#edge_insert{ subject_id = S, predicate = author, object_id = O, edge_id = EdgeId }, true} =
        wait_note_sudo(?A, edge_insert),
    ?assertEqual([O], m_edge:objects(S, author, Ctx)),
    ?assertMatch([{author, [_]}], m_edge:get_edges(S, Ctx)),
    ok = m_edge:delete(S, author, O, Ctx),
    {#edge_delete{ subject_id = S, predicate = author, object_id = O, edge_id = EdgeId }, true} =
        wait_note_sudo(?A, edge_delete),
    ?assertEqual([], m_edge:objects(S, author, Ctx)),
    ?assertEqual({error, {unknown_predicate, nopred}}, m_edge:insert(S, nopred, O, Ctx)),
    ?assertEqual({error, eacces}, m_edge:insert(S, author, O, zotonic_host:context(?A, member))).

resource_delete_notifies_its_edges_deleted(_Config) ->
    Ctx = zotonic_host:context(?A, admin),
    {ok, S} = m_rsc_update:insert(#{ <<"category">> => text, <<"title">> => <<"s">> }, Ctx),
    {ok, O} = m_rsc_update:insert(#{ <<"category">> => text, <<"title">> => <<"o">> }, Ctx),
    {ok, EdgeId} = m_edge:insert(S, relation, O, Ctx),
    _ = wait_note(?A, edge_insert),
    ok = m_rsc_update:delete(O, Ctx),
    #edge_delete{ subject_id = S, predicate = relation, object_id = O, edge_id = EdgeId } = wait_note(?A, edge_delete).

media_replace_and_delete_send_media_update_done(_Config) ->
    Ctx = zotonic_host:context(?A, editor),
    {ok, Id} = m_rsc_update:insert(#{ <<"category">> => image, <<"title">> => <<"img">> }, Ctx),
    flush_notes(),
    Medium = #{ <<"filename">> => <<"2024/01/02/x.jpg">>, <<"mime">> => <<"image/jpeg">>,
                <<"width">> => 10, <<"height">> => 20, <<"size">> => 1234, <<"exif">> => #{ <<"a">> => 1 } },
    ok = m_media:replace(Id, Medium, Ctx),
    #media_update_done{ action = insert, id = Id, pre_is_a = [], post_is_a = [media, image],
                        pre_props = #{}, post_props = Post } = wait_note(?A, media_update_done),
    ?assertMatch(#{ <<"id">> := Id, <<"filename">> := <<"2024/01/02/x.jpg">>, <<"width">> := 10,
                    <<"exif">> := #{ <<"a">> := 1 } }, Post),
    ?assertEqual(Post, m_media:get(Id, Ctx)),
    ok = m_media:delete(Id, Ctx),
    #media_update_done{ action = delete, id = Id, pre_is_a = [media, image], post_is_a = [],
                        pre_props = Post, post_props = #{} } = wait_note(?A, media_update_done),
    ?assertEqual(undefined, m_media:get(Id, Ctx)),
    ok = m_media:recover_medium(Post, Ctx),
    #media_update_done{ action = insert, id = Id } = wait_note(?A, media_update_done),
    ?assertEqual(<<"2024/01/02/x.jpg">>, maps:get(<<"filename">>, m_media:get(Id, Ctx))).

config_set_value_notifies_only_on_change(_Config) ->
    Ctx = zotonic_host:context(?A, sudo),
    ok = m_config:set_value(mod_backup, daily_dump, "1", Ctx),
    #m_config_update{ module = mod_backup, key = daily_dump, value = <<"1">> } = wait_note(?A, m_config_update),
    ?assertEqual(<<"1">>, m_config:get_value(mod_backup, daily_dump, Ctx)),
    ?assert(m_config:get_boolean(mod_backup, daily_dump, Ctx)),
    ok = m_config:set_value(mod_backup, daily_dump, <<"1">>, Ctx),
    ?assertEqual(none, maybe_note(?A, m_config_update, 300)),
    ?assertEqual(<<"x">>, m_config:get_value(mod_backup, nokey, <<"x">>, Ctx)).

notifications_stay_within_their_site(_Config) ->
    ok = zotonic_host:mqtt_flush(?A),
    CtxB = zotonic_host:context(?B, admin),
    {ok, Id} = m_rsc_update:insert(#{ <<"category">> => text, <<"title">> => <<"in B">> }, CtxB),
    #rsc_update_done{ id = Id } = wait_note(?B, rsc_update_done),
    ?assertEqual(none, maybe_note(?A, rsc_update_done, 300)),
    ?assertEqual([], zotonic_host:mqtt_messages(?A)),
    ?assertMatch([_], zotonic_host:mqtt_messages(?B, topic(Id, <<"insert">>))).

props_stored_as_term_in_bytea(_Config) ->
    Ctx = zotonic_host:context(?A, admin),
    Body = #trans{ tr = [{en, <<"<p>text</p>">>}, {nl, <<"<p>tekst</p>">>}] },
    {ok, Id} = m_rsc_update:insert(#{ <<"category">> => text, <<"title">> => <<"t">>, <<"body">> => Body,
                                      <<"blocks">> => [#{ <<"name">> => <<"b1">> }] }, Ctx),
    % Zotonic's marker (16#01326A3A) + term_to_binary(Props, [compressed]) in rsc.props.
    Raw = z_db:q1("select props::bytea from rsc where id = $1", [Id], Ctx),
    ?assertMatch(#{ <<"body">> := Body, <<"title">> := <<"t">> }, Raw),
    Bytes = z_db:q1("select encode(props, 'hex') from rsc where id = $1", [Id], Ctx),
    <<"01326a3a", Hex/binary>> = Bytes,
    ?assertEqual(Raw, binary_to_term(binary:decode_hex(Hex))),
    % Columns are not duplicated in props.
    ?assertNot(maps:is_key(<<"version">>, Raw)),
    ?assertEqual(Body, m_rsc:p(Id, body, Ctx)).

acl_roles_decide_like_zotonic(_Config) ->
    Admin = zotonic_host:context(?A, admin),
    Editor = zotonic_host:context(?A, editor),
    Member = zotonic_host:context(?A, member),
    Anon = zotonic_host:context(?A, anonymous),
    ?assert(z_acl:is_allowed(use, mod_backup, Admin)),
    ?assertNot(z_acl:is_allowed(use, mod_backup, Editor)),
    ?assert(z_acl:is_allowed(use, mod_admin, Editor)),
    ?assertNot(z_acl:is_allowed(use, mod_backup, Anon)),
    ?assert(z_acl:is_admin(Admin)),
    ?assertNot(z_acl:is_admin(Editor)),
    ?assert(z_acl:is_sudo(zotonic_host:context(?A, sudo))),
    {ok, Id} = m_rsc_update:insert(#{ <<"category">> => text, <<"title">> => <<"draft">> }, Editor),
    ?assert(z_acl:rsc_editable(Id, Editor)),
    ?assertNot(z_acl:rsc_editable(Id, Member)),
    ?assertEqual({error, eacces}, m_rsc_update:update(Id, #{ <<"title">> => <<"x">> }, Member)),
    ?assertEqual({error, eacces}, m_rsc_update:insert(#{ <<"category">> => text }, Anon)),
    ?assertEqual(undefined, m_rsc:get(Id, Anon)),
    ?assertEqual(undefined, m_rsc:get(Id, Member)),
    ?assertMatch(#{ <<"title">> := <<"draft">> }, m_rsc:get(Id, Editor)),
    {ok, Id} = m_rsc_update:update(Id, #{ <<"is_published">> => true }, Editor),
    ?assertMatch(#{ <<"title">> := <<"draft">> }, m_rsc:get(Id, Anon)),
    ReadOnly = z_acl:set_read_only(true, Editor),
    ?assert(z_acl:is_read_only(ReadOnly)),
    ?assertNot(z_acl:rsc_editable(Id, ReadOnly)),
    % An #acl_is_allowed{} observer decides before the roles, as ACL modules do in Zotonic.
    Self = self(),
    ok = z_notifier:observe(acl_is_allowed,
                            fun(#acl_is_allowed{ action = use, object = mod_backup }, _) -> true;
                               (_, _) -> undefined
                            end, Self, 1, Admin),
    ?assert(z_acl:is_allowed(use, mod_backup, Editor)),
    ok = z_notifier:detach(acl_is_allowed, Self, Admin),
    ?assertNot(z_acl:is_allowed(use, mod_backup, Editor)),
    ?assertEqual({true, Admin}, z_controller_helper:is_authorized([{use, mod_backup}], Admin)),
    ?assertEqual({false, Editor}, z_controller_helper:is_authorized([{use, mod_backup}], Editor)).

pg_client_types_roundtrip(Config) ->
    Ctx = ?config(a, Config),
    DT = {{2024, 2, 29}, {23, 59, 58}},
    Row = z_db:q_row("select $1::int, $2::bigint, $3::text, $4::bool, $5::float8, $6::timestamptz,
                             $7::date, $8::bytea, $9::bytea, $10::int[], $11::text[], $12::int,
                             $13::jsonb, 12.50::numeric, $14::varchar",
                     [1, 1 bsl 40, <<"tëxt"/utf8>>, true, 1.5, DT, {2024, 1, 2}, {term, {a, [1]}},
                      <<0, 255>>, [1, undefined, 3], [<<"a">>, <<"b">>], undefined,
                      #{ <<"k">> => [1, <<"v">>, null] }, "string"], Ctx),
    ?assertEqual({1, 1 bsl 40, <<"tëxt"/utf8>>, true, 1.5, DT, {2024, 1, 2}, {a, [1]}, <<0, 255>>,
                  [1, undefined, 3], [<<"a">>, <<"b">>], undefined,
                  #{ <<"k">> => [1, <<"v">>, undefined] }, 12.5, <<"string">>}, Row),
    ?assertEqual({ok, [#{ <<"a">> => 1, <<"b">> => undefined }]}, z_db:qmap("select 1 as a, null::text as b", Ctx)),
    ?assertEqual([[{a, 1}]], z_db:assoc("select 1 as a", Ctx)),
    ?assertMatch({ok, [_, _], [{<<"1">>, null}]}, z_db:squery("select 1, null", Ctx)),
    % The session runs in UTC, so timestamptz round-trips as UTC.
    ?assertEqual(<<"UTC">>, z_db:q1("show timezone", Ctx)).

pg_client_errors_and_transactions(Config) ->
    Ctx = ?config(a, Config),
    ?assertThrow({error, {error, error, <<"42P01">>, undefined_table, _, _}}, z_db:q("select * from nosuchtable", Ctx)),
    ?assertMatch({error, {error, error, <<"42601">>, syntax_error, _, _}}, z_db:qmap("selec 1", Ctx)),
    _ = z_db:q("create table zb_t (id serial primary key, v text)", Ctx),
    ?assertEqual({rollback, oops}, z_db:transaction(fun(C) ->
                                                       1 = z_db:q("insert into zb_t (v) values ('a')", C),
                                                       {rollback, {rollback, oops}}
                                                   end, Ctx)),
    ?assertMatch({rollback, {crash, _}}, z_db:transaction(fun(C) ->
                                                             1 = z_db:q("insert into zb_t (v) values ('b')", C),
                                                             error(crash)
                                                         end, Ctx)),
    ?assertEqual(0, z_db:q1("select count(*) from zb_t", Ctx)),
    ?assertEqual(ok, z_db:transaction(fun(C) ->
                                         ok = z_db:transaction(fun(C2) -> 1 = z_db:q("insert into zb_t (v) values ('c')", C2), ok end, C),
                                         ok
                                     end, Ctx)),
    ?assertEqual(1, z_db:q1("select count(*) from zb_t", Ctx)),
    {ok, NewId} = z_db:insert(zb_t, #{ <<"v">> => <<"d">> }, Ctx),
    ?assertEqual(<<"d">>, z_db:q1("select v from zb_t where id = $1", [NewId], Ctx)),
    ?assert(z_db:table_exists(zb_t, Ctx)),
    ?assert(z_db:key_exists(zb_t, zb_t_pkey, Ctx)),
    ?assert(z_db:function_exists(edge_update, Ctx)),
    ok = z_db:drop_table(zb_t, Ctx),
    ?assertNot(z_db:table_exists(zb_t, Ctx)).

mqtt_publish_recorded_and_delivered(Config) ->
    Ctx = ?config(a, Config),
    ok = zotonic_host:mqtt_flush(?A),
    ok = z_mqtt:subscribe(<<"model/backup/event/+">>, Ctx),
    ok = z_mqtt:publish(<<"model/backup/event/backup">>, #{ status => <<"started">> }, Ctx),
    ok = z_mqtt:publish([<<"model">>, <<"other">>], x, Ctx),
    receive
        {mqtt_msg, #{ topic := [<<"model">>, <<"backup">>, <<"event">>, <<"backup">>],
                      payload := #{ status := <<"started">> } }} -> ok
    after ?WAIT -> ct:fail(no_mqtt_msg)
    end,
    ?assertEqual([{<<"model/backup/event/backup">>, #{ status => <<"started">> }}, {<<"model/other">>, x}],
                 zotonic_host:mqtt_messages(?A)),
    ok = z_mqtt:unsubscribe(<<"model/backup/event/+">>, Ctx).

filestore_answers_only_when_switched_on(Config) ->
    Ctx = ?config(a, Config),
    Lookup = #filestore_credentials_lookup{ path = <<"backup/backup.json">> },
    ?assertEqual(undefined, z_notifier:first(Lookup, Ctx)),
    ok = zotonic_host:filestore(?A, true),
    ?assertMatch({ok, #filestore_credentials{}}, z_notifier:first(Lookup, Ctx)),
    Local = filename:join(?config(priv_dir, Config), "up.txt"),
    ok = file:write_file(Local, <<"data">>),
    ok = z_notifier:first(#filestore_request{ action = upload, remote = <<"backup/up.txt">>, local = Local }, Ctx),
    ?assertEqual({ok, <<"data">>}, file:read_file(filename:join(zotonic_host:filestore_dir(?A), "backup/up.txt"))),
    Down = filename:join(?config(priv_dir, Config), "down.txt"),
    ok = z_notifier:first(#filestore_request{ action = download, remote = <<"backup/up.txt">>, local = Down }, Ctx),
    ?assertEqual({ok, <<"data">>}, file:read_file(Down)),
    ok = zotonic_host:filestore(?A, false),
    ?assertEqual(undefined, z_notifier:first(Lookup, Ctx)).

jobs_counter_limits_concurrency(_Config) ->
    ok = jobs:add_queue(zb_queue, [{regulators, [{counter, [{limit, 1}]}]}]),
    ?assertMatch({queue, _}, jobs:queue_info(zb_queue)),
    ?assertEqual(undefined, jobs:queue_info(zb_no_queue)),
    Self = self(),
    Run = fun(N) -> spawn(fun() -> jobs:run(zb_queue, fun() -> Self ! {start, N}, timer:sleep(200), Self ! {stop, N} end) end) end,
    _ = Run(1),
    _ = Run(2),
    Events = [ receive E -> E after ?WAIT -> timeout end || _ <- lists:seq(1, 4) ],
    ?assertMatch([{start, X}, {stop, X}, {start, Y}, {stop, Y}], Events),
    ?assertEqual(42, jobs:run(zotonic_singular_job, fun() -> 42 end)),
    true = jobs:delete_queue(zb_queue).

rsc_import_of_an_export_updates_as_import(_Config) ->
    Ctx = zotonic_host:context(?A, admin),
    {ok, Id} = m_rsc_update:insert(#{ <<"category">> => text, <<"title">> => <<"old">> }, Ctx),
    JSON = z_json:decode(z_json:encode(#{
        <<"uri">> => <<"https://elsewhere.test/id/42">>,
        <<"is_a">> => [<<"text">>, <<"article">>],
        <<"resource">> => #{ <<"id">> => 42, <<"title">> => <<"imported">>, <<"version">> => 7,
                             <<"modified">> => {{2021, 3, 4}, {5, 6, 7}} }
    })),
    ?assertEqual({ok, {Id, #{ <<"https://elsewhere.test/id/42">> => Id }}},
                 m_rsc_import:import(Id, JSON, [is_authoritative], Ctx)),
    ?assertEqual(<<"imported">>, m_rsc:p(Id, title, Ctx)),
    ?assertEqual([text, article], m_rsc:is_a(Id, Ctx)),
    ?assertEqual({{2021, 3, 4}, {5, 6, 7}}, m_rsc:p(Id, modified, Ctx)),
    ?assertEqual(2, m_rsc:p(Id, version, Ctx)),
    ?assertEqual({error, status}, m_rsc_import:import(Id, #{ <<"x">> => 1 }, [], Ctx)).

rsc_reads_come_from_the_depcache_until_a_change_flushes_the_id(_Config) ->
    Ctx = zotonic_host:context(?A, admin),
    {ok, Id} = m_rsc_update:insert(#{ <<"category">> => text, <<"title">> => <<"first">> }, Ctx),
    % A title written behind the models' back: only get_raw/2 reads the database.
    Behind = fun(Title) ->
        Props = z_db:q1("select props::bytea from rsc where id = $1", [Id], Ctx),
        1 = z_db:q("update rsc set props = $2 where id = $1", [Id, ?DB_PROPS(Props#{ <<"title">> => Title })], Ctx),
        ok
    end,
    Seen = fun() ->
        {m_rsc:p_no_acl(Id, <<"title">>, Ctx), m_rsc:p(Id, title, Ctx), maps:get(<<"title">>, m_rsc:get(Id, Ctx))}
    end,
    ?assertEqual({<<"first">>, <<"first">>, <<"first">>}, Seen()),
    ok = Behind(<<"second">>),
    ?assertEqual({<<"first">>, <<"first">>, <<"first">>}, Seen()),
    ?assertMatch({ok, #{ <<"title">> := <<"second">> }}, m_rsc:get_raw(Id, Ctx)),
    % Each committed change flushes the id: update, touch, and a flush of the whole site.
    {ok, Id} = m_rsc_update:update(Id, #{ <<"summary">> => <<"s">> }, Ctx),
    ?assertEqual({<<"second">>, <<"second">>, <<"second">>}, Seen()),
    ok = Behind(<<"third">>),
    {ok, Id} = m_rsc:touch(Id, Ctx),
    ?assertEqual(<<"third">>, m_rsc:p_no_acl(Id, <<"title">>, Ctx)),
    ok = Behind(<<"fourth">>),
    ok = z_depcache:flush(Ctx),
    ?assertEqual(<<"fourth">>, m_rsc:p_no_acl(Id, <<"title">>, Ctx)),
    % The cache is per site, and a site restart empties it, as Zotonic starts a new depcache.
    CtxB = zotonic_host:context(?B, admin),
    TitleInB = case m_rsc:get_raw(Id, CtxB) of
        {ok, InB} -> maps:get(<<"title">>, InB, undefined);
        {error, enoent} -> undefined
    end,
    ?assertEqual(TitleInB, m_rsc:p_no_acl(Id, <<"title">>, CtxB)),
    ok = Behind(<<"fifth">>),
    ok = z_sites_manager:restart(?A),
    ?assertEqual(<<"fifth">>, m_rsc:p_no_acl(Id, <<"title">>, Ctx)),
    % exists/2 is read through the cache too; a delete flushes the id.
    ?assert(m_rsc:exists(Id, Ctx)),
    ok = m_rsc_update:delete(Id, Ctx),
    ?assertNot(m_rsc:exists(Id, Ctx)),
    ?assertEqual(undefined, m_rsc:get(Id, Ctx)).

%% ---------------------------------------------------------------------------------------------

context_of(Pid) ->
    % mod_backup keeps its context in its state; the skeleton's state is #state{context}.
    State = sys:get_state(Pid),
    element(2, State).

topic(Id, Action) ->
    iolist_to_binary([<<"model/rsc/event/">>, integer_to_binary(Id), $/, Action]).

wait_note(Site, Name) ->
    {Msg, _IsSudo} = wait_note_sudo(Site, Name),
    Msg.

wait_note_sudo(Site, Name) ->
    receive
        {zb_note, Site, Msg, IsSudo} when element(1, Msg) =:= Name -> {Msg, IsSudo}
    after ?WAIT ->
        ct:fail({no_notification, Site, Name})
    end.

maybe_note(Site, Name, Timeout) ->
    receive
        {zb_note, Site, Msg, _} when element(1, Msg) =:= Name -> Msg
    after Timeout ->
        none
    end.

collect_notes(Site, Timeout) ->
    receive
        {zb_note, Site, #rsc_update{}, _} -> collect_notes(Site, Timeout);
        {zb_note, Site, Msg, IsSudo} -> [{Msg, IsSudo} | collect_notes(Site, Timeout)]
    after Timeout ->
        []
    end.

flush_notes() ->
    receive
        {zb_note, _, _, _} -> flush_notes()
    after 0 ->
        ok
    end.
