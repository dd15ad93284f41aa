%% @doc The revisions of one resource in the admin (`/admin/backup/:id'): the page, the
%% `rev-diff' notification that shows one revision or the changes between two, and the `revert'
%% submit of _dialog_backup_revert_confirm.tpl with its three options.
%%
%% The diff is made here, on the server (the stock module shipped wdiff.js to do it in the
%% browser): values are shown as Zotonic's admin shows them (empty values alike, dates as
%% Y-m-d H:i:s, resource ids with their titles, the stock field order), and
%% backup_revision_codec:diff/2 in the NIF compares them per property and per language of
%% translated texts, with word-level changes marked as <del> and <ins>.
%%
%% Access: users of the admin who may edit the resource; for a deleted resource those who may
%% use mod_backup.
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

-module(controller_admin_backup_revision).

-export([
    service_available/1,
    is_authorized/1,
    process/4,
    event/2
]).

%% Called by Zotonic's controller dispatch (cowmachine) and its postbacks.
-ignore_xref([service_available/1, is_authorized/1, process/4, event/2]).

-include_lib("zotonic_core/include/zotonic.hrl").

%% @doc Never cached, never indexed, as the backup page.
-spec service_available(Context) -> {true, Context} when
    Context :: z:context().
service_available(Context) ->
    controller_admin_backup:service_available(Context).

%% @doc Admin users who may edit the resource, or use mod_backup when it was deleted.
-spec is_authorized(Context) -> {boolean(), Context} when
    Context :: z:context().
is_authorized(Context) ->
    Id = m_rsc:rid(z_context:get_q(<<"id">>, Context), Context),
    {z_acl:is_allowed(use, mod_admin, Context) andalso may_revise(Id, Context), Context}.

%% @doc Render admin_backup_revision.tpl.
-spec process(Method, AcceptedCT, ProvidedCT, Context) -> {iodata(), Context} when
    Method :: binary(),
    AcceptedCT :: term(),
    ProvidedCT :: term(),
    Context :: z:context().
process(_Method, _AcceptedCT, _ProvidedCT, Context) ->
    Vars = [
        {id, m_rsc:rid(z_context:get_q(<<"id">>, Context), Context)},
        {page_admin_backup, true}
    ],
    Html = z_template:render(<<"admin_backup_revision.tpl">>, Vars, Context),
    z_context:output(Html, Context).

