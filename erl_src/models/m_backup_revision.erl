%% @doc The revision log of resources: every saved version of a resource (and its props at
%% deletion), the edge log and the medium log, with revert, the deleted-pages list and the
%% daily pruning. The tables and their meaning are those of Zotonic's mod_backup.
%%
%% Storage: where stock Zotonic writes every save as `term_to_binary(Props, [compressed])'
%% (data_type `erlang'), we write a keyframe (the full props) at least every ?KEYFRAME_EVERY
%% saves of a resource and compact deltas in between (see backup_revision_codec). Each delta is
%% relative to the row saved just before it (by id) of the same resource, so a revision is read
%% from the last full row (`erlang' or keyframe) up to it, in one query. `erlang' rows stay
%% readable forever and may be followed by deltas. Deleted-resource rows (`D') are always full,
%% and so is the first save after one. Whenever rows are removed (pruning, the replacement of
%% an earlier `D' row), a surviving delta whose predecessor goes is first rewritten as a
%% keyframe in the same transaction, so no delta is ever left without its base. All writes to
%% the rows of one resource take a transaction-scoped advisory lock on that resource. A save
%% makes its delta from the props of the previous save while backup_revision_cache still holds
%% them (checked against the newest row's checksum), so it reads only that row; otherwise it
%% reads and rebuilds the chain.
%%
%% Model paths (m.backup_revision): list/<id>, title/<id>, retention_months,
%% user_retention_days, deleted_user_retention_days.
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
%% A zotonic_model (m_get/3); the -behaviour attribute is left out so the module also compiles
%% where zotonic_model is not present (the test host).

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
    insert_deleted_revisions/1,

    lock_resource/2,
    resource_rows/2,
    keyframe_every/0
]).

-include_lib("zotonic_core/include/zotonic.hrl").

%% Row types: a saved version (P) and the props at deletion (D).
-define(TYPE_PROPS, <<"P">>).

%% The revisions of a resource, newest first (list_revisions/2 and list_revisions_assoc/2).
-define(LIST_REVISIONS_SQL, "
    select id, type, created, version, user_id, user_name
    from backup_revision
    where rsc_id = $1
    order by created desc, id desc").
-define(TYPE_DELETED, <<"D">>).

%% A keyframe at least every this many saves of a resource: a revision is reconstructed from
%% at most this many rows.
-define(KEYFRAME_EVERY, 50).

%% First key of the advisory lock taken on the rows of one resource (the second is its id).
-define(LOCK_CLASS, 16#7a62).

%% Edge-log entries this many seconds older than a revision still belong to it (the revision
%% row is written after the edges of the same save).
-define(EDGE_REVERT_SLACK, 2).

%% A medium record deleted up to MIN seconds before a revision belongs to it; when none
%% matches, one deleted up to MAX seconds before is taken.
-define(MEDIUM_REVERT_MIN, 2).
-define(MEDIUM_REVERT_MAX, 15).

-type revert_option() :: incoming_edges | outgoing_edges | dependent.
-type revision() :: #{ binary() => term() }.
-export_type([revert_option/0, revision/0]).

%% ---------------------------------------------------------------------------------------------
%% Model

%% @doc Fetch a value of the model.
-spec m_get(Path, Msg, Context) -> {ok, {Value, Rest}} | {error, unknown_path} when
    Path :: [ binary() ],
    Msg :: term(),
    Context :: z:context(),
    Value :: term(),
    Rest :: [ binary() ].
m_get([ <<"list">>, Id | Rest ], _Msg, Context) ->
    RscId = m_rsc:rid(Id, Context),
    Revisions = case may_see_revisions(RscId, Context) of
        true -> list_revisions_assoc(RscId, Context);
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
                true -> revision_title(RscId, Context);
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
%% Saving

%% @doc Save the props of a deleted resource. Replaces earlier deleted-revisions of it.
-spec save_deleted(Id, Props, Context) -> ok | {error, term()} when
    Id :: m_rsc:resource_id(),
    Props :: m_rsc:props() | undefined,
    Context :: z:context().
save_deleted(_Id, undefined, _Context) ->
    ok;
save_deleted(Id, Props, Context) when is_integer(Id), is_map(Props) ->
    save(Id, Props, true, Context).

%% @doc Save a revision of a resource, unless its version is the one saved last.
-spec save_revision(Id, Props, Context) -> ok | {error, term()} when
    Id :: m_rsc:resource_id(),
    Props :: m_rsc:props(),
    Context :: z:context().
save_revision(Id, Props, Context) when is_integer(Id), is_map(Props) ->
    save(Id, Props, false, Context).

save(Id, Props, IsDeleted, Context) ->
    Version = maps:get(<<"version">>, Props, undefined),
    UserId = z_acl:user(Context),
    UserName = user_name(UserId, Context),
    F = fun(Ctx) ->
        ok = lock_resource(Id, Ctx),
        {Newest, Base} = newest(Id, Ctx),
        case Newest of
            #{ <<"version">> := Version } when not IsDeleted, Version =/= undefined ->
                skipped;
            _ ->
                {DataType, Data} = encode_save(Id, Props, IsDeleted, Newest, Base, Ctx),
                insert_revision(Id, IsDeleted, Version, UserId, UserName, DataType, Data, Ctx)
        end
    end,
    case z_db:transaction(F, Context) of
        {inserted, RevId} when not IsDeleted ->
            backup_revision_cache:store(Id, RevId, Props, Context);
        {inserted, _RevId} ->
            ok;
        skipped ->
            ok;
        {rollback, {Reason, _Stack}} ->
            ?LOG_ERROR(#{
                in => zotonic_mod_backup,
                text => <<"Could not save revision">>,
                rsc_id => Id,
                result => error,
                reason => Reason
            }),
            {error, Reason};
        {error, Reason} = Error ->
            ?LOG_ERROR(#{
                in => zotonic_mod_backup,
                text => <<"Could not save revision">>,
                rsc_id => Id,
                result => error,
                reason => Reason
            }),
            Error
    end.

insert_revision(Id, IsDeleted, Version, UserId, UserName, DataType, Data, Context) ->
    Type = case IsDeleted of
        true -> ?TYPE_DELETED;
        false -> ?TYPE_PROPS
    end,
    RevId = z_db:q1("
        insert into backup_revision
            (rsc_id, type, version, user_id, user_name, data_type, data)
        values ($1, $2, $3, $4, $5, $6, $7)
        returning id",
        [ Id, Type, Version, UserId, UserName, DataType, Data ],
        Context),
    case IsDeleted of
        true ->
            Cond = "type = 'D' and id <> $1",
            _ = prune_resource_rows(Id, Cond, [ RevId ], Context),
            ok;
        false ->
            ok
    end,
    {inserted, RevId}.

%% The newest row of the resource (undefined when it has none) with `chain_length', the number
%% of rows from its last full row up to and including it, and what the next delta can be made
%% from: the cached props of a recent save `{cached, RevId, Etf}', else the rows of that chain
%% `{chain, [{DataType, Data}]}'. One query either way; with the cache, only the newest row's
%% data is read.
newest(RscId, Context) ->
    Delta = backup_revision_codec:data_type_delta(),
    case backup_revision_cache:lookup(RscId, Context) of
        {ok, RevId, Etf} ->
            {ok, Rows} = z_db:qmap(["
                select b.id, b.type, b.version, b.data_type, b.data,
                       (select count(*) from backup_revision c
                        where c.rsc_id = $1
                          and c.id >= ", last_full_id("$1", ""), ")::int as chain_length
                from backup_revision b
                where b.rsc_id = $1
                order by b.id desc
                limit 1"],
                [ RscId, Delta ],
                Context),
            case Rows of
                [ Row ] -> {Row, {cached, RevId, Etf}};
                [] -> {undefined, {chain, []}}
            end;
        undefined ->
            case latest_chain(RscId, Context) of
                [] ->
                    {undefined, {chain, []}};
                Rows ->
                    Last = lists:last(Rows),
                    {Last#{ <<"chain_length">> => length(Rows) }, {chain, chain_of(Rows)}}
            end
    end.

%% The rows of the resource from its last full row to its newest, in save order.
latest_chain(RscId, Context) ->
    {ok, Rows} = z_db:qmap(["
        select b.id, b.type, b.version, b.data_type, b.data
        from backup_revision b
        where b.rsc_id = $1
          and b.id >= ", last_full_id("$1", ""), "
        order by b.id"],
        [ RscId, backup_revision_codec:data_type_delta() ],
        Context),
    Rows.

%% SQL: the id of the resource's last full row (0 when none), rows limited by UpTo; $2 must be
%% the delta data_type. Every chain read starts there.
last_full_id(Rsc, UpTo) ->
    ["coalesce((select max(k.id) from backup_revision k where k.rsc_id = ", Rsc, UpTo,
     " and k.data_type <> $2), 0)"].

chain_of(Rows) ->
    [ {DT, D} || #{ <<"data_type">> := DT, <<"data">> := D } <- Rows ].

%% A full row for the first save, a deletion, the save after a deletion and every
%% ?KEYFRAME_EVERY saves; else a delta from the newest row: from the cached props of that row
%% when there are any and its checksum accepts them, else from its chain.
encode_save(_Id, Props, true, _Newest, _Base, _Context) ->
    keyframe(Props);
encode_save(_Id, Props, false, undefined, _Base, _Context) ->
    keyframe(Props);
encode_save(_Id, Props, false, #{ <<"type">> := ?TYPE_DELETED }, _Base, _Context) ->
    keyframe(Props);
encode_save(_Id, Props, false, #{ <<"chain_length">> := N }, _Base, _Context) when N >= ?KEYFRAME_EVERY ->
    keyframe(Props);
encode_save(Id, Props, false, #{ <<"id">> := LastId, <<"data_type">> := DT, <<"data">> := D } = Newest,
            {cached, LastId, BaseEtf}, Context) ->
    case backup_revision_codec:encode_delta_from({DT, D}, BaseEtf, Props) of
        {ok, Row} -> Row;
        {error, _} -> delta_from_chain(Props, Newest, chain_of(latest_chain(Id, Context)))
    end;
encode_save(Id, Props, false, Newest, {cached, _OtherRevId, _BaseEtf}, Context) ->
    delta_from_chain(Props, Newest, chain_of(latest_chain(Id, Context)));
encode_save(_Id, Props, false, Newest, {chain, Chain}, _Context) ->
    delta_from_chain(Props, Newest, Chain).

delta_from_chain(Props, #{ <<"id">> := LastId }, Chain) ->
    case backup_revision_codec:encode_delta_after(Chain, Props) of
        {ok, Row} ->
            Row;
        {error, Reason} ->
            ?LOG_WARNING(#{
                in => zotonic_mod_backup,
                text => <<"Previous revision unreadable, saving a keyframe">>,
                revision_id => LastId,
                result => error,
                reason => Reason
            }),
            keyframe(Props)
    end.

keyframe(Props) ->
    {ok, Row} = backup_revision_codec:encode_keyframe(Props),
    Row.

user_name(undefined, _Context) ->
    undefined;
user_name(UserId, Context) ->
    case m_rsc:p_no_acl(UserId, <<"title">>, Context) of
        undefined ->
            undefined;
        Title ->
            z_string:truncatechars(z_trans:lookup_fallback(Title, Context), 60)
    end.

%% @doc Serialise all writers of the revision rows of a resource (inside a transaction).
-spec lock_resource(RscId, Context) -> ok when
    RscId :: m_rsc:resource_id(),
    Context :: z:context().
lock_resource(RscId, Context) ->
    _ = z_db:q("select 1 from (select pg_advisory_xact_lock($1::int, $2::int)) l",
               [ ?LOCK_CLASS, RscId ], Context),
    ok.

%% @doc The keyframe interval: a full row at least every this many saves.
-spec keyframe_every() -> pos_integer().
keyframe_every() ->
    ?KEYFRAME_EVERY.

%% ---------------------------------------------------------------------------------------------
%% Reading

%% @doc Fetch a revision by its id: the row, with its props in `data' and `data_type'
%% `<<"erlang">>' as stock mod_backup returns it, however the row is stored. A row that cannot
%% be reconstructed (damaged data) gives `{error, badarg}'.
-spec get_revision(RevisionId, Context) -> {ok, Revision} | {error, Reason} when
    RevisionId :: integer() | binary() | string(),
    Context :: z:context(),
    Revision :: revision(),
    Reason :: enoent | badarg.
get_revision(RevId0, Context) ->
    case catch z_convert:to_integer(RevId0) of
        RevId when is_integer(RevId) ->
            case chain_rows(RevId, Context) of
                [] -> {error, enoent};
                Chain -> reconstruct(Chain)
            end;
        _ ->
            {error, enoent}
    end.

%% The rows from the last full row up to RevId, in save order, in one query. The resource and
%% the keyframe are uncorrelated subqueries, so PostgreSQL computes each once (a join let the
%% planner redo the keyframe search for every row of the resource).
chain_rows(RevId, Context) ->
    Rsc = "(select r.rsc_id from backup_revision r where r.id = $1)",
    {ok, Rows} = z_db:qmap(["
        select b.*
        from backup_revision b
        where b.rsc_id = ", Rsc, "
          and b.id <= $1
          and b.id >= ", last_full_id(Rsc, " and k.id <= $1"), "
        order by b.id"],
        [ RevId, backup_revision_codec:data_type_delta() ],
        Context),
    Rows.

reconstruct(Chain) ->
    Last = lists:last(Chain),
    Rows = [ {DT, D} || #{ <<"data_type">> := DT, <<"data">> := D } <- Chain ],
    case backup_revision_codec:decode(Rows) of
        {ok, Props} ->
            % Reported as stock reports its rows: our storage format stays inside the module.
            {ok, Last#{ <<"data_type">> => backup_revision_codec:data_type_erlang(), <<"data">> => Props }};
        {error, Reason} ->
            ?LOG_ERROR(#{
                in => zotonic_mod_backup,
                text => <<"Revision can not be reconstructed">>,
                revision_id => maps:get(<<"id">>, Last),
                rsc_id => maps:get(<<"rsc_id">>, Last),
                result => error,
                reason => Reason
            }),
            {error, badarg}
    end.

%% @doc The revisions of a resource, newest first, as tuples
%% {id, type, created, version, user_id, user_name}.
-spec list_revisions(Id, Context) -> [ tuple() ] when
    Id :: m_rsc:resource() | undefined,
    Context :: z:context().
list_revisions(undefined, _Context) ->
    [];
list_revisions(Id, Context) when is_integer(Id) ->
    z_db:q(?LIST_REVISIONS_SQL, [ Id ], Context);
list_revisions(Id, Context) ->
    list_revisions(m_rsc:rid(Id, Context), Context).

%% @doc The revisions of a resource, newest first, as property lists.
-spec list_revisions_assoc(Id, Context) -> [ proplists:proplist() ] when
    Id :: m_rsc:resource() | undefined,
    Context :: z:context().
list_revisions_assoc(undefined, _Context) ->
    [];
list_revisions_assoc(Id, Context) when is_integer(Id) ->
    z_db:assoc(?LIST_REVISIONS_SQL, [ Id ], Context);
list_revisions_assoc(Id, Context) ->
    list_revisions_assoc(m_rsc:rid(Id, Context), Context).

%% @doc The title in the newest revision of a (deleted) resource.
-spec revision_title(Id, Context) -> Title when
    Id :: m_rsc:resource_id() | undefined,
    Context :: z:context(),
    Title :: binary() | #trans{} | undefined | term().
revision_title(undefined, _Context) ->
    undefined;
revision_title(Id, Context) ->
    case z_db:q1("
        select id
        from backup_revision
        where rsc_id = $1
        order by id desc
        limit 1",
        [ Id ], Context)
    of
        undefined ->
            undefined;
        RevId ->
            case get_revision(RevId, Context) of
                {ok, #{ <<"data">> := Props }} -> props_title(Props);
                {error, _} -> undefined
            end
    end.

props_title(#{ <<"title">> := Title }) when Title =/= undefined -> Title;
props_title(#{ <<"short_title">> := Title }) when Title =/= undefined -> Title;
props_title(#{ <<"subtitle">> := Title }) -> Title;
props_title(Props) when is_list(Props) -> proplists:get_value(title, Props);
props_title(_) -> undefined.

%% @doc The deleted resources (newest deletion first) with their props at deletion, for the
%% `backup_deleted' search. OffsetLimit is Zotonic's: the offset counts from 1.
-spec list_deleted(OffsetLimit, Context) -> #search_result{} when
    OffsetLimit :: {pos_integer(), non_neg_integer()},
    Context :: z:context().
list_deleted({Offset, Limit}, Context) ->
    {ok, Rows} = z_db:qmap("
        select b.*
        from backup_revision b
            left join rsc r on r.id = b.rsc_id
        where b.type = 'D'
          and r.id is null
        order by b.created desc, b.id desc
        offset $1
        limit $2",
        [ max(Offset - 1, 0), Limit ],
        Context),
    Total = z_db:q1("
        select count(*)
        from backup_revision b
            left join rsc r on r.id = b.rsc_id
        where b.type = 'D'
          and r.id is null",
        Context),
    #search_result{
        result = [ expand_deleted(R, Context) || R <- Rows ],
        total = Total,
        is_total_estimated = false
    }.

expand_deleted(#{ <<"id">> := RevId, <<"data_type">> := DataType, <<"data">> := Data } = Row, Context) ->
    Decoded = case backup_revision_codec:is_full(DataType) of
        true ->
            backup_revision_codec:decode([ {DataType, Data} ]);
        false ->
            case get_revision(RevId, Context) of
                {ok, #{ <<"data">> := P }} -> {ok, P};
                {error, _} = Error -> Error
            end
    end,
    case Decoded of
        {ok, Props} -> Row#{ <<"data_type">> => <<"term">>, <<"data">> => Props };
        {error, _} -> Row#{ <<"data_type">> => <<"term">>, <<"data">> => undefined }
    end.

%% ---------------------------------------------------------------------------------------------
%% Revert

%% @doc Revert a resource to a revision: its props (as an import, so a deleted resource comes
%% back with its id), its "gone" entry dropped, the edges as they were then (replaying the edge
%% log backwards) and the medium record of that time.
-spec revert_resource(RscId, RevisionId, Options, Context) -> ok | {error, Reason} when
    RscId :: m_rsc:resource_id(),
    RevisionId :: integer() | binary(),
    Options :: [ revert_option() ],
    Context :: z:context(),
    Reason :: invalid | enoent | badarg | eacces | term().
revert_resource(RscId, RevId, Options, Context) ->
    case get_revision(RevId, Context) of
        {ok, #{ <<"rsc_id">> := RscId, <<"data">> := Props, <<"created">> := Created }} when is_map(Props) ->
            case m_rsc_update:update(RscId, Props, [ is_import ], Context) of
                {ok, _} ->
                    _ = m_rsc_gone:delete(RscId, Context),
                    ok = revert_edges(RscId, Options, Created, Context),
                    _ = revert_medium(RscId, Created, Context),
                    z_depcache:flush(RscId, Context),
                    ok;
                {error, _} = Error ->
                    Error
            end;
        {ok, _} ->
            {error, invalid};
        {error, _} = Error ->
            Error
    end.

%% The edges of the resource as they were at Created: every logged change since then undone,
%% newest first, so the oldest change of an edge decides its state.
revert_edges(RscId, Options, Created, Context) ->
    Since = z_datetime:prev_second(Created, ?EDGE_REVERT_SLACK),
    Outgoing = case lists:member(outgoing_edges, Options) of
        true -> edge_log("subject_id", RscId, Since, Context);
        false -> []
    end,
    Incoming = case lists:member(incoming_edges, Options) of
        true -> edge_log("object_id", RscId, Since, Context);
        false -> []
    end,
    Undo = lists:foldl(
        fun({_Id, S, P, O, true}, Acc) -> Acc#{ {S, P, O} => delete };
           ({_Id, S, P, O, false}, Acc) -> Acc#{ {S, P, O} => insert }
        end,
        #{},
        lists:reverse(lists:keysort(1, Outgoing ++ Incoming))),
    IsDependent = lists:member(dependent, Options),
    maps:foreach(
        fun({S, P, O}, delete) ->
                _ = m_edge:delete(S, P, O, Context);
           ({S, P, O}, insert) ->
                _ = revert_edge_insert(S, P, O, IsDependent, Options, Context)
        end,
        Undo),
    ok.

edge_log(Column, RscId, Since, Context) ->
    z_db:q(["
        select id, subject_id, predicate, object_id, is_insert
        from backup_edge_log
        where ", Column, " = $1
          and timestamp >= $2
        order by id desc"],
        [ RscId, Since ], Context).

revert_edge_insert(S, P, O, IsDependent, Options, Context) ->
    case {m_rsc:exists(S, Context), m_rsc:exists(O, Context)} of
        {true, true} ->
            m_edge:insert(S, P, O, Context);
        {true, false} when IsDependent ->
            case revert_if_dependent(O, Options, Context) of
                ok -> m_edge:insert(S, P, O, Context);
                {error, _} = Error -> Error
            end;
        _ ->
            {error, enoent}
    end.

%% A deleted object comes back (at its newest revision) only when it was a dependent
%% resource, one that lives by the edges to it.
revert_if_dependent(RscId, Options, Context) ->
    case z_db:q1("
        select id
        from backup_revision
        where rsc_id = $1
        order by id desc
        limit 1",
        [ RscId ], Context)
    of
        undefined ->
            {error, enoent};
        RevId ->
            case get_revision(RevId, Context) of
                {ok, #{ <<"data">> := Props }} ->
                    case is_dependent(Props) of
                        true ->
                            Options1 = [ Opt || Opt <- Options, Opt =/= dependent ],
                            revert_resource(RscId, RevId, Options1, Context);
                        false ->
                            {error, not_dependent}
                    end;
                {error, _} = Error ->
                    Error
            end
    end.

is_dependent(#{ <<"is_dependent">> := IsDependent }) -> z_convert:to_bool(IsDependent);
is_dependent(Props) when is_list(Props) -> z_convert:to_bool(proplists:get_value(is_dependent, Props, false));
is_dependent(_) -> false.

%% The medium record that best matches the time of the revision: the oldest one not deleted
%% before it, else one deleted shortly before it.
revert_medium(RscId, Created, Context) ->
    Sql = "
        select *
        from backup_medium_log
        where rsc_id = $1
          and (medium_deleted is null or medium_deleted >= $2)
        order by medium_created
        limit 1",
    case z_db:qmap_row(Sql, [ RscId, z_datetime:prev_second(Created, ?MEDIUM_REVERT_MIN) ], Context) of
        {ok, Log} ->
            restore_medium(Log, Context);
        {error, _} ->
            case z_db:qmap_row(Sql, [ RscId, z_datetime:prev_second(Created, ?MEDIUM_REVERT_MAX) ], Context) of
                {ok, Log} -> restore_medium(Log, Context);
                {error, _} = Error -> Error
            end
    end.

restore_medium(#{ <<"rsc_id">> := RscId, <<"props">> := Medium, <<"medium_deleted">> := Deleted }, Context)
    when is_map(Medium) ->
    case m_media:get(RscId, Context) of
        Current when Current =:= Medium, Deleted =:= undefined ->
            ok;
        undefined ->
            m_media:recover_medium(Medium, Context);
        _Other ->
            _ = m_media:delete(RscId, Context),
            m_media:recover_medium(Medium, Context)
    end;
restore_medium(_Log, _Context) ->
    {error, badarg}.

%% ---------------------------------------------------------------------------------------------
%% Edge and medium logs

%% @doc Log an inserted edge.
-spec edge_insert(SubjectId, Predicate, ObjectId, Context) -> ok when
    SubjectId :: m_rsc:resource_id(),
    Predicate :: atom() | binary(),
    ObjectId :: m_rsc:resource_id(),
    Context :: z:context().
edge_insert(SubjectId, Predicate, ObjectId, Context) ->
    log_edge(SubjectId, Predicate, ObjectId, true, Context).

%% @doc Log a deleted edge.
-spec edge_delete(SubjectId, Predicate, ObjectId, Context) -> ok when
    SubjectId :: m_rsc:resource_id(),
    Predicate :: atom() | binary(),
    ObjectId :: m_rsc:resource_id(),
    Context :: z:context().
edge_delete(SubjectId, Predicate, ObjectId, Context) ->
    log_edge(SubjectId, Predicate, ObjectId, false, Context).

log_edge(SubjectId, Predicate, ObjectId, IsInsert, Context) ->
    _ = z_db:q("
        insert into backup_edge_log (subject_id, predicate, object_id, is_insert)
        values ($1, $2, $3, $4)",
        [ SubjectId, z_convert:to_binary(Predicate), ObjectId, IsInsert ],
        Context),
    ok.

%% @doc Log a new medium record; earlier records of the resource are marked deleted. A medium
%% record is known by its resource and creation date; updates only add to it.
-spec medium_insert(RscId, Props, Context) -> ok when
    RscId :: m_rsc:resource_id(),
    Props :: map(),
    Context :: z:context().
medium_insert(RscId, #{ <<"created">> := Created } = Props, Context) ->
    _ = z_db:q("
        update backup_medium_log
        set medium_deleted = now()
        where rsc_id = $1
          and medium_deleted is null
          and medium_created <> $2",
        [ RscId, Created ], Context),
    _ = z_db:q("
        insert into backup_medium_log (rsc_id, props, medium_created)
        values ($1, $2, $3)
        on conflict (rsc_id, medium_created) do nothing",
        [ RscId, ?DB_PROPS(Props), Created ], Context),
    ok;
medium_insert(_RscId, _Props, _Context) ->
    ok.

%% @doc Log an updated medium record (inserted when not yet logged).
-spec medium_update(RscId, Props, Context) -> ok when
    RscId :: m_rsc:resource_id(),
    Props :: map(),
    Context :: z:context().
medium_update(RscId, #{ <<"created">> := Created } = Props, Context) ->
    _ = z_db:q("
        insert into backup_medium_log (rsc_id, props, medium_created)
        values ($1, $2, $3)
        on conflict (rsc_id, medium_created) do update
        set props = excluded.props",
        [ RscId, ?DB_PROPS(Props), Created ], Context),
    ok;
medium_update(_RscId, _Props, _Context) ->
    ok.

%% @doc Log a deleted medium record (inserted when not yet logged).
-spec medium_delete(RscId, Props, Context) -> ok when
    RscId :: m_rsc:resource_id(),
    Props :: map(),
    Context :: z:context().
medium_delete(RscId, #{ <<"created">> := Created } = Props, Context) ->
    _ = z_db:q("
        insert into backup_medium_log (rsc_id, props, medium_created, medium_deleted)
        values ($1, $2, $3, now())
        on conflict (rsc_id, medium_created) do update
        set medium_deleted = excluded.medium_deleted",
        [ RscId, ?DB_PROPS(Props), Created ], Context),
    ok;
medium_delete(_RscId, _Props, _Context) ->
    ok.

%% @doc Before a resource is deleted: make sure its medium record is in the medium log (media
%% made before mod_backup was enabled were never logged).
-spec medium_delete_check(Id, Context) -> ok when
    Id :: m_rsc:resource_id(),
    Context :: z:context().
medium_delete_check(Id, Context) ->
    case m_media:get(Id, Context) of
        #{ <<"created">> := Created } = Medium ->
            case z_db:q1("
                select count(*)
                from backup_medium_log
                where rsc_id = $1
                  and medium_created = $2",
                [ Id, Created ], Context)
            of
                0 -> medium_delete(Id, Medium, Context);
                _ -> ok
            end;
        _ ->
            ok
    end.

%% ---------------------------------------------------------------------------------------------
%% Pruning

%% @doc Remove what is older than the retention settings: revisions, edge log and medium log
%% older than revision_retention_months; revisions of users older than
%% user_revision_retention_days; all revisions of deleted personal-data resources gone longer
%% than user_deletion_retention_days. Chains are kept whole (see prune_resource_rows/4).
-spec periodic_cleanup(Context) -> ok when
    Context :: z:context().
periodic_cleanup(Context) ->
    Now = calendar:universal_time(),
    Threshold = z_datetime:prev_month(Now, backup_config:retention_months(Context)),
    N1 = prune("created < $1", [ Threshold ], Context),
    _ = z_db:q("delete from backup_medium_log where medium_deleted < $1", [ Threshold ], Context),
    _ = z_db:q("delete from backup_edge_log where timestamp < $1", [ Threshold ], Context),
    UserThreshold = z_datetime:prev_day(Now, backup_config:user_retention_days(Context)),
    UserTypes = [ z_convert:to_binary(T) || T <- lists:usort(m_identity:user_types(Context)) ],
    N2 = prune(
        "created < $1 and rsc_id in (select rsc_id from identity where type = any($2))",
        [ UserThreshold, UserTypes ], Context),
    GoneThreshold = z_datetime:prev_day(Now, backup_config:deleted_user_retention_days(Context)),
    N3 = prune(
        "rsc_id in (select id from rsc_gone where is_personal_data = true and modified < $1)",
        [ GoneThreshold ], Context),
    ?LOG_INFO(#{
        in => zotonic_mod_backup,
        text => <<"Pruned revisions">>,
        retention => N1,
        user_retention => N2,
        deleted_user_retention => N3
    }),
    ok.

%% Remove the rows matching Cond (an SQL condition on backup_revision with Params), resource by
%% resource; returns the number of rows removed.
prune(Cond, Params, Context) ->
    RscIds = z_db:q(["select distinct rsc_id from backup_revision where ", Cond], Params, Context),
    lists:foldl(
        fun({RscId}, Acc) ->
            F = fun(Ctx) ->
                ok = lock_resource(RscId, Ctx),
                prune_resource_rows(RscId, Cond, Params, Ctx)
            end,
            case z_db:transaction(F, Context) of
                N when is_integer(N) ->
                    Acc + N;
                Error ->
                    ?LOG_ERROR(#{
                        in => zotonic_mod_backup,
                        text => <<"Could not prune revisions">>,
                        rsc_id => RscId,
                        result => error,
                        reason => Error
                    }),
                    Acc
            end
        end,
        0,
        RscIds).

%% Delete the rows of one resource that match Cond; a surviving delta whose predecessor is
%% deleted is first rewritten as a keyframe of the revision it makes. Call inside a transaction
%% holding the resource's lock.
prune_resource_rows(RscId, Cond, Params, Context) ->
    Select = fun(Cols) ->
        z_db:q(["
            select ", Cols, ", (", Cond, ") as is_delete
            from backup_revision
            where rsc_id = $", integer_to_list(length(Params) + 1), "
            order by id"],
            Params ++ [ RscId ], Context)
    end,
    % The data is read only when a surviving delta loses its predecessor: removing an earlier
    % deleted-revision row (always followed by a full row) reads none.
    Rows = Select("id, data_type"),
    Deleted = [ Id || {Id, _, true} <- Rows ],
    case Deleted of
        [] ->
            0;
        _ ->
            case strands_a_delta(Rows, false) of
                true -> ok = rekey_survivors(Select("id, data_type, data"), [], false, Context);
                false -> ok
            end,
            z_db:q("delete from backup_revision where id = any($1)", [ Deleted ], Context)
    end.

strands_a_delta([], _PrevDeleted) ->
    false;
strands_a_delta([ {_Id, DataType, IsDelete} | Rest ], PrevDeleted) ->
    ((not IsDelete) andalso PrevDeleted andalso not backup_revision_codec:is_full(DataType))
        orelse strands_a_delta(Rest, IsDelete).

rekey_survivors([], _Chain, _PrevDeleted, _Context) ->
    ok;
rekey_survivors([ {Id, DataType, Data, IsDelete} | Rest ], Chain, PrevDeleted, Context) ->
    Chain1 = case backup_revision_codec:is_full(DataType) of
        true -> [ {DataType, Data} ];
        false -> [ {DataType, Data} | Chain ]
    end,
    case (not IsDelete) andalso PrevDeleted andalso not backup_revision_codec:is_full(DataType) of
        true ->
            case backup_revision_codec:rekey(lists:reverse(Chain1)) of
                {ok, {NewType, NewData}} ->
                    _ = z_db:q("update backup_revision set data_type = $2, data = $3 where id = $1",
                               [ Id, NewType, NewData ], Context),
                    rekey_survivors(Rest, [ {NewType, NewData} ], IsDelete, Context);
                {error, Reason} ->
                    ?LOG_ERROR(#{
                        in => zotonic_mod_backup,
                        text => <<"Revision can not be made a keyframe; it was unreadable already">>,
                        revision_id => Id,
                        result => error,
                        reason => Reason
                    }),
                    rekey_survivors(Rest, Chain1, IsDelete, Context)
            end;
        false ->
            rekey_survivors(Rest, Chain1, IsDelete, Context)
    end.

%% @doc All revision rows of a resource in save order as {Id, Type, DataType, Data}; for
%% compacting and downgrading.
-spec resource_rows(RscId, Context) -> [ {integer(), binary(), binary(), binary()} ] when
    RscId :: m_rsc:resource_id(),
    Context :: z:context().
resource_rows(RscId, Context) ->
    z_db:q("
        select id, type, data_type, data
        from backup_revision
        where rsc_id = $1
        order by id",
        [ RscId ], Context).

%% ---------------------------------------------------------------------------------------------
%% Install

%% @doc Create the tables backup_revision, backup_edge_log and backup_medium_log, their
%% indexes and the trigger stamping deleted medium records.
-spec install(Context) -> ok when
    Context :: z:context().
install(Context) ->
    case z_db:table_exists(backup_revision, Context) of
        false ->
            _ = z_db:q("
                create table backup_revision (
                    id bigserial not null,
                    type character(1) not null,
                    rsc_id integer not null,
                    created timestamp with time zone not null default current_timestamp,
                    version integer,
                    user_id integer,
                    user_name character varying(80),
                    filename character varying(400),
                    note character varying(200),
                    data_type character varying(10) not null,
                    data bytea not null,
                    primary key (id)
                )", Context),
            _ = z_db:q("create index backup_revision_id_created on backup_revision (rsc_id, created)", Context),
            _ = ensure_deleted_index(Context),
            ok;
        true ->
            case ensure_deleted_index(Context) of
                created ->
                    % A table from before deleted-revisions were kept (as stock does).
                    _ = z_pivot_rsc:insert_task(?MODULE, insert_deleted_revisions, <<>>, Context),
                    ok;
                exists ->
                    ok
            end
    end,
    case z_db:table_exists(backup_edge_log, Context) of
        false ->
            _ = z_db:q("
                create table backup_edge_log (
                    id bigserial not null,
                    subject_id integer not null,
                    predicate character varying(300),
                    object_id integer not null,
                    is_insert boolean not null default true,
                    timestamp timestamp with time zone not null default current_timestamp,
                    primary key (id)
                )", Context),
            _ = z_db:q("create index backup_edge_log_subject_id_created_key
                        on backup_edge_log (subject_id, timestamp)", Context),
            _ = z_db:q("create index backup_edge_log_object_id_created_key
                        on backup_edge_log (object_id, timestamp)", Context),
            ok;
        true ->
            ok
    end,
    case z_db:table_exists(backup_medium_log, Context) of
        false ->
            _ = z_db:q("
                create table backup_medium_log (
                    id bigserial not null,
                    rsc_id integer not null,
                    props bytea not null,
                    medium_created timestamp with time zone not null,
                    medium_deleted timestamp with time zone default null,
                    primary key (id),
                    constraint backup_medium_log_rsc_id_medium_created_key unique (rsc_id, medium_created)
                )", Context),
            ok;
        true ->
            ok
    end,
    case z_db:function_exists("backup_medium_log_delete", Context) of
        false ->
            _ = z_db:q("
                create or replace function backup_medium_log_delete() returns trigger as $$
                begin
                    if (tg_op = 'DELETE') then
                        update backup_medium_log
                        set medium_deleted = now()
                        where rsc_id = old.id
                          and medium_deleted is null;
                    end if;
                    return null;
                end;
                $$ language plpgsql", Context),
            _ = z_db:q("
                create trigger backup_medium_log_delete_trigger after delete
                on medium for each row execute procedure backup_medium_log_delete()", Context),
            ok;
        true ->
            ok
    end,
    z_db:flush(Context),
    ok.

ensure_deleted_index(Context) ->
    case z_db:key_exists(backup_revision, backup_revision_created_deleted_key, Context) of
        true ->
            exists;
        false ->
            _ = z_db:q("
                create index backup_revision_created_deleted_key
                on backup_revision (created, type)
                where type = 'D'", Context),
            created
    end.

%% @doc Give every deleted resource (in rsc_gone) that has revisions but no deleted-revision
%% one: its newest revision, dated at its deletion, as stock mod_backup does. Stock queues this
%% as a pivot task when install/1 adds the index on deleted revisions to an older table.
-spec insert_deleted_revisions(Context) -> ok when
    Context :: z:context().
insert_deleted_revisions(Context) ->
    ?LOG_INFO(#{
        in => zotonic_mod_backup,
        text => <<"Inserting deleted revisions for resources">>
    }),
    Gone = z_db:q("
        select g.id, g.modified
        from rsc_gone g
        where exists (select 1 from backup_revision p where p.rsc_id = g.id and p.type = 'P')
          and not exists (select 1 from backup_revision d where d.rsc_id = g.id and d.type = 'D')
        order by g.id",
        Context),
    lists:foreach(fun({RscId, GoneDate}) -> insert_deleted_revision(RscId, GoneDate, Context) end, Gone).

%% The newest saved revision of RscId again, as a (full) deleted-revision row created at
%% GoneDate; nothing when it has one by now.
insert_deleted_revision(RscId, GoneDate, Context) ->
    F = fun(Ctx) ->
        ok = lock_resource(RscId, Ctx),
        case z_db:q1("
            select max(id) filter (where type = 'P')
            from backup_revision
            where rsc_id = $1
            having count(*) filter (where type = 'D') = 0",
            [ RscId ], Ctx)
        of
            undefined ->
                ok;
            RevId ->
                case get_revision(RevId, Ctx) of
                    {ok, #{ <<"data">> := Props, <<"version">> := Version,
                            <<"user_id">> := UserId, <<"user_name">> := UserName }} ->
                        {DataType, Data} = keyframe(Props),
                        _ = z_db:q("
                            insert into backup_revision
                                (rsc_id, type, version, user_id, user_name, data_type, data, created)
                            values ($1, $2, $3, $4, $5, $6, $7, $8)",
                            [ RscId, ?TYPE_DELETED, Version, UserId, UserName, DataType, Data, GoneDate ],
                            Ctx),
                        ok;
                    {error, Reason} ->
                        {error, Reason}
                end
        end
    end,
    case z_db:transaction(F, Context) of
        ok ->
            ok;
        Error ->
            ?LOG_ERROR(#{
                in => zotonic_mod_backup,
                text => <<"Could not insert a deleted revision">>,
                rsc_id => RscId,
                result => error,
                reason => Error
            })
    end.
