%% @doc The revision log of resources: every saved version of a resource (and its props at
%% deletion), the edge log and the medium log, with revert, the deleted-pages list and the
%% daily pruning. The tables and their meaning are those of Zotonic's mod_backup, and this
%% module has the stock model's exports; the work is done by support modules, one per concern:
%%
%% <ul>
%%   <li>backup_revision_save: saving a revision (and the deleted-revision of a deleted
%%       resource), the per-resource lock;</li>
%%   <li>backup_revision_read: reading and reconstructing revisions, the lists;</li>
%%   <li>backup_revision_revert: reverting a resource with its edges and medium;</li>
%%   <li>backup_revision_log: the edge and medium logs;</li>
%%   <li>backup_revision_prune: retention, keeping every surviving chain whole;</li>
%%   <li>backup_revision_schema: the tables, indexes and trigger;</li>
%%   <li>backup_revision_codec (the row format, over the NIF), backup_revision_cache and
%%       backup_revision_compact (conversion to and from stock rows).</li>
%% </ul>
%%
%% Storage: where stock Zotonic writes every save as `term_to_binary(Props, [compressed])'
%% (data_type `erlang'), we write a keyframe (the full props) at least every N saves of a
%% resource and compact deltas in between; readers of this model only ever see `erlang' rows
%% with decoded props. Model paths (m.backup_revision): list/&lt;id&gt;, title/&lt;id&gt;,
%% retention_months, user_retention_days, deleted_user_retention_days.
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

-module(m_backup_revision).
-behaviour(zotonic_model).

-export([
    m_get/3,

    revert_resource/4,

    list_deleted/2,

    revision_title/2,
    save_deleted/3,
    save_revision/3,
    get_revision/2,
    list_revisions/2,
    list_revisions_assoc/2,

    edge_insert/4,
    edge_delete/4,

    medium_insert/3,
    medium_update/3,
    medium_delete/3,
    medium_delete_check/2,

    periodic_cleanup/1,

    install/1,

    insert_deleted_revisions/1
]).

%% The stock model's API (sites call it), and the pivot task Zotonic runs by name.
-ignore_xref([revision_title/2, list_revisions/2, list_revisions_assoc/2, insert_deleted_revisions/1]).

-include_lib("zotonic_core/include/zotonic.hrl").

-type revert_option() :: incoming_edges | outgoing_edges | dependent.
-type revision() :: #{ binary() => term() }.
-export_type([revert_option/0, revision/0]).

%% ---------------------------------------------------------------------------------------------
%% Model

%% @doc Fetch a value of the model.
-spec m_get(Path, Msg, Context) -> zotonic_model:return() when
    Path :: [ binary() ],
    Msg :: zotonic_model:opt_msg(),
    Context :: z:context().
m_get([ <<"list">>, Id | Rest ], _Msg, Context) ->
    RscId = m_rsc:rid(Id, Context),
    Revisions = case may_see_revisions(RscId, Context) of
        true -> backup_revision_read:list_revisions(RscId, assoc, Context);
        false -> []
    end,
    {ok, {Revisions, Rest}};
m_get([ <<"title">>, Id | Rest ], _Msg, Context) ->
    RscId = m_rsc:rid(Id, Context),
    Title = case m_rsc:exists(RscId, Context) of
        true ->
            m_rsc:p(RscId, <<"title">>, Context);
        false ->
            case z_acl:is_allowed(use, mod_backup, Context) of
                true -> backup_revision_read:revision_title(RscId, Context);
                false -> undefined
            end
    end,
    {ok, {Title, Rest}};
m_get([ <<"retention_months">> | Rest ], _Msg, Context) ->
    {ok, {backup_config:retention_months(Context), Rest}};
m_get([ <<"user_retention_days">> | Rest ], _Msg, Context) ->
    {ok, {backup_config:user_retention_days(Context), Rest}};
m_get([ <<"deleted_user_retention_days">> | Rest ], _Msg, Context) ->
    {ok, {backup_config:deleted_user_retention_days(Context), Rest}};
m_get(_Path, _Msg, _Context) ->
    {error, unknown_path}.

%% Revisions are shown to those who may edit the resource, or use mod_backup.
may_see_revisions(undefined, _Context) ->
    false;
may_see_revisions(RscId, Context) ->
    z_acl:is_allowed(use, mod_backup, Context)
    orelse (m_rsc:exists(RscId, Context) andalso z_acl:rsc_editable(RscId, Context)).


%% ---------------------------------------------------------------------------------------------
%% Revisions

%% @doc Save a revision of a resource, unless its version is the one saved last.
-spec save_revision(Id, Props, Context) -> ok | {error, term()} when
    Id :: m_rsc:resource_id(),
    Props :: m_rsc:props(),
    Context :: z:context().
save_revision(Id, Props, Context) ->
    backup_revision_save:save(Id, Props, revision, Context).

%% @doc Save the props of a deleted resource. Replaces earlier deleted-revisions of it.
-spec save_deleted(Id, Props, Context) -> ok | {error, term()} when
    Id :: m_rsc:resource_id(),
    Props :: m_rsc:props() | undefined,
    Context :: z:context().
save_deleted(Id, Props, Context) ->
    backup_revision_save:save(Id, Props, deleted, Context).

%% @doc Give every deleted resource (in rsc_gone) that has revisions but no deleted-revision
%% one: its newest revision, dated at its deletion. Queued by install/1 as in stock mod_backup.
-spec insert_deleted_revisions(Context) -> ok when
    Context :: z:context().
insert_deleted_revisions(Context) ->
    backup_revision_save:insert_deleted_revisions(Context).

%% @doc Fetch a revision by its id: the row, with its props in `data' and `data_type'
%% `<<"erlang">>' as stock mod_backup returns it, however the row is stored. A row that cannot
%% be reconstructed (damaged data) gives `{error, badarg}'.
-spec get_revision(RevisionId, Context) -> {ok, Revision} | {error, Reason} when
    RevisionId :: integer() | binary() | string(),
    Context :: z:context(),
    Revision :: revision(),
    Reason :: enoent | badarg.
