%% @doc Reading revisions: a revision is rebuilt from the last full row (`erlang' or keyframe)
%% of its resource up to itself, read in one query, and reported as stock mod_backup reports
%% its rows (`data_type' `erlang', props in `data'); the lists of revisions and of deleted
%% resources, and the chain queries saving, pruning and compacting share.
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

-module(backup_revision_read).

-export([
    get_revision/2,
    list_revisions/3,
    revision_title/2,
    list_deleted/2,
    newest_row/2,
    newest_revision/2,
    latest_chain/2,
    resource_rows/2
]).

-include_lib("zotonic_core/include/zotonic.hrl").

%% The title of a resource as its props hold it (usually binary() or #trans{}).
-type title() :: binary() | #trans{} | undefined | term().
-export_type([title/0]).

%% The revisions of a resource, newest first (list_revisions/3).
-define(LIST_REVISIONS_SQL, "
    select id, type, created, version, user_id, user_name
    from backup_revision
    where rsc_id = $1
    order by created desc, id desc").

%% @doc Fetch a revision by its id: the row, with its props in `data' and `data_type'
%% `<<"erlang">>' as stock mod_backup returns it, however the row is stored. A row that cannot
%% be reconstructed (damaged data) gives `{error, badarg}'; one whose dictionary is missing from
%% backup_revision_dict or damaged gives `{error, {missing_dictionary | bad_dictionary, Info}}'
%% with the dictionary's id and a message naming it.
-spec get_revision(RevisionId, Context) -> {ok, Revision} | {error, Reason} when
    RevisionId :: integer() | binary() | string(),
    Context :: z:context(),
    Revision :: m_backup_revision:revision(),
    Reason :: enoent | badarg | {missing_dictionary | bad_dictionary, #{ dictionary := pos_integer(), message := binary() }}.
get_revision(RevId0, Context) ->
    case catch z_convert:to_integer(RevId0) of
        RevId when is_integer(RevId) ->
            case chain_rows(RevId, Context) of
                [] -> {error, enoent};
                Chain -> reconstruct(Chain, Context)
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
        [ RevId, backup_revision_codec:data_types_delta() ],
        Context),
    Rows.

reconstruct(Chain, Context) ->
    Last = lists:last(Chain),
    Rows = [ {DT, D} || #{ <<"data_type">> := DT, <<"data">> := D } <- Chain ],
    case backup_revision_codec:decode(Rows, backup_revision_dict:codec(Context)) of
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
            case Reason of
                {DictError, #{ dictionary := _ } = Info}
                    when DictError =:= missing_dictionary; DictError =:= bad_dictionary ->
                    {error, {DictError, maps:with([dictionary, message], Info)}};
                _ ->
                    {error, badarg}
            end
    end.

%% @doc The newest row of a resource (id, type, version, data_type, data) with `chain_length',
%% the number of rows from its last full row up to and including it; in one query. Every save
%% reads it, so it is a simple query, one round trip to the database where a query with
%% parameters takes two: the resource id and the delta data types are written into it, the
%% data comes back as hex text and the numbers as decimal text. Throws `{error, Reason}' as
%% z_db:q/3 does.
-spec newest_row(RscId, Context) -> {ok, Row} | undefined when
    RscId :: m_rsc:resource_id(),
    Context :: z:context(),
    Row :: #{ binary() => term() }.
newest_row(RscId, Context) when is_integer(RscId) ->
    Rsc = integer_to_binary(RscId),
    Sql = iolist_to_binary(["
        select b.id, b.type, b.version, b.data_type, encode(b.data, 'hex'),
               (select count(*) from backup_revision c
                where c.rsc_id = ", Rsc, "
                  and c.id >= ", last_full_id(Rsc, "", delta_types_literal()), ")
        from backup_revision b
        where b.rsc_id = ", Rsc, "
        order by b.id desc
        limit 1"]),
    case z_db:squery(Sql, Context) of
        {ok, _Columns, [ {Id, Type, Version, DataType, DataHex, ChainLength} ]} ->
            {ok, #{
                <<"id">> => binary_to_integer(Id),
                <<"type">> => Type,
                <<"version">> => case Version of null -> undefined; _ -> binary_to_integer(Version) end,
                <<"data_type">> => DataType,
                <<"data">> => binary:decode_hex(DataHex),
                <<"chain_length">> => binary_to_integer(ChainLength)
            }};
        {ok, _Columns, []} ->
            undefined;
        {error, _} = Error ->
            throw(Error)
    end.

%% @doc The rows of the resource from its last full row to its newest, in save order.
-spec latest_chain(RscId, Context) -> [ #{ binary() => term() } ] when
    RscId :: m_rsc:resource_id(),
    Context :: z:context().
latest_chain(RscId, Context) ->
    {ok, Rows} = z_db:qmap(["
        select b.id, b.type, b.version, b.data_type, b.data
        from backup_revision b
        where b.rsc_id = $1
          and b.id >= ", last_full_id("$1", ""), "
        order by b.id"],
        [ RscId, backup_revision_codec:data_types_delta() ],
        Context),
    Rows.

%% SQL: the id of the resource's last full row (0 when none), rows limited by UpTo; $2 must be
%% the delta data_types (or DeltaTypes names them). Every chain read starts there.
last_full_id(Rsc, UpTo) ->
    last_full_id(Rsc, UpTo, "$2").

last_full_id(Rsc, UpTo, DeltaTypes) ->
    ["coalesce((select max(k.id) from backup_revision k where k.rsc_id = ", Rsc, UpTo,
     " and k.data_type <> all(", DeltaTypes, ")), 0)"].

%% SQL: the delta data_types as an array literal (the codec's names: letters and digits).
delta_types_literal() ->
    Types = backup_revision_codec:data_types_delta(),
    [] = [ T || T <- Types, binary:match(T, <<"'">>) =/= nomatch ],
    ["array[", lists:join(", ", [ [$', T, $'] || T <- Types ]), "]::text[]"].

%% @doc The revisions of a resource, newest first, as tuples {id, type, created, version,
%% user_id, user_name} or as property lists with those keys (`assoc').
-spec list_revisions(Id, Shape, Context) -> [ tuple() ] | [ proplists:proplist() ] when
    Id :: m_rsc:resource() | undefined,
    Shape :: tuple | assoc,
    Context :: z:context().
list_revisions(undefined, _Shape, _Context) ->
    [];
list_revisions(Id, tuple, Context) when is_integer(Id) ->
    z_db:q(?LIST_REVISIONS_SQL, [ Id ], Context);
list_revisions(Id, assoc, Context) when is_integer(Id) ->
    z_db:assoc(?LIST_REVISIONS_SQL, [ Id ], Context);
list_revisions(Id, Shape, Context) ->
    list_revisions(m_rsc:rid(Id, Context), Shape, Context).

%% @doc The title in the newest revision of a (deleted) resource.
-spec revision_title(Id, Context) -> Title when
    Id :: m_rsc:resource_id() | undefined,
    Context :: z:context(),
    Title :: title().
revision_title(undefined, _Context) ->
    undefined;
revision_title(Id, Context) ->
    case newest_revision(Id, Context) of
        {ok, _RevId, Props} -> props_title(Props);
        _ -> undefined
    end.

%% @doc The id and props of the newest revision of a resource; `undefined' when it has none.
-spec newest_revision(RscId, Context) -> {ok, RevId, Props} | undefined | {error, Reason} when
    RscId :: m_rsc:resource_id(),
    Context :: z:context(),
    RevId :: integer(),
    Props :: m_rsc:props() | term(),
    Reason :: term().
newest_revision(RscId, Context) ->
    case z_db:q1("
        select id
        from backup_revision
        where rsc_id = $1
        order by id desc
        limit 1",
        [ RscId ], Context)
    of
        undefined ->
            undefined;
        RevId ->
            case get_revision(RevId, Context) of
                {ok, #{ <<"data">> := Props }} -> {ok, RevId, Props};
                {error, _} = Error -> Error
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
            backup_revision_codec:decode([ {DataType, Data} ], backup_revision_dict:codec(Context));
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
