%% @doc The site's zstd dictionaries for revision rows: kept in the site's own database
%% (table backup_revision_dict, so a dump and a restore carry them), trained on the site's own
%% rows, loaded into the NIF on first use.
%%
%% A dictionary is never changed, and never deleted while a row names it (gc/1). New rows are
%% written with the newest dictionary; old rows keep theirs. A site starts without one: after
%% ?MIN_ROWS rows the first is trained, and a new one is trained when the rows written since
%% the newest are as many as there were then (so training gets rarer as the log grows). A
%% candidate is measured against the newest on held-out rows and adopted only when it pays:
%% when it saves at least ?MIN_GAIN_PERCENT percent of those rows' bytes and, at that rate,
%% more than its own size over as many bytes as were written since the last training.
%%
%% Training runs in a process of its own, and the NIF trains on a thread of its own at the
%% lowest CPU priority: a save only counts itself (saved/1) and, when a training is due, spawns
%% it; it never waits for one. revisions_compact/1 trains first (train/2 with `force') and then
%% rewrites the rows that have no dictionary or an older one (recode_sql/1), so that the older
%% dictionaries can go.
%%
%% The site's table (owned by its mod_backup server) holds the NIF's set of loaded
%% dictionaries, the id of the newest (`unknown' until first asked) and the save counter.
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

-module(backup_revision_dict).

-export([
    new/1,
    warm/1,
    codec/1,
    saved/1,
    is_training/1,
    train/2,
    gc/1,
    recode_sql/1
]).

%% Checked directly by the suites and the revision benchmark.
-ifdef(TEST).
-export([train_job/4, pays/2, is_due/3, split/1, limits/0]).
-ignore_xref([train_job/4, pays/2, is_due/3, split/1, limits/0]).
-endif.

-export_type([trained/0]).

-include_lib("zotonic_core/include/zotonic.hrl").

%% The first dictionary is trained once the log has this many rows.
-define(MIN_ROWS, 200).
%% A site's first check comes after this many saves (of this VM); a check that trains nothing
%% is repeated after at least this many more.
-define(FIRST_CHECK, 200).
-define(RETRY_SAVES, 1000).
%% A candidate must save at least this share of the held-out rows' bytes.
-define(MIN_GAIN_PERCENT, 2).
%% Training samples: the newest resources, their last keyframe and the deltas after it, up to
%% these bounds; one resource in five is held out to measure the result.
-define(SAMPLE_RESOURCES, 2000).
-define(SAMPLE_DEPTH, 8).
-define(SAMPLE_BYTES, 16_000_000).
-define(HOLDOUT_EVERY, 5).
%% The largest dictionary (zstd's own default); the NIF makes it a sixteenth of the bytes of
%% the rows it is trained on, and at least 4 KiB.
-define(DICT_MAX_BYTES, 112_640).
-define(TRAIN_TIMEOUT, 600_000).

-type trained() :: #{
    dict := binary(),
    sample_bytes := non_neg_integer(),
    holdout_raw := non_neg_integer(),
    holdout_current := non_neg_integer(),
    holdout_candidate := non_neg_integer()
}.
%% A candidate dictionary and what it did on the held-out rows, against the current one.
-type result() :: #{
    trained := boolean(),
    adopted := boolean(),
    dictionary => pos_integer(),
    reason => atom(),
    dict_bytes => non_neg_integer(),
    sample_bytes => non_neg_integer(),
    holdout_raw => non_neg_integer(),
    holdout_current => non_neg_integer(),
    holdout_candidate => non_neg_integer()
}.
-export_type([result/0]).

%% @doc Create the site's table, owned by the calling process (the site's mod_backup server).
-spec new(Context) -> ok when
    Context :: z:context().
new(Context) ->
    Table = table(Context),
    _ = ets:new(Table, [set, public, named_table, {read_concurrency, true}]),
    true = ets:insert(Table, [ {current, unknown}, {saves, 0}, {train_at, ?FIRST_CHECK} ]),
    ok.

%% @doc Load the newest dictionary with its encoder tables in the background, so the first
%% save after a start does not pay for them.
-spec warm(Context) -> ok when
    Context :: z:context().
warm(Context) ->
    Ctx = z_context:prune_for_spawn(Context),
    _ = spawn(fun() ->
        try
            _ = codec(Ctx),
            ok
        catch
            Class:Reason ->
                ?LOG_WARNING(#{
                    in => zotonic_mod_backup,
                    text => <<"Could not load the revision dictionary">>,
                    result => Class,
                    reason => Reason
                })
        end
    end),
    ok.

