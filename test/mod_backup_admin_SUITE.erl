%% @doc The admin side of mod_backup in the test host: controller_admin_backup (page variables,
%% a missing pg_dump, the settings postbacks and who may use them), the backup_start action's
%% postback, the app env lock of the settings, and a structural check of the admin templates
%% (every block tag closed) -- the host does not render templates.
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

-module(mod_backup_admin_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").
-include_lib("zotonic_core/include/zotonic.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1, init_per_testcase/2, end_per_testcase/2]).
-export([
    page_vars_and_render/1,
    missing_pg_dump_reported/1,
    settings_postbacks/1,
    config_locked_by_app_env/1,
    action_postback_growls/1,
    dispatch_rules/1,
    templates_well_formed/1,
    template_lib_files_exist/1,
    revision_diff_rows_as_the_admin_shows_values/1
]).

-define(SITE, bckadmin).

all() ->
    [
        page_vars_and_render,
        missing_pg_dump_reported,
        settings_postbacks,
        config_locked_by_app_env,
        action_postback_growls,
        dispatch_rules,
        templates_well_formed,
        template_lib_files_exist,
        revision_diff_rows_as_the_admin_shows_values
    ].

init_per_suite(Config) ->
    zb_test_util:start_site(?SITE, Config).

end_per_suite(_Config) ->
    zotonic_host:stop_site(?SITE),
    ok.

init_per_testcase(_Case, Config) ->
    Config.

end_per_testcase(_Case, Config) ->
    application:unset_env(zotonic, pg_dump),
    application:unset_env(zotonic_mod_backup, is_config_locked),
    application:unset_env(zotonic_mod_backup, daily_dump),
    _ = zb_test_util:end_case(Config),
    ok.

%% ---------------------------------------------------------------------------------------------

page_vars_and_render(_Config) ->
    Admin = zotonic_host:context(?SITE, admin),
    Vars = page_vars(Admin),
    ?assertEqual(false, proplists:get_value(is_config_locked, Vars)),
    ?assertEqual(false, proplists:get_value(is_filestore_enabled, Vars)),
    ?assertEqual(true, proplists:get_value(page_admin_backup, Vars)),
    ?assertEqual(false, proplists:get_value(backup_in_progress, Vars)),
    #{ ok := true, db_dump := PgDump, archive := true } = proplists:get_value(backup_config, Vars),
    ?assert(filelib:is_regular(PgDump)),
    ?assertMatch({true, _}, controller_admin_backup:service_available(Admin)).

missing_pg_dump_reported(_Config) ->
    Admin = zotonic_host:context(?SITE, admin),
    ok = application:set_env(zotonic, pg_dump, "/nonexistent/bin/pg_dump"),
    ?assertEqual({error, not_configured}, backup_create:command_configuration()),
    Cfg = proplists:get_value(backup_config, page_vars(Admin)),
    ?assertEqual(false, maps:get(ok, Cfg, false)),
    ?assertEqual(false, maps:get(db_dump, Cfg)),
    % A backup started anyway fails cleanly and registers nothing.
    Context = zotonic_host:context(?SITE, sudo),
    ok = mod_backup:start_backup(false, Context),
    ok = zb_test_util:wait_idle(Context),
    ?assertEqual(#{}, backup_json_index:read(backup_create:dir(Context))),
    ?assertEqual(<<"error">>, maps:get(status, lists:last(
        zotonic_host:mqtt_messages(?SITE, <<"model/backup/event/backup">>)))).

settings_postbacks(_Config) ->
    Admin = zotonic_host:context(?SITE, admin),
    Editor = zotonic_host:context(?SITE, editor),
    Sudo = zotonic_host:context(?SITE, sudo),
    Daily = fun(V, Ctx) ->
        controller_admin_backup:event(#postback{ message = config_backup_daily }, z_context:set_q(<<"triggervalue">>, V, Ctx))
    end,
    _ = Daily(<<"2">>, Admin),
    ?assertEqual(<<"2">>, z_convert:to_binary(m_config:get_value(mod_backup, daily_dump, Sudo))),
    _ = Daily(<<"1">>, Editor),
    ?assertEqual(<<"2">>, z_convert:to_binary(m_config:get_value(mod_backup, daily_dump, Sudo))),
    _ = controller_admin_backup:event(#postback{ message = config_backup_panel },
                                      z_context:set_q(<<"triggervalue">>, <<"true">>, Admin)),
    ?assert(backup_config:admin_panel(Sudo)),
    Growls = [ {Type, T} || {growl, T, Type, _} <- zotonic_host:render_log(?SITE) ],
    ct:pal("growls: ~p", [Growls]),
    ?assertMatch([ {notice, _}, {error, _}, {notice, _} ], Growls),
    _ = Daily(<<"0">>, Admin).

config_locked_by_app_env(_Config) ->
    Admin = zotonic_host:context(?SITE, admin),
    Sudo = zotonic_host:context(?SITE, sudo),
    ok = m_config:set_value(mod_backup, daily_dump, <<"0">>, Sudo),
    ok = application:set_env(zotonic_mod_backup, daily_dump, "1"),
    % Without the lock the site's setting wins.
    ?assertEqual(0, backup_config:daily_dump(Sudo)),
    ok = application:set_env(zotonic_mod_backup, is_config_locked, true),
    ?assert(backup_config:is_config_locked()),
    ?assertEqual(1, backup_config:daily_dump(Sudo)),
    ?assertEqual(true, proplists:get_value(is_config_locked, page_vars(Admin))),
    Before = length(zotonic_host:render_log(?SITE)),
    _ = controller_admin_backup:event(#postback{ message = config_backup_daily },
                                      z_context:set_q(<<"triggervalue">>, <<"2">>, Admin)),
    ?assertEqual(<<"0">>, z_convert:to_binary(m_config:get_value(mod_backup, daily_dump, Sudo))),
    ?assertMatch([ {growl, _, error, _} ], lists:nthtail(Before, zotonic_host:render_log(?SITE))).

action_postback_growls(_Config) ->
    Admin = zotonic_host:context(?SITE, admin),
    Anon = zotonic_host:context(?SITE, anonymous),
    Start = fun(Ctx) ->
        Before = length(zotonic_host:render_log(?SITE)),
        _ = action_backup_backup_start:event(#postback{ message = {backup_start, false} }, Ctx),
        [ {Type, Text} || {growl, Text, Type, _} <- lists:nthtail(Before, zotonic_host:render_log(?SITE)) ]
    end,
    ?assertMatch([ {error, _} ], Start(Anon)),
    zb_test_util:hold_queue(),
    ?assertMatch([ {notice, _} ], Start(Admin)),
    [ {error, InProgress} ] = Start(Admin),
    ct:pal("in progress growl: ~s", [InProgress]),
    ?assertMatch({match, _}, re:run(InProgress, <<"already in progress">>)),
    {JS, _} = action_backup_backup_start:render_action(<<"t1">>, undefined, [{is_full_backup, true}], Admin),
    ?assert(iolist_size(JS) > 0).

dispatch_rules(_Config) ->
    {ok, [Rules]} = file:consult(filename:join([code:priv_dir(zotonic_mod_backup), "dispatch", "backup"])),
    ?assertEqual([admin_backup, admin_backup_revision, admin_backup_deleted, backup_download],
                 [ element(1, R) || R <- Rules ]),
    {backup_download, ["backup", "download", '*'], controller_file, Opts} = lists:keyfind(backup_download, 1, Rules),
    ?assertEqual([{module, mod_backup}], proplists:get_value(root, Opts)),
    ?assertEqual(attachment, proplists:get_value(content_disposition, Opts)),
    ?assert(lists:all(fun(R) -> lists:member(seo_noindex, element(4, R)) end, Rules)).

%% Every {% if/for/with/block/... %} has its end tag, in the right nesting.
templates_well_formed(_Config) ->
    Dir = filename:join(code:priv_dir(zotonic_mod_backup), "templates"),
    Own = [ "admin_backup.tpl", "_admin_backup_list.tpl", "_admin_backup_widget_backup_now.tpl",
            "_admin_backup_widget_config_backup_config.tpl", "_admin_backup_widget_config_export_panel.tpl",
            "admin_backup_revision.tpl", "_admin_backup_diff.tpl", "_dialog_backup_revert_confirm.tpl",
            "admin_backup_deleted.tpl", "_dialog_backup_upload.tpl", "_admin_edit_sidebar.tpl",
            "_admin_edit_content_publish.tpl" ],
    ?assertEqual(lists:sort(Own), lists:sort(filelib:wildcard("*.tpl", Dir))),
    lists:foreach(
        fun(T) ->
            {ok, Bin} = file:read_file(filename:join(Dir, T)),
            ?assertEqual({T, ok}, {T, check_tags(Bin)})
        end,
        Own).

check_tags(Bin) ->
    {match, Tags} = re:run(Bin, <<"{%\\s*(\\w+)">>, [global, {capture, all_but_first, binary}]),
    Block = [ <<"if">>, <<"for">>, <<"with">>, <<"block">>, <<"comment">>, <<"ifequal">>, <<"autoescape">>,
             <<"javascript">>, <<"raw">>, <<"spaceless">> ],
    check_nesting([ T || [T] <- Tags ], Block, []).

check_nesting([], _Block, []) ->
    ok;
check_nesting([], _Block, Open) ->
    {unclosed, Open};
check_nesting([ <<"end", Name/binary>> | Rest ], Block, [ Name | Open ]) ->
    check_nesting(Rest, Block, Open);
check_nesting([ <<"end", _/binary>> = End | _ ], _Block, Open) ->
    {unexpected, End, Open};
check_nesting([ T | Rest ], Block, Open) ->
    case lists:member(T, Block) of
        true -> check_nesting(Rest, Block, [ T | Open ]);
        false -> check_nesting(Rest, Block, Open)
    end.

%% Every file a template asks for with Zotonic's `{% lib %}' tag is served from some app's
%% priv/lib; this app ships none, so its templates may ask for none of their own (the stock
%% revision page asked for js/wdiff.js and js/modules/z.make_diff.js, a 404 here).
template_lib_files_exist(_Config) ->
    Priv = code:priv_dir(zotonic_mod_backup),
    Templates = filelib:wildcard(filename:join([Priv, "templates", "*.tpl"])),
    Wanted = lists:usort(lists:flatmap(fun lib_paths/1, Templates)),
    Missing = [ {T, P} || {T, P} <- Wanted, not filelib:is_regular(filename:join([Priv, "lib", P])) ],
    ?assertEqual([], Missing).

lib_paths(Template) ->
    {ok, Bin} = file:read_file(Template),
    case re:run(Bin, "{%\\s*lib\\s+([^%]*)%}", [global, {capture, all_but_first, binary}]) of
        nomatch -> [];
        {match, Tags} ->
            [ {filename:basename(Template), P}
              || [Args] <- Tags,
                 {match, Ps} <- [ re:run(Args, "\"([^\"]+)\"", [global, {capture, all_but_first, binary}]) ],
                 [P] <- Ps ]
    end.

%% The diff of two revisions, made on the server: "not set" and "empty" are no change, dates
%% read as Y-m-d H:i:s, resource ids carry their title, and the rows come in the admin's order.
revision_diff_rows_as_the_admin_shows_values(_Config) ->
    Ctx = zotonic_host:context(?SITE, sudo),
    Editor = zotonic_host:context(?SITE, editor),
    {ok, Id} = m_rsc_update:insert(#{ <<"category">> => text, <<"title">> => <<"Diff page">>,
                                      <<"body">> => <<"<p>One two three</p>">>,
                                      <<"date_start">> => {{2024, 5, 6}, {7, 8, 9}} }, Editor),
    {ok, _} = m_rsc_update:update(Id, #{ <<"body">> => <<"<p>One 2 three</p>">>, <<"summary">> => <<>>,
                                         <<"date_start">> => {{2024, 5, 7}, {7, 8, 9}} }, Editor),
    [R1, R2] = [ R || {R} <- z_db:q("select id from backup_revision where rsc_id = $1 order by id", [Id], Ctx) ],
    Q = [ {<<"id">>, integer_to_binary(Id)}, {<<"a">>, integer_to_binary(R1)}, {<<"b">>, integer_to_binary(R2)} ],
    C1 = lists:foldl(fun({K, V}, Acc) -> z_context:set_q(K, V, Acc) end, Editor, Q),
    Before = length(zotonic_host:render_log(?SITE)),
    _ = controller_admin_backup_revision:event(#postback_notify{ message = <<"rev-diff">> }, C1),
    [ {update, <<"page-diff">>, #render{ vars = Vars }} ] =
        [ E || {update, _, _} = E <- lists:nthtail(Before, zotonic_host:render_log(?SITE)) ],
    Rows = proplists:get_value(diff, Vars),
    Keys = [ K || [K | _] <- Rows ],
    ct:pal("diff rows: ~p", [Rows]),
    [ [_, BodyA, BodyB] ] = [ R || [<<"body">> | _] = R <- Rows ],
    ?assertEqual(<<"&lt;p&gt;One <del>two</del> three&lt;/p&gt;">>, BodyA),
    ?assertEqual(<<"&lt;p&gt;One <ins>2</ins> three&lt;/p&gt;">>, BodyB),
    [ [_, DateA, DateB] ] = [ R || [<<"date_start">> | _] = R <- Rows ],
    ?assertEqual(<<"2024-05-<del>06</del> 07:08:09">>, DateA),
    ?assertEqual(<<"2024-05-<ins>07</ins> 07:08:09">>, DateB),
    ?assertNot(lists:member(<<"summary">>, Keys)),
    % Zotonic's admin order: created before date_start before body.
    ?assertEqual([<<"created">>, <<"date_start">>, <<"body">>],
                 [ K || K <- Keys, lists:member(K, [<<"created">>, <<"date_start">>, <<"body">>]) ]),
    % One revision alone: the modifier shown with its title.
    C2 = lists:foldl(fun({K, V}, Acc) -> z_context:set_q(K, V, Acc) end, Editor,
                     [ {<<"id">>, integer_to_binary(Id)}, {<<"a">>, integer_to_binary(R2)} ]),
    Before2 = length(zotonic_host:render_log(?SITE)),
    _ = controller_admin_backup_revision:event(#postback_notify{ message = <<"rev-diff">> }, C2),
    [ {update, _, #render{ vars = Vars2 }} ] =
        [ E || {update, _, _} = E <- lists:nthtail(Before2, zotonic_host:render_log(?SITE)) ],
    [ [_, Creator, <<>>] ] = [ R || [<<"creator_id">> | _] = R <- proplists:get_value(diff, Vars2) ],
    ?assertMatch({match, _}, re:run(Creator, "\\([0-9]+\\)$")),
    ok = m_rsc_update:delete(Id, Ctx).

%% The variables controller_admin_backup renders admin_backup.tpl with, for a GET by Context
%% (from the host's record of template renders).
page_vars(Context) ->
    Before = length(zotonic_host:render_log(?SITE)),
    _ = controller_admin_backup:process(<<"GET">>, undefined, undefined, Context),
    [ {template, <<"admin_backup.tpl">>, Vars} ] =
        [ E || {template, _, _} = E <- lists:nthtail(Before, zotonic_host:render_log(?SITE)) ],
    Vars.
