%% @doc The revisions of one resource in the admin (`/admin/backup/:id'): the page, the
%% `rev-diff' notification that shows one revision or the changes between two (computed by
%% backup_revision_codec:diff/2 in the NIF: per property, per language of translated texts, with
%% word-level changes marked as <del> and <ins>), and the `revert' submit of
%% _dialog_backup_revert_confirm.tpl with its three options.
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
    event/2,
    diff_rows/2
]).

-include_lib("zotonic_core/include/zotonic.hrl").

%% @doc Never cached, never indexed.
-spec service_available(Context) -> {true, Context} when
    Context :: z:context().
service_available(Context) ->
    Context1 = z_context:set_noindex_header(Context),
    {true, z_context:set_nocache_headers(Context1)}.

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
        {error, _} -> undefined
    end.

show_diff(_Id, {error, badarg}, _B, Context) ->
    damaged(Context);
show_diff(_Id, _A, {error, badarg}, Context) ->
    damaged(Context);
show_diff(_Id, undefined, _B, Context) ->
    Context;
show_diff(Id, {ok, A}, B, Context) ->
    {BRev, BData} = case B of
        {ok, #{ <<"data">> := D } = Rev} -> {Rev, D};
        undefined -> {undefined, #{}}
    end,
    case diff_rows(maps:get(<<"data">>, A), BData) of
        {ok, Rows} ->
            Vars = [ {id, Id}, {a, A}, {b, BRev}, {diff, Rows} ],
            z_render:update("page-diff", #render{ template = "_admin_backup_diff.tpl", vars = Vars }, Context);
        {error, _} ->
            damaged(Context)
    end.

damaged(Context) ->
    z_render:growl_error(?__("Sorry, this backup is damaged and can not be shown.", Context), Context).

%% @doc The rows of _admin_backup_diff.tpl: [Property, HtmlA, HtmlB] per changed property (per
%% language for translated texts), sorted by property. Deleted words are in <del> in HtmlA,
%% inserted words in <ins> in HtmlB; text is HTML-escaped. Against an empty B every property
%% of A is listed with its value.
-spec diff_rows(PropsA, PropsB) -> {ok, [ [ binary() ] ]} | {error, term()} when
    PropsA :: map(),
    PropsB :: map().
diff_rows(PropsA, PropsB) ->
    case backup_revision_codec:diff(PropsA, PropsB) of
        {ok, Changes} -> {ok, [ row(C, map_size(PropsB) =:= 0) || C <- Changes ]};
        {error, _} = Error -> Error
    end.

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