%% @doc The codec for the site's rows: its dictionaries (loaded when a row names one), and the
%% newest to write with. Without the site's table (its server is not running) a fresh set is
%% used and rows are written without a dictionary.
-spec codec(Context) -> backup_revision_codec:codec() when
    Context :: z:context().
codec(Context) ->
    Table = table(Context),
    case dicts(Table) of
        {ok, Dicts} ->
            Current = current(Table, Dicts, Context),
            backup_revision_codec:codec(Dicts, Current, fun(Id) -> load(Id, Dicts, false, Context) end);
        undefined ->
            Dicts = backup_nif:revision_dicts_new(),
            backup_revision_codec:codec(Dicts, 0, fun(Id) -> load(Id, Dicts, false, Context) end)
    end.

%% @doc Count a committed save; start a training when one may be due. Never waits for it. The
%% application env `revision_dictionary_training' (default true) set to false leaves training
%% to revisions_compact/1.
-spec saved(Context) -> ok when
    Context :: z:context().
saved(Context) ->
    Table = table(Context),
    try
        N = ets:update_counter(Table, saves, 1),
        IsAuto = application:get_env(zotonic_mod_backup, revision_dictionary_training, true),
        case ets:lookup(Table, train_at) of
            [{train_at, At}] when N >= At, IsAuto =/= false ->
                true = ets:insert(Table, {train_at, N + ?RETRY_SAVES}),
                start_training(Context);
            _ ->
                ok
        end
    catch
        error:badarg -> ok
    end.

%% @doc Train in the background (train/2), unless the site is training already.
-spec start_training(Context) -> ok when
    Context :: z:context().
start_training(Context) ->
    Ctx = z_context:prune_for_spawn(Context),
    Name = trainer(Ctx),
    _ = spawn(fun() ->
        try register(Name, self()) of
            true -> background_train(Ctx)
        catch
            error:badarg -> ok
        end
    end),
    ok.

%% @doc Is the site training a dictionary in the background?
-spec is_training(Context) -> boolean() when
    Context :: z:context().
is_training(Context) ->
    is_pid(whereis(trainer(Context))).

background_train(Context) ->
    Result = try
        train(Context, #{})
    catch
        Class:Reason:Stack -> {error, {Class, Reason, Stack}}
    end,
    case Result of
        {ok, #{ trained := true, adopted := false }} ->
            % Not worth it now: ask again when the log has grown as much again.
            Rows = z_db:q1("select count(*) from backup_revision", Context),
            set_train_at(max(?RETRY_SAVES, Rows), Context);
        {ok, _} ->
            ok;
        {error, _} = Error ->
            ?LOG_ERROR(#{
                in => zotonic_mod_backup,
                text => <<"Revision dictionary training failed">>,
                result => error,
                reason => Error
            })
    end.

set_train_at(After, Context) ->
    Table = table(Context),
    try
        [{saves, N}] = ets:lookup(Table, saves),
        true = ets:insert(Table, {train_at, N + After}),
        ok
    catch
        error:badarg -> ok
    end.

%% @doc Train a dictionary on the site's newest rows when one is due (or, with `force', when
%% the log has rows enough), and adopt it when it pays. Runs in the calling process; the NIF
%% trains on a thread of its own.
-spec train(Context, Options) -> {ok, result()} | {error, term()} when
    Context :: z:context(),
    Options :: #{ force => boolean() }.