get_revision(RevId, Context) ->
    backup_revision_read:get_revision(RevId, Context).

%% @doc The revisions of a resource, newest first, as tuples
%% {id, type, created, version, user_id, user_name}.
-spec list_revisions(Id, Context) -> [ tuple() ] when
    Id :: m_rsc:resource() | undefined,
    Context :: z:context().
list_revisions(Id, Context) ->
    backup_revision_read:list_revisions(Id, tuple, Context).

%% @doc The revisions of a resource, newest first, as property lists.
-spec list_revisions_assoc(Id, Context) -> [ proplists:proplist() ] when
    Id :: m_rsc:resource() | undefined,
    Context :: z:context().
list_revisions_assoc(Id, Context) ->
    backup_revision_read:list_revisions(Id, assoc, Context).

%% @doc The title in the newest revision of a (deleted) resource.
-spec revision_title(Id, Context) -> Title when
    Id :: m_rsc:resource_id() | undefined,
    Context :: z:context(),
    Title :: backup_revision_read:title().
revision_title(Id, Context) ->
    backup_revision_read:revision_title(Id, Context).

%% @doc The deleted resources (newest deletion first) with their props at deletion, for the
%% `backup_deleted' search. OffsetLimit is Zotonic's: the offset counts from 1.
-spec list_deleted(OffsetLimit, Context) -> #search_result{} when
    OffsetLimit :: {pos_integer(), non_neg_integer()},
    Context :: z:context().
list_deleted(OffsetLimit, Context) ->
    backup_revision_read:list_deleted(OffsetLimit, Context).

%% @doc Revert a resource to a revision: its props (as an import, so a deleted resource comes
%% back with its id), its "gone" entry dropped, the edges as they were then and the medium
%% record of that time.
-spec revert_resource(RscId, RevisionId, Options, Context) -> ok | {error, Reason} when
    RscId :: m_rsc:resource_id(),
    RevisionId :: integer() | binary(),
    Options :: [ revert_option() ],
    Context :: z:context(),
    Reason :: invalid | enoent | badarg | eacces | term().
revert_resource(RscId, RevId, Options, Context) ->
    backup_revision_revert:revert_resource(RscId, RevId, Options, Context).

%% ---------------------------------------------------------------------------------------------
%% Edge and medium logs

%% @doc Log an inserted edge.
-spec edge_insert(SubjectId, Predicate, ObjectId, Context) -> ok when
    SubjectId :: m_rsc:resource_id(),
    Predicate :: atom() | binary(),
    ObjectId :: m_rsc:resource_id(),
    Context :: z:context().
edge_insert(SubjectId, Predicate, ObjectId, Context) ->
    backup_revision_log:edge(SubjectId, Predicate, ObjectId, true, Context).

%% @doc Log a deleted edge.
-spec edge_delete(SubjectId, Predicate, ObjectId, Context) -> ok when
    SubjectId :: m_rsc:resource_id(),
    Predicate :: atom() | binary(),
    ObjectId :: m_rsc:resource_id(),
    Context :: z:context().
edge_delete(SubjectId, Predicate, ObjectId, Context) ->
    backup_revision_log:edge(SubjectId, Predicate, ObjectId, false, Context).

%% @doc Log a new medium record; earlier records of the resource are marked deleted.
-spec medium_insert(RscId, Props, Context) -> ok when
    RscId :: m_rsc:resource_id(),
    Props :: map(),
    Context :: z:context().
medium_insert(RscId, Props, Context) ->
    backup_revision_log:medium(insert, RscId, Props, Context).

%% @doc Log an updated medium record (inserted when not yet logged).
-spec medium_update(RscId, Props, Context) -> ok when
    RscId :: m_rsc:resource_id(),
    Props :: map(),
    Context :: z:context().
medium_update(RscId, Props, Context) ->
    backup_revision_log:medium(update, RscId, Props, Context).

%% @doc Log a deleted medium record (inserted when not yet logged).
-spec medium_delete(RscId, Props, Context) -> ok when
    RscId :: m_rsc:resource_id(),
    Props :: map(),
    Context :: z:context().
medium_delete(RscId, Props, Context) ->
    backup_revision_log:medium(delete, RscId, Props, Context).

%% @doc Before a resource is deleted: make sure its medium record is in the medium log.
-spec medium_delete_check(Id, Context) -> ok when
    Id :: m_rsc:resource_id(),
    Context :: z:context().
medium_delete_check(Id, Context) ->
    backup_revision_log:medium_delete_check(Id, Context).

%% ---------------------------------------------------------------------------------------------
%% Retention and schema

%% @doc Remove what is older than the retention settings (see backup_revision_prune).
-spec periodic_cleanup(Context) -> ok when
    Context :: z:context().
periodic_cleanup(Context) ->
    backup_revision_prune:periodic_cleanup(Context).

%% @doc Create or upgrade the tables of the revision log.
-spec install(Context) -> ok when
    Context :: z:context().
install(Context) ->
    backup_revision_schema:install(Context).
