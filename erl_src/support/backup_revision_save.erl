%% @doc Saving revisions: a row per saved version of a resource (`P') and one with its props at
%% deletion (`D'), as Zotonic's mod_backup, but stored as keyframes and deltas.
%%
%% A keyframe (the full props) is written for the first save, the save after a deletion and at
%% least every ?KEYFRAME_EVERY saves of a resource; the saves in between, and a deletion, are
%% deltas from the row saved just before them (by id) of the same resource, so a revision is
%% read from the last full row (`erlang' or keyframe) up to it, in one query. Rows are
%% compressed with the site's newest dictionary (backup_revision_dict), and every save counts
%% towards the next training of one. A save makes its
%% delta from the props of the previous save while backup_revision_cache still holds them
%% (checked against the newest row's checksum), so it reads only that row; otherwise it reads
%% and rebuilds the chain. All writes to the rows of one resource take a transaction-scoped
%% advisory lock on that resource (lock_resource/2): saving, pruning and compacting.
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

-module(backup_revision_save).

-export([
    save/4,
    insert_deleted_revisions/1,
    lock_resource/2,
    needs_keyframe/2
]).

-ifdef(TEST).
%% The suites check the rule's interval.
-export([keyframe_every/0]).
-ignore_xref([keyframe_every/0]).
-endif.

-include_lib("zotonic_core/include/zotonic.hrl").

%% Row types: a saved version (P) and the props at deletion (D).
-define(TYPE_PROPS, <<"P">>).
-define(TYPE_DELETED, <<"D">>).

%% A keyframe at least every this many saves of a resource: a revision is reconstructed from
%% at most this many rows.
-define(KEYFRAME_EVERY, 50).

%% First key of the advisory lock taken on the rows of one resource (the second is its id).
-define(LOCK_CLASS, 16#7a62).

%% @doc Save a revision of a resource (unless its version is the one saved last), or with
%% `deleted' the props of a deleted resource, replacing earlier deleted-revisions of it.
-spec save(Id, Props, Kind, Context) -> ok | {error, term()} when
    Id :: m_rsc:resource_id(),
    Props :: m_rsc:props() | undefined,
    Kind :: revision | deleted,
    Context :: z:context().
save(_Id, undefined, deleted, _Context) ->
    ok;
save(Id, Props, Kind, Context) when is_integer(Id), is_map(Props) ->
    save_props(Id, Props, Kind =:= deleted, Context).

save_props(Id, Props, IsDeleted, Context) ->
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
                Codec = backup_revision_dict:codec(Ctx),
                {DataType, Data} = encode_save(Id, Props, Newest, Base, Codec, Ctx),
                insert_revision(Id, IsDeleted, Version, UserId, UserName, DataType, Data, Ctx)
        end
    end,
    case z_db:transaction(F, Context) of
        {inserted, RevId} when not IsDeleted ->
            ok = backup_revision_dict:saved(Context),
            backup_revision_cache:store(Id, RevId, Props, Context);
        {inserted, _RevId} ->
            backup_revision_dict:saved(Context);
        skipped ->
            ok;
        {rollback, {Reason, _Stack}} ->
            save_failed(Id, Reason);
        {error, Reason} ->
            save_failed(Id, Reason)
    end.

save_failed(Id, Reason) ->
    ?LOG_ERROR(#{
        in => zotonic_mod_backup,
        text => <<"Could not save revision">>,
        rsc_id => Id,
        result => error,
        reason => Reason
    }),
    {error, Reason}.

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
            _ = backup_revision_prune:prune_resource_rows(Id, Cond, [ RevId ], Context),
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
    case backup_revision_cache:lookup(RscId, Context) of
        {ok, RevId, Etf} ->
            case backup_revision_read:newest_row(RscId, Context) of
                {ok, Row} -> {Row, {cached, RevId, Etf}};
                undefined -> {undefined, {chain, []}}
            end;
        undefined ->
            case backup_revision_read:latest_chain(RscId, Context) of
                [] ->
                    {undefined, {chain, []}};
                Rows ->
                    Last = lists:last(Rows),
                    {Last#{ <<"chain_length">> => length(Rows) }, {chain, chain_of(Rows)}}
            end
    end.

chain_of(Rows) ->
    [ {DT, D} || #{ <<"data_type">> := DT, <<"data">> := D } <- Rows ].

%% A full row for the first save, the save after a deletion and every ?KEYFRAME_EVERY saves;
%% else (a deletion too) a delta from the newest row: from the cached props of that row when
%% there are any and its checksum accepts them, else from its chain.
encode_save(Id, Props, Newest, Base, Codec, Context) ->
    {PrevType, ChainLength} = case Newest of
        undefined -> {undefined, 0};
        #{ <<"type">> := T } -> {T, maps:get(<<"chain_length">>, Newest, 0)}
    end,
    case needs_keyframe(PrevType, ChainLength) of
        true -> keyframe(Props, Codec);
        false -> encode_delta(Id, Props, Newest, Base, Codec, Context)
    end.

encode_delta(Id, Props, #{ <<"id">> := LastId, <<"data_type">> := DT, <<"data">> := D } = Newest,
            {cached, LastId, BaseEtf}, Codec, Context) ->
    case backup_revision_codec:encode_delta_from({DT, D}, BaseEtf, Props, Codec) of
        {ok, Row} -> Row;
        {error, _} -> delta_from_chain(Props, Newest, chain_of(backup_revision_read:latest_chain(Id, Context)), Codec)
    end;
encode_delta(Id, Props, Newest, {cached, _OtherRevId, _BaseEtf}, Codec, Context) ->
    delta_from_chain(Props, Newest, chain_of(backup_revision_read:latest_chain(Id, Context)), Codec);
encode_delta(_Id, Props, Newest, {chain, Chain}, Codec, _Context) ->
    delta_from_chain(Props, Newest, Chain, Codec).

delta_from_chain(Props, #{ <<"id">> := LastId }, Chain, Codec) ->
    case backup_revision_codec:encode_delta_after(Chain, Props, Codec) of
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
            keyframe(Props, Codec)
    end.

keyframe(Props, Codec) ->
    {ok, Row} = backup_revision_codec:encode_keyframe(Props, Codec),
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

%% @doc Serialise all writers of the revision rows of a resource (inside a transaction). A
%% simple query (the two integers written into it): one round trip to the database, where a
%% query with parameters takes two (parse and describe, then bind and execute). Throws
%% `{error, Reason}' as z_db:q/3 does, so the transaction rolls back.
-spec lock_resource(RscId, Context) -> ok when
    RscId :: m_rsc:resource_id(),
    Context :: z:context().
lock_resource(RscId, Context) when is_integer(RscId) ->
    Sql = iolist_to_binary([
        "select 1 from (select pg_advisory_xact_lock(",
        integer_to_binary(?LOCK_CLASS), "::int, ", integer_to_binary(RscId), "::int)) l"]),
    case z_db:squery(Sql, Context) of
        {ok, _Columns, _Rows} -> ok;
        {error, _} = Error -> throw(Error)
    end.

%% @doc The keyframe interval: a full row at least every this many saves.
%% @doc Whether a resource's next row is stored full: its first row, the row after a deletion,
%% and the row that would make a chain longer than keyframe_every(). Saving and compacting
%% both follow this rule.
-spec needs_keyframe(PrevType, ChainLength) -> boolean() when
    PrevType :: binary() | undefined,
    ChainLength :: non_neg_integer().
needs_keyframe(undefined, _ChainLength) -> true;
needs_keyframe(?TYPE_DELETED, _ChainLength) -> true;
needs_keyframe(_PrevType, ChainLength) -> ChainLength >= ?KEYFRAME_EVERY.

-ifdef(TEST).
-spec keyframe_every() -> pos_integer().
keyframe_every() ->
    ?KEYFRAME_EVERY.
-endif.

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
                case backup_revision_read:get_revision(RevId, Ctx) of
                    {ok, #{ <<"data">> := Props, <<"version">> := Version,
                            <<"user_id">> := UserId, <<"user_name">> := UserName }} ->
                        {DataType, Data} = keyframe(Props, backup_revision_dict:codec(Ctx)),
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