train(Context, Options) ->
    {Current, CurrentRows, Upto} = case z_db:q_row("
            select id, rows, upto from backup_revision_dict order by id desc limit 1", Context) of
        undefined -> {0, 0, 0};
        Row -> Row
    end,
    {NewRows, NewBytes} = z_db:q_row("
        select count(*), coalesce(sum(octet_length(data)), 0)::bigint
        from backup_revision
        where id > $1",
        [ Upto ], Context),
    case is_due(NewRows, CurrentRows, maps:get(force, Options, false)) of
        true -> train_now(Current, NewBytes, Context);
        false -> {ok, #{ trained => false, adopted => false, reason => not_due }}
    end.

%% @doc Is a training due, with NewRows rows written since the newest dictionary was trained
%% on a log of CurrentRows rows (0: there is none)? With Force, whenever there are rows enough.
-spec is_due(NewRows, CurrentRows, Force) -> boolean() when
    NewRows :: non_neg_integer(),
    CurrentRows :: non_neg_integer(),
    Force :: boolean().
is_due(NewRows, CurrentRows, Force) ->
    NewRows >= ?MIN_ROWS andalso (Force orelse NewRows >= CurrentRows).

-ifdef(TEST).
%% @doc How samples are taken: the newest `resources' resources, of each its last keyframe and
%% the revisions after it up to `depth' in all, until `bytes' bytes of props.
-spec limits() -> #{ resources := pos_integer(), depth := pos_integer(), bytes := pos_integer() }.
limits() ->
    #{ resources => ?SAMPLE_RESOURCES, depth => ?SAMPLE_DEPTH, bytes => ?SAMPLE_BYTES }.
-endif.

%% @doc Histories into the training set and the held-out set (every ?HOLDOUT_EVERY-th).
-spec split(Histories) -> {Train, Holdout} when
    Histories :: [[binary()]],
    Train :: [[binary()]],
    Holdout :: [[binary()]].
split(Histories) ->
    Numbered = lists:zip(lists:seq(1, length(Histories)), Histories),
    {[ H || {I, H} <- Numbered, I rem ?HOLDOUT_EVERY =/= 0 ],
     [ H || {I, H} <- Numbered, I rem ?HOLDOUT_EVERY =:= 0 ]}.

%% @doc Train a dictionary on the rows of the histories Train (each the term_to_binary/1 props
%% of successive revisions of one resource) and measure it against dictionary Current of Dicts
%% (0: none) on the rows of Holdout. The NIF trains on a thread of its own; this waits for it.
%% Too few samples give `{error, too_few_samples}'.
-spec train_job(Dicts, Current, Train, Holdout) -> {ok, trained()} | {error, term()} when
    Dicts :: backup_nif:dicts(),
    Current :: backup_nif:dict_id(),
    Train :: [[binary()]],
    Holdout :: [[binary()]].
train_job(Dicts, Current, Train, Holdout) ->
    Ref = make_ref(),
    case backup_nif:revision_train(Ref, Dicts, Current, Train, Holdout, ?DICT_MAX_BYTES) of
        {ok, Job} ->
            receive
                {backup_job_done, Ref, {ok, Trained}} -> {ok, Trained};
                {backup_job_done, Ref, {error, {einval, _}}} -> {error, too_few_samples};
                {backup_job_done, Ref, {error, _} = Error} -> Error
            after ?TRAIN_TIMEOUT ->
                backup_nif:job_cancel(Job),
                {error, timeout}
            end;
        {error, _} = Error ->
            Error
    end.

%% @doc Does the candidate pay: does it save at least ?MIN_GAIN_PERCENT of the held-out rows'
%% bytes, and at that rate more than its own size over NewBytes (the bytes written since the
%% last training, taken as what the next while will write)?
-spec pays(trained(), NewBytes) -> boolean() when
    NewBytes :: non_neg_integer().
pays(#{ dict := Dict, holdout_current := Cur, holdout_candidate := Cand }, NewBytes) ->
    Saved = Cur - Cand,
    Cur > 0
        andalso Saved * 100 >= Cur * ?MIN_GAIN_PERCENT
        andalso Saved * NewBytes div Cur > byte_size(Dict).

train_now(Current, NewBytes, Context) ->
    Codec = codec(Context),
    {Histories, _Bytes} = samples(Codec, Context),
    {Train, Holdout} = split(Histories),
    Dicts = case dicts(table(Context)) of
        {ok, D} -> D;
        undefined -> backup_nif:revision_dicts_new()
    end,
    case Current =:= 0 orelse load(Current, Dicts, false, Context) of
        Loaded when Loaded =:= true; Loaded =:= ok ->
            case train_job(Dicts, Current, Train, Holdout) of
                {ok, Trained} ->
                    decide(Trained, Current, NewBytes, Dicts, Context);
                {error, too_few_samples} ->
                    {ok, #{ trained => false, adopted => false, reason => too_few_samples }};
                {error, _} = Error ->
                    Error
            end;
        {error, _} = Error ->
            Error
    end.

decide(#{ dict := Dict } = Trained, Current, NewBytes, Dicts, Context) ->
    Stats = (maps:without([dict], Trained))#{
        trained => true,
        dict_bytes => byte_size(Dict),
        replaces => Current
    },
    case pays(Trained, NewBytes) of
        true ->
            case adopt(Dict, Dicts, Context) of
                {ok, Id} ->
                    ?LOG_INFO(Stats#{
                        in => zotonic_mod_backup,
                        text => <<"New revision dictionary">>,
                        result => ok,
                        dictionary => Id
                    }),
                    {ok, (maps:remove(replaces, Stats))#{ adopted => true, dictionary => Id }};
                {error, _} = Error ->
                    Error
            end;
        false ->
            ?LOG_INFO(Stats#{
                in => zotonic_mod_backup,
                text => <<"Revision dictionary trained but kept the current one: the new one does not pay">>,
                result => ok
            }),
            {ok, (maps:remove(replaces, Stats))#{ adopted => false }}
    end.

%% Store the dictionary under a new id, load it and make it the one new rows are written with.
adopt(Dict, Dicts, Context) ->
    F = fun(Ctx) ->
        Id = z_db:q1("
            insert into backup_revision_dict (checksum, rows, upto, data)
            select $1, count(*), coalesce(max(id), 0), $2
            from backup_revision
            returning id",
            [ erlang:crc32(Dict), Dict ], Ctx),
        {ok, Id}
    end,
    case z_db:transaction(F, Context) of
        {ok, Id} ->
            case backup_nif:revision_dict_put(Dicts, Id, Dict, true) of
                ok ->
                    true = ets:insert(table(Context), {current, Id}),
                    {ok, Id};
                {error, _} = Error ->
                    Error
            end;
        {rollback, {Reason, _}} ->
            {error, Reason};
        {error, _} = Error ->
            Error
    end.

%% Histories of the newest resources for training and for measuring: per resource the term_to_binary
%% of its last keyframe and of up to ?SAMPLE_DEPTH - 1 revisions after it.
samples(Codec, Context) ->
    RscIds = z_db:q("
        select rsc_id from backup_revision group by rsc_id order by max(id) desc limit $1",
        [ ?SAMPLE_RESOURCES ], Context),
    {Histories, Bytes} = lists:foldl(
        fun
            ({_RscId}, {Acc, Bytes}) when Bytes >= ?SAMPLE_BYTES ->
                {Acc, Bytes};
            ({RscId}, {Acc, Bytes}) ->
                Rows = lists:sublist(backup_revision_read:latest_chain(RscId, Context), ?SAMPLE_DEPTH),
                case history([ {DT, D} || #{ <<"data_type">> := DT, <<"data">> := D } <- Rows ], Codec) of
                    [] -> {Acc, Bytes};
                    H -> {[H | Acc], Bytes + lists:sum([ byte_size(E) || E <- H ])}
                end
        end,
        {[], 0},
        RscIds),
    {lists:reverse(Histories), Bytes}.

%% The term_to_binary/1 of each revision of a chain, in order; stops at a row that does not
%% decode.
history([], _Codec) ->
    [];
history([ First | Rest ], Codec) ->
    case backup_revision_codec:decode([ First ], Codec) of
        {ok, Props} -> history(Rest, Props, [ term_to_binary(Props) ], Codec);
        {error, _} -> []
    end.

history([], _Prev, Acc, _Codec) ->
    lists:reverse(Acc);
history([ Row | Rest ], Prev, Acc, Codec) ->
    Base = {backup_revision_codec:data_type_erlang(), term_to_binary(Prev)},
    case backup_revision_codec:decode([ Base, Row ], Codec) of
        {ok, Props} -> history(Rest, Props, [ term_to_binary(Props) | Acc ], Codec);
        {error, _} -> lists:reverse(Acc)
    end.

%% @doc Delete the dictionaries no row names, except the two newest, in one statement. Rows
%% are only ever written with the newest dictionary (a writer that read it just before a new
%% one was adopted writes with what is then the second newest), so a dictionary older than
%% those two that no row names cannot come to be named by one.
-spec gc(Context) -> {ok, non_neg_integer()} | {error, term()} when
    Context :: z:context().
gc(Context) ->
    try
        N = z_db:q(["
            delete from backup_revision_dict d
            where d.id < (select min(n.id)
                          from (select id from backup_revision_dict order by id desc limit 2) n)
              and d.id not in (
                  select distinct ", dict_id_sql("h.b"), "
                  from (select substring(data from 1 for 4) as b
                        from backup_revision
                        where data_type = any($1)) h
                  where get_byte(h.b, 1) & 3 = 2)"],
            [ v2_types() ], Context),
        ?LOG_INFO(#{
            in => zotonic_mod_backup,
            text => <<"Deleted revision dictionaries no row needs">>,
            result => ok,
            count => N
        }),
        {ok, N}
    catch
        throw:{error, Reason} -> {error, Reason}
    end.

%% @doc An SQL condition on backup_revision: the rows revisions_compact/1 rewrites, those not
%% written the way a save writes now: `erlang' and format 1 rows, and format 2 rows compressed
%% without a dictionary or with another one than the newest. Param is the placeholder holding
%% the newest dictionary's id (0: none). Raw rows (too small to compress) are as they should be.
-spec recode_sql(Param) -> iodata() when
    Param :: string().
recode_sql(Param) ->
    Codec = "get_byte(substring(data from 1 for 2), 1) & 3",
    ["(data_type in ('erlang', 'zkey1', 'zdelta1')
       or (data_type in ('zkey2', 'zdelta2') and ", Param, " <> 0
           and (", Codec, " = 1
                or (", Codec, " = 2 and ", dict_id_sql("substring(data from 1 for 4)"), " <> ", Param, "))))"].

%% SQL: the dictionary id of a row of codec 2 from its first four bytes B (a varint of one or
%% two bytes at offset 2; see backup_core::revision::seal).
dict_id_sql(B) ->
    ["(case when get_byte(", B, ", 2) < 128 then get_byte(", B, ", 2)
            else get_byte(", B, ", 2) - 128 + get_byte(", B, ", 3) * 128 end)"].

v2_types() ->
    [ backup_revision_codec:data_type_keyframe(), backup_revision_codec:data_type_delta() ].

%% ---------------------------------------------------------------------------------------------

%% The site's dictionary set, made on first use.
dicts(Table) ->
    try ets:lookup(Table, dicts) of
        [{dicts, Dicts}] ->
            case backup_nif:is_current(Dicts) of
                true ->
                    {ok, Dicts};
                false ->
                    % A new build of the library was loaded (z:ld()): its calls need a set of
                    % its own. The dictionaries load into it again as rows ask for them.
                    true = ets:delete(Table, current),
                    true = ets:delete_object(Table, {dicts, Dicts}),
                    dicts(Table)
            end;
        [] ->
            New = backup_nif:revision_dicts_new(),
            case ets:insert_new(Table, {dicts, New}) of
                true -> {ok, New};
                false -> dicts(Table)
            end
    catch
        error:badarg -> undefined
    end.

%% The newest dictionary's id (0: none), loaded with its encoder tables when first asked.
current(Table, Dicts, Context) ->
    case ets:lookup(Table, current) of
        [{current, Id}] when is_integer(Id) ->
            Id;
        _ ->
            Id = case z_db:q1("select max(id) from backup_revision_dict", Context) of
                undefined ->
                    0;
                Newest ->
                    case load(Newest, Dicts, true, Context) of
                        ok ->
                            Newest;
                        {error, Reason} ->
                            ?LOG_ERROR(#{
                                in => zotonic_mod_backup,
                                text => <<"Revision dictionary unusable; new rows are written without one">>,
                                result => error,
                                reason => Reason,
                                dictionary => Newest
                            }),
                            0
                    end
            end,
            true = ets:insert(Table, {current, Id}),
            Id
    end.

%% Load dictionary Id from the database into Dicts (with its encoder tables when Warm).
load(Id, Dicts, Warm, Context) ->
    case z_db:q_row("select data, checksum from backup_revision_dict where id = $1", [ Id ], Context) of
        undefined ->
            dict_error(missing_dictionary, Id, "is missing from the table backup_revision_dict");
        {Data, Checksum} ->
            case erlang:crc32(Data) =:= Checksum of
                true -> backup_nif:revision_dict_put(Dicts, Id, Data, Warm);
                false -> dict_error(bad_dictionary, Id, "is damaged: its bytes do not match their checksum")
            end
    end.

dict_error(Reason, Id, Text) ->
    {error, {Reason, #{
        dictionary => Id,
        message => iolist_to_binary(io_lib:format("revision dictionary ~b ~s", [Id, Text]))
    }}}.

table(Context) ->
    z_utils:name_for_site(?MODULE, z_context:site(Context)).

trainer(Context) ->
    z_utils:name_for_site(backup_revision_dict_trainer, z_context:site(Context)).
