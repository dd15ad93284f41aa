%% @doc Conversion of the revision log between stock `erlang' rows and our keyframe + delta
%% chains.
%%
%% compact: sites have years of stock rows; start/1 converts them in a background process,
%% resource by resource, each in its own transaction under the resource's revision lock, in
%% batches with a pause between them. It first trains the site's dictionary on the rows there
%% are (backup_revision_dict:train/2, adopted when it pays), then rewrites every resource that
%% has a row not written the way a save writes now: `erlang' and format 1 rows, and rows
%% compressed without the newest dictionary; at the end the dictionaries no row needs any more
%% are deleted. stop/1 interrupts it between two resources; as every resource is converted whole
%% or not at all, start/1 later simply continues with the resources still to do. Every new row
%% is checked to reconstruct to exactly the props of the row it replaces before it is written.
%%
%% downgrade: rewrites every keyframe and delta row as a stock `erlang' row
%% (`term_to_binary(Props, [compressed])'), so the site can go back to Zotonic's own module,
%% and records the stock module's schema version for mod_backup. Zotonic's module manager
%% keeps a module's schema version in the `module' table; found higher than the stock
%% module's own (ours is 5, stock's 4) it logs "Module downgrades not supported" at every
%% start of the stock module. The tables are the stock layout plus backup_revision_dict, which
%% the stock module ignores; if this module starts again instead, it upgrades 4 -> 5 by
%% running its (idempotent) install.
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

-module(backup_revision_compact).

-export([
    start/1,
    compact/1,
    downgrade/1
]).

% Checked directly by the suites.
-ifdef(TEST).
-export([is_running/1]).
-ignore_xref([is_running/1]).
-endif.

-include_lib("zotonic_core/include/zotonic.hrl").

%% -mod_schema of Zotonic 1.0's own mod_backup.
-define(STOCK_MOD_SCHEMA, 4).

%% Resources per batch, and the pause between batches (ms) to leave the database to the site.
-define(BATCH, 200).
-define(PAUSE, 50).

-type stats() :: #{ resources := non_neg_integer(), rows := non_neg_integer(), errors := non_neg_integer() }.
-export_type([stats/0]).

%% @doc Start compacting in the background; one run per site at a time.
-spec start(Context) -> {ok, pid()} | {error, already_running} when
    Context :: z:context().
start(Context) ->
    Name = name(Context),
    Ctx = z_context:prune_for_spawn(Context),
    Self = self(),
    Pid = spawn(fun() ->
        try register(Name, self()) of
            true ->
                Self ! {self(), started},
                Result = compact(Ctx),
                ?LOG_INFO(#{
                    in => zotonic_mod_backup,
                    text => <<"Revision compaction finished">>,
                    result => element(1, Result),
                    stats => element(2, Result)
                })
        catch
            error:badarg ->
                Self ! {self(), already_running}
        end
    end),
    receive
        {Pid, started} -> {ok, Pid};
        {Pid, already_running} -> {error, already_running}
    end.

%% @doc Ask a running compaction to stop after the resource it is converting; waits for it.
-spec stop(Context) -> ok when
    Context :: z:context().
stop(Context) ->
    case whereis(name(Context)) of
        undefined ->
            ok;
        Pid ->
            MRef = erlang:monitor(process, Pid),
            Pid ! {?MODULE, stop},
            receive
                {'DOWN', MRef, process, Pid, _} -> ok
            end
    end.

-ifdef(TEST).
%% @doc Is a compaction running for the site?
-spec is_running(Context) -> boolean() when
    Context :: z:context().
is_running(Context) ->
    is_pid(whereis(name(Context))).
-endif.

name(Context) ->
    z_utils:name_for_site(?MODULE, z_context:site(Context)).

%% @doc Compact all resources with `erlang' rows, in the calling process. Stops early, with
%% `stopped', on a `{backup_revision_compact, stop}' message.
-spec compact(Context) -> {done | stopped, stats()} when
    Context :: z:context().