%% @doc The diff of revisions a and b (`latest' is the resource now), and the revert.
-spec event(Event, Context) -> Context when
    Event :: #postback_notify{} | #submit{},
    Context :: z:context().
event(#postback_notify{ message = <<"rev-diff">> }, Context) ->
    Id = m_rsc:rid(z_context:get_q(<<"id">>, Context), Context),
    case may_revise(Id, Context) of
        true ->
            A = fetch(Id, z_context:get_q(<<"a">>, Context), Context),
            B = fetch(Id, z_context:get_q(<<"b">>, Context), Context),
            show_diff(Id, A, B, Context);
        false ->
            z_render:growl_error(?__("You are not allowed to see the revisions", Context), Context)
    end;
event(#submit{ message = {revert, Args} }, Context) ->
    Context1 = z_render:wire([ {unmask, [ {body, true} ]}, {dialog_close, []} ], Context),
    RscId = m_rsc:rid(proplists:get_value(rsc_id, Args), Context),
    RevId = proplists:get_value(rev_id, Args),
    case may_revise(RscId, Context1) of
        true ->
            Options = [ Opt || Opt <- [ incoming_edges, outgoing_edges, dependent ],
                               z_convert:to_bool(z_context:get_q(atom_to_binary(Opt, utf8), Context1)) ],
            revert(RscId, RevId, Options, Context1);
        false ->
            z_render:growl_error(?__("You are not allowed to recover this page.", Context1), Context1)
    end.

may_revise(undefined, _Context) ->
    false;
may_revise(Id, Context) ->
    case m_rsc:exists(Id, Context) of
        true -> z_acl:rsc_editable(Id, Context);
        false -> z_acl:is_allowed(use, mod_backup, Context)
    end.

revert(Id, RevId, Options, Context) ->
    case m_backup_revision:revert_resource(Id, RevId, Options, Context) of
        ok ->
            z_render:wire({redirect, [ {dispatch, admin_edit_rsc}, {id, Id} ]}, Context);
        {error, eacces} ->
            z_render:growl_error(?__("You are not allowed to recover this page.", Context), Context);
        {error, enoent} ->
            z_render:growl_error(?__("Sorry, this backup has been deleted.", Context), Context);
        {error, badarg} ->
            z_render:growl_error(?__("Sorry, this backup is damaged and can not be restored.", Context), Context);
        {error, {_, #{ dictionary := DictId }}} ->
            z_render:growl_error(iolist_to_binary([
                ?__("Sorry, this backup can not be restored: it needs revision dictionary", Context),
                " ", integer_to_binary(DictId), ", ", ?__("which is missing or damaged.", Context)
            ]), Context);
        {error, _} ->
            z_render:growl_error(?__("Sorry, there was an error replacing your page.", Context), Context)
    end.

%% A revision of the resource by id, or the resource as it is now.
fetch(_Id, undefined, _Context) ->
    undefined;
fetch(Id, Latest, Context) when Latest =:= <<"latest">>; Latest =:= "latest" ->
    case m_rsc:get(Id, Context) of
        Props when is_map(Props) ->
            {ok, #{
                <<"id">> => 0,
                <<"rsc_id">> => Id,
                <<"user_id">> => maps:get(<<"modifier_id">>, Props, undefined),
                <<"created">> => maps:get(<<"modified">>, Props, undefined),
                <<"version">> => maps:get(<<"version">>, Props, undefined),
                <<"data">> => Props
            }};
        _ ->
            undefined
    end;
fetch(Id, RevId, Context) ->
    case m_backup_revision:get_revision(RevId, Context) of
        {ok, #{ <<"rsc_id">> := Id } = Rev} -> {ok, Rev};
        {ok, _} -> undefined;
        {error, badarg} -> {error, badarg};
        {error, {Reason, #{ dictionary := _ }}} = Error
            when Reason =:= missing_dictionary; Reason =:= bad_dictionary -> Error;
        {error, _} -> undefined
    end.

show_diff(_Id, {error, _} = Error, _B, Context) ->
    damaged(Error, Context);
show_diff(_Id, _A, {error, _} = Error, Context) ->
    damaged(Error, Context);
show_diff(_Id, undefined, _B, Context) ->
    Context;
show_diff(Id, {ok, A}, B, Context) ->
    {BRev, BData} = case B of
        {ok, #{ <<"data">> := D } = Rev} -> {Rev, D};
        undefined -> {undefined, #{}}
    end,
    case diff_rows(maps:get(<<"data">>, A), BData, Context) of
        {ok, Rows} ->
            Vars = [ {id, Id}, {a, A}, {b, BRev}, {diff, Rows} ],
            z_render:update("page-diff", #render{ template = "_admin_backup_diff.tpl", vars = Vars }, Context);
        {error, _} ->
            damaged(Context)
    end.

damaged(Context) ->
    damaged({error, badarg}, Context).

damaged({error, {_, #{ dictionary := Id }}}, Context) ->
    Text = iolist_to_binary([
        ?__("Sorry, this backup can not be shown: it needs revision dictionary", Context),
        " ", integer_to_binary(Id), ", ",
        ?__("which is missing or damaged.", Context)
    ]),
    z_render:growl_error(Text, Context);
damaged(_Error, Context) ->
    z_render:growl_error(?__("Sorry, this backup is damaged and can not be shown.", Context), Context).

%% The rows of _admin_backup_diff.tpl: [Property, HtmlA, HtmlB] per changed property (per
%% language for translated texts), in the order Zotonic's admin uses. Deleted words are in <del>
%% in HtmlA, inserted words in <ins> in HtmlB; text is HTML-escaped. Against an empty B every
%% property of A is listed with its value.
diff_rows(PropsA, PropsB, Context) ->
    A = display_props(PropsA, Context),
    B = display_props(PropsB, Context),
    case backup_revision_codec:diff(A, B) of
        {ok, Changes} ->
            Sorted = lists:sort([ {field_order(K), K, L, C} || #{ key := K, lang := L } = C <- Changes ]),
            {ok, [ row(C, map_size(B) =:= 0) || {_, _, _, C} <- Sorted ]};
        {error, _} = Error ->
            Error
    end.

%% Fields first in this order, as Zotonic's admin_rsc_diff lists them; others after, by name.
-define(FIELD_ORDER, [
    <<"title">>, <<"category_id">>, <<"creator_id">>, <<"modifier_id">>, <<"created">>,
    <<"modified">>, <<"publication_start">>, <<"publication_end">>, <<"org_pubdate">>,
    <<"is_published">>, <<"is_featured">>, <<"is_protected">>, <<"is_dependent">>,
    <<"visible_for">>, <<"content_group_id">>, <<"language">>, <<"chapeau">>, <<"subtitle">>,
    <<"short_title">>, <<"summary">>, <<"name_prefix">>, <<"name_first">>,
    <<"name_surname_prefix">>, <<"name_surname">>, <<"phone">>, <<"phone_mobile">>,
    <<"phone_alt">>, <<"phone_emergency">>, <<"email">>, <<"website">>,
    <<"is_website_redirect">>, <<"date_start">>, <<"date_end">>, <<"date_remarks">>,
    <<"date_is_all_day">>, <<"address_street_1">>, <<"address_street_2">>, <<"address_city">>,
    <<"address_state">>, <<"address_postcode">>, <<"address_country">>, <<"location_lng">>,
    <<"location_lat">>, <<"body">>, <<"body_extra">>, <<"blocks">>, <<"uri">>,
    <<"page_path">>, <<"is_page_path_multiple">>, <<"name">>, <<"seo_noindex">>, <<"slug">>,
    <<"custom_slug">>, <<"seo_desc">>
]).
-define(ID_FIELDS, [<<"category_id">>, <<"creator_id">>, <<"modifier_id">>, <<"rsc_id">>,
                    <<"content_group_id">>]).

field_order(Key) ->
    K = z_convert:to_binary(Key),
    case lists:search(fun({_, F}) -> F =:= K end, lists:zip(lists:seq(1, length(?FIELD_ORDER)), ?FIELD_ORDER)) of
        {value, {N, _}} -> {N, K};
        false -> {length(?FIELD_ORDER) + 1, K}
    end.

%% Props as the admin shows them: empty values (undefined, <<>>, [], an empty translation) are
%% left out, so "not set" and "empty" are no change; datetimes as text; ids with their title.
display_props(Props, Context) when is_map(Props) ->
    maps:fold(
        fun(K, V, Acc) ->
            case is_empty(V) of
                true -> Acc;
                false -> Acc#{ K => display_value(z_convert:to_binary(K), V, Context) }
            end
        end,
        #{},
        Props);
display_props(_, _Context) ->
    #{}.

is_empty(undefined) -> true;
is_empty(<<>>) -> true;
is_empty([]) -> true;
is_empty(#trans{ tr = [] }) -> true;
is_empty(_) -> false.

display_value(_K, {{Y, M, D}, {H, I, S}}, _Context)
    when is_integer(Y), is_integer(M), is_integer(D), is_integer(H), is_integer(I), is_number(S) ->
    iolist_to_binary(io_lib:format("~4..0B-~2..0B-~2..0B ~2..0B:~2..0B:~2..0B", [Y, M, D, H, I, trunc(S)]));
display_value(K, Id, Context) when is_integer(Id) ->
    case lists:member(K, ?ID_FIELDS) of
        true ->
            case z_trans:lookup_fallback(m_rsc:p_no_acl(Id, <<"title">>, Context), Context) of
                Title when is_binary(Title), Title =/= <<>> ->
                    iolist_to_binary([ Title, " (", integer_to_binary(Id), ")" ]);
                _ ->
                    Id
            end;
        false ->
            Id
    end;
display_value(_K, V, _Context) ->
    V.

row(#{ key := Key, lang := Lang, old := Old, new := New, ops := Ops }, IsSingle) ->
    Label = case Lang of
        undefined -> z_convert:to_binary(Key);
        _ -> iolist_to_binary([ z_convert:to_binary(Key), " (", z_convert:to_binary(Lang), ")" ])
    end,
    case {IsSingle, Ops} of
        {true, _} ->
            [ Label, escape(Old), <<>> ];
        {false, []} ->
            [ Label, mark(<<"del">>, Old), mark(<<"ins">>, New) ];
        {false, _} ->
            [ Label, side(del, Ops), side(ins, Ops) ]
    end.

side(Kind, Ops) ->
    iolist_to_binary([
        case Op of
            eq -> escape(Text);
            Kind -> mark(atom_to_binary(Kind, utf8), Text);
            _ -> <<>>
        end
        || {Op, Text} <- Ops
    ]).

mark(_Tag, undefined) -> <<>>;
mark(_Tag, <<>>) -> <<>>;
mark(Tag, Text) -> iolist_to_binary([ $<, Tag, $>, escape(Text), "</", Tag, $> ]).

escape(undefined) ->
    <<>>;
escape(Text) ->
    << <<(escape_char(C))/binary>> || <<C>> <= Text >>.

escape_char($&) -> <<"&amp;">>;
escape_char($<) -> <<"&lt;">>;
escape_char($>) -> <<"&gt;">>;
escape_char($") -> <<"&quot;">>;
escape_char($') -> <<"&#39;">>;
escape_char(C) -> <<C>>.