compact(Context) ->
    _ = case backup_revision_dict:train(Context, #{ force => true }) of
        {ok, _} = Ok ->
            Ok;
        {error, Reason} = Error ->
            log_error(undefined, <<"Could not train a revision dictionary; compacting without a new one">>, Reason),
            Error
    end,
    compact_loop(0, #{ resources => 0, rows => 0, errors => 0 }, Context).

compact_loop(After, Stats, Context) ->
    Current = backup_revision_codec:write_dictionary(backup_revision_dict:codec(Context)),
    RscIds = z_db:q(["
        select distinct rsc_id
        from backup_revision
        where rsc_id > $1
          and ", backup_revision_dict:recode_sql("$3"), "
        order by rsc_id
        limit $2"],
        [ After, ?BATCH, Current ],
        Context),
    case compact_batch(RscIds, After, Stats, Context) of
        {stopped, _Last, Stats1} ->
            {stopped, Stats1};
        {ok, _Last, Stats1} when length(RscIds) < ?BATCH ->
            _ = backup_revision_dict:gc(Context),
            {done, Stats1};
        {ok, Last, Stats1} ->
            timer:sleep(?PAUSE),
            compact_loop(Last, Stats1, Context)
    end.

compact_batch([], Last, Stats, _Context) ->
    {ok, Last, Stats};
compact_batch([ {RscId} | Rest ], Last, Stats, Context) ->
    receive
        {?MODULE, stop} -> {stopped, Last, Stats}
    after 0 ->
        Stats1 = case compact_resource(RscId, Context) of
            {ok, N} ->
                Stats#{ resources => maps:get(resources, Stats) + 1, rows => maps:get(rows, Stats) + N };
            {error, _} ->
                Stats#{ errors => maps:get(errors, Stats) + 1 }
        end,
        compact_batch(Rest, RscId, Stats1, Context)
    end.

%% @doc Re-encode all revision rows of one resource as keyframes and deltas (as saving would
%% have written them); returns the number of rows rewritten. A resource with an unreadable
%% row is left as it is.
-spec compact_resource(RscId, Context) -> {ok, non_neg_integer()} | {error, term()} when
    RscId :: m_rsc:resource_id(),
    Context :: z:context().
compact_resource(RscId, Context) ->
    F = fun(Ctx) ->
        ok = backup_revision_save:lock_resource(RscId, Ctx),
        Rows = backup_revision_read:resource_rows(RscId, Ctx),
        Codec = backup_revision_dict:codec(Ctx),
        case decode_all(Rows, Codec) of
            {ok, Decoded} ->
                New = encode_all(Decoded, Codec),
                {ok, write_changed(Rows, New, Ctx)};
            {error, _} = Error ->
                Error
        end
    end,
    transaction_result(RscId, <<"Could not compact revisions">>, z_db:transaction(F, Context)).

%% Every row's props, in save order: [{Id, Type, Props}].
decode_all(Rows, Codec) ->
    decode_all(Rows, undefined, [], Codec).

decode_all([], _Prev, Acc, _Codec) ->
    {ok, lists:reverse(Acc)};
decode_all([ {Id, Type, DataType, Data} | Rest ], Prev, Acc, Codec) ->
    Chain = case backup_revision_codec:is_full(DataType) of
        true -> [ {DataType, Data} ];
        false when Prev =:= undefined -> [ {DataType, Data} ];
        false -> [ {backup_revision_codec:data_type_erlang(), term_to_binary(Prev)}, {DataType, Data} ]
    end,
    case backup_revision_codec:decode(Chain, Codec) of
        {ok, Props} -> decode_all(Rest, Props, [ {Id, Type, Props} | Acc ], Codec);
        {error, Reason} -> {error, {Id, Reason}}
    end.

%% The rows as saving writes them: full for the first row, the row after a deletion and every
%% keyframe_every() rows; deltas else. Deltas are checked before they are used.
encode_all(Decoded, Codec) ->
    {Rows, _} = lists:mapfoldl(
        fun({Id, Type, Props}, {PrevType, PrevProps, Count}) ->
            Row = case backup_revision_save:needs_keyframe(PrevType, Count) of
                true -> keyframe(Props, Codec);
                false -> checked_delta(PrevProps, Props, Codec)
            end,
            {DataType, _} = Row,
            Count1 = case backup_revision_codec:is_full(DataType) of
                true -> 1;
                false -> Count + 1
            end,
            {{Id, Row}, {Type, Props, Count1}}
        end,
        {undefined, undefined, 0},
        Decoded),
    Rows.

keyframe(Props, Codec) ->
    {ok, Row} = backup_revision_codec:encode_keyframe(Props, Codec),
    Row.

checked_delta(PrevProps, Props, Codec) ->
    {ok, {DataType, Data} = Row} = backup_revision_codec:encode_delta(PrevProps, Props, Codec),
    case backup_revision_codec:is_full(DataType) of
        true ->
            Row;
        false ->
            Base = {backup_revision_codec:data_type_erlang(), term_to_binary(PrevProps)},
            case backup_revision_codec:decode([ Base, {DataType, Data} ], Codec) of
                {ok, P} when P =:= Props -> Row;
                _ -> keyframe(Props, Codec)
            end
    end.

write_changed(Rows, New, Context) ->
    lists:foldl(
        fun({{Id, _Type, DataType, Data}, {Id, {DataType, Data}}}, N) ->
                N;
           ({{Id, _Type, _DataType, _Data}, {Id, {NewType, NewData}}}, N) ->
                _ = z_db:q("update backup_revision set data_type = $2, data = $3 where id = $1",
                           [ Id, NewType, NewData ], Context),
                N + 1
        end,
        0,
        lists:zip(Rows, New)).

%% @doc Rewrite every non-`erlang' revision row as a stock `erlang' row. Stops a running
%% compaction first. Rows that cannot be reconstructed are left and counted as errors.
-spec downgrade(Context) -> {ok, #{ rows := non_neg_integer(), errors := non_neg_integer() }} when
    Context :: z:context().
downgrade(Context) ->
    ok = stop(Context),
    {ok, Stats} = downgrade_loop(0, #{ rows => 0, errors => 0 }, Context),
    _ = z_db:q("update module set schema_version = $1 where name = 'mod_backup' and schema_version > $1",
               [ ?STOCK_MOD_SCHEMA ], Context),
    {ok, Stats}.

downgrade_loop(After, Stats, Context) ->
    RscIds = z_db:q("
        select distinct rsc_id
        from backup_revision
        where data_type <> $1
          and rsc_id > $2
        order by rsc_id
        limit $3",
        [ backup_revision_codec:data_type_erlang(), After, ?BATCH ],
        Context),
    Stats1 = lists:foldl(
        fun({RscId}, #{ rows := R, errors := E } = S) ->
            case downgrade_resource(RscId, Context) of
                {ok, {N, Errors}} -> S#{ rows => R + N, errors => E + Errors };
                {error, _} -> S#{ errors => E + 1 }
            end
        end,
        Stats,
        RscIds),
    case RscIds of
        _ when length(RscIds) < ?BATCH ->
            {ok, Stats1};
        _ ->
            {LastId} = lists:last(RscIds),
            downgrade_loop(LastId, Stats1, Context)
    end.

downgrade_resource(RscId, Context) ->
    F = fun(Ctx) ->
        ok = backup_revision_save:lock_resource(RscId, Ctx),
        Rows = backup_revision_read:resource_rows(RscId, Ctx),
        {ok, downgrade_rows(Rows, undefined, {0, 0}, backup_revision_dict:codec(Ctx), Ctx)}
    end,
    transaction_result(RscId, <<"Could not downgrade revisions">>, z_db:transaction(F, Context)).

downgrade_rows([], _Prev, Counts, _Codec, _Context) ->
    Counts;
downgrade_rows([ {Id, _Type, DataType, Data} | Rest ], Prev, {N, E}, Codec, Context) ->
    Erlang = backup_revision_codec:data_type_erlang(),
    Chain = case backup_revision_codec:is_full(DataType) of
        true -> [ {DataType, Data} ];
        false when Prev =:= undefined -> [ {DataType, Data} ];
        false -> [ {Erlang, term_to_binary(Prev)}, {DataType, Data} ]
    end,
    case backup_revision_codec:decode(Chain, Codec) of
        {ok, Props} when DataType =:= Erlang ->
            downgrade_rows(Rest, Props, {N, E}, Codec, Context);
        {ok, Props} ->
            _ = z_db:q("update backup_revision set data_type = $2, data = $3 where id = $1",
                       [ Id, Erlang, term_to_binary(Props, [compressed]) ], Context),
            downgrade_rows(Rest, Props, {N + 1, E}, Codec, Context);
        {error, Reason} ->
            ?LOG_ERROR(#{
                in => zotonic_mod_backup,
                text => <<"Revision can not be reconstructed, left as it is">>,
                revision_id => Id,
                result => error,
                reason => Reason
            }),
            downgrade_rows(Rest, undefined, {N, E + 1}, Codec, Context)
    end.

transaction_result(_RscId, _Text, {ok, _} = Ok) ->
    Ok;
transaction_result(RscId, Text, {error, Reason} = Error) ->
    log_error(RscId, Text, Reason),
    Error;
transaction_result(RscId, Text, {rollback, {Reason, _Stack}}) ->
    log_error(RscId, Text, Reason),
    {error, Reason};
transaction_result(RscId, Text, Other) ->
    log_error(RscId, Text, Other),
    {error, Other}.

log_error(RscId, Text, Reason) ->
    ?LOG_ERROR(#{
        in => zotonic_mod_backup,
        text => Text,
        rsc_id => RscId,
        result => error,
        reason => Reason
    }).
