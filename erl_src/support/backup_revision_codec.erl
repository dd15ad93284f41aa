%% @doc Encoding and decoding of the `data' column of backup_revision.
%%
%% Stock Zotonic stores each save as `term_to_binary(Props, [compressed])' with data_type
%% `erlang'. We store a keyframe (`zkey2', the full props) at least every N saves of a resource
%% and deltas (`zdelta2': changed keys with new values, integers and dates as differences, long
%% texts as word diffs, removed keys) in between, compressed with the site's own zstd dictionary
%% when it has one (backup_revision_dict). Rows of format 1 (`zkey1', `zdelta1') stay readable.
%% The diffing, the versioned binary format and the reconstruction are in the Rust NIF
%% (`backup_core::revision'); this module maps rows to NIF calls and results to terms.
%%
%% A chain is a list of rows `{DataType, Data}' in save order: the last full row (`erlang',
%% `zkey1' or `zkey2') and the deltas after it; the wanted revision is the last row. `erlang' rows
%% are readable forever, and a delta may follow one. Each delta carries the checksum of the
%% revision it makes, so a damaged row, a missing row or a wrong order is an error, never a
%% wrong revision.
%%
%% Every call takes a codec(): the site's dictionaries, the one new rows are written with, and
%% how to load one a row names that is not loaded yet. A row whose dictionary cannot be loaded
%% gives `{error, {missing_dictionary | bad_dictionary, #{dictionary := Id, message := _}}}'.
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

-module(backup_revision_codec).

-export([
    codec/3,
    write_dictionary/1,
    encode_keyframe/2,
    encode_delta/3,
    encode_delta_after/3,
    encode_delta_from/4,
    decode/2,
    rekey/2,
    diff/2,
    is_full/1,
    data_type_keyframe/0,
    data_type_delta/0,
    data_types_delta/0,
    data_type_erlang/0
]).

% Checked directly by the suites.
-ifdef(TEST).
-export([plain/0, delta_cost/2]).
-ignore_xref([plain/0, delta_cost/2]).
-endif.

-export_type([codec/0, row/0, data_type/0, change/0, error/0]).

-define(ERLANG, <<"erlang">>).
-define(KEYFRAME, <<"zkey2">>).
-define(DELTA, <<"zdelta2">>).
-define(KEYFRAME_V1, <<"zkey1">>).
-define(DELTA_V1, <<"zdelta1">>).

%% A chain needs at most this many dictionaries loaded on the way (each load is a retry).
-define(MAX_LOADS, 8).

-opaque codec() :: #{
    dicts := backup_nif:dicts(),
    dict := backup_nif:dict_id(),
    load := fun((pos_integer()) -> ok | error())
}.
%% The site's dictionaries (a NIF resource), the id of the one new rows are written with (0:
%% none) and the loader of a dictionary a row names that is not loaded.
-type data_type() :: binary().
%% `<<"erlang">>', `<<"zkey2">>', `<<"zdelta2">>', `<<"zkey1">>' or `<<"zdelta1">>'.
-type row() :: {data_type(), binary()}.
-type error() :: {error, {Reason :: atom(), #{message := binary(), dictionary => pos_integer()}}}.
-type change() :: #{
    key := term(),
    lang := atom(),
    change := added | removed | changed,
    old := binary() | undefined,
    new := binary() | undefined,
    ops := [{eq | ins | del, binary()}]
}.
%% One changed property, or one changed language (`lang') of a `{trans, _}' property. `old' and
%% `new' are the values as text (a binary value as itself, any other term printed like `~p').

-ifdef(TEST).
%% @doc A codec without dictionaries (tests, and where no site is at hand): rows are written
%% with plain zstd, and rows that name a dictionary cannot be read.
-spec plain() -> codec().
plain() ->
    codec(backup_nif:revision_dicts_new(), 0, fun(Id) -> missing(Id) end).
-endif.

%% @doc A codec over Dicts writing with dictionary Dict (0: none), loading others with Load.
-spec codec(Dicts, Dict, Load) -> codec() when
    Dicts :: backup_nif:dicts(),
    Dict :: backup_nif:dict_id(),
    Load :: fun((pos_integer()) -> ok | error()).
codec(Dicts, Dict, Load) when is_integer(Dict), Dict >= 0, is_function(Load, 1) ->
    #{ dicts => Dicts, dict => Dict, load => Load }.

%% @doc The id of the dictionary the codec writes new rows with (0: none).
-spec write_dictionary(codec()) -> backup_nif:dict_id().
write_dictionary(#{ dict := Dict }) ->
    Dict.

%% @doc The data_type of keyframe rows written now.
-spec data_type_keyframe() -> data_type().
data_type_keyframe() -> ?KEYFRAME.

%% @doc The data_type of delta rows written now.
-spec data_type_delta() -> data_type().
data_type_delta() -> ?DELTA.

%% @doc The data_types of delta rows, of every format.
-spec data_types_delta() -> [data_type()].
data_types_delta() -> [?DELTA_V1, ?DELTA].

%% @doc The data_type of stock rows (`term_to_binary(Props, [compressed])').
-spec data_type_erlang() -> data_type().
data_type_erlang() -> ?ERLANG.

%% @doc True for rows that hold a full revision (a chain may start there).
-spec is_full(data_type()) -> boolean().
is_full(?ERLANG) -> true;
is_full(?KEYFRAME) -> true;
is_full(?KEYFRAME_V1) -> true;
is_full(_) -> false.

is_delta(?DELTA) -> true;
is_delta(?DELTA_V1) -> true;
is_delta(_) -> false.

%% @doc A full row for Props. Props our codec cannot represent (nesting deeper than 64, old
%% fun terms) are stored as a stock `erlang' row, which is just as full.
-spec encode_keyframe(Props, codec()) -> {ok, row()} when Props :: term().
encode_keyframe(Props, Codec) ->
    Etf = term_to_binary(Props),
    case write(fun(D, W) -> backup_nif:revision_keyframe(D, W, Etf) end, Codec) of
        {ok, Blob} -> {ok, {?KEYFRAME, Blob}};
        {error, _} -> {ok, {?ERLANG, term_to_binary(Props, [compressed])}}
    end.

%% @doc A delta row turning BaseProps into NewProps, or a full row when the props cannot be
%% diffed (see encode_keyframe/2).
-spec encode_delta(BaseProps, NewProps, codec()) -> {ok, row()} when BaseProps :: term(), NewProps :: term().
encode_delta(BaseProps, NewProps, Codec) ->
    Base = term_to_binary(BaseProps),
    New = term_to_binary(NewProps),
    case write(fun(D, W) -> backup_nif:revision_delta(D, W, Base, New) end, Codec) of
        {ok, Blob} -> {ok, {?DELTA, Blob}};
        {error, _} -> encode_keyframe(NewProps, Codec)
    end.

%% @doc A delta row from the revision at the end of Chain to NewProps, in one NIF call when the
%% chain starts at a keyframe. Errors when the chain does not decode.
-spec encode_delta_after(Chain, NewProps, codec()) -> {ok, row()} | error()
    when Chain :: [row()], NewProps :: term().
encode_delta_after(Chain, NewProps, Codec) ->
    case split_chain(Chain) of
        {ok, {?ERLANG, _}, _} ->
            case decode(Chain, Codec) of
                {ok, Base} -> encode_delta(Base, NewProps, Codec);
                {error, _} = Error -> Error
            end;
        {ok, {_Keyframe, Key}, Deltas} ->
            New = term_to_binary(NewProps),
            case write(fun(D, W) -> backup_nif:revision_delta_after(D, W, [Key | Deltas], New) end, Codec) of
                {ok, Blob} -> {ok, {?DELTA, Blob}};
                {error, {einval, _}} -> encode_keyframe(NewProps, Codec);
                {error, _} = Error -> Error
            end;
        {error, _} = Error ->
            Error
    end.

%% @doc A delta row to NewProps from the props BaseEtf (their term_to_binary/1), which should be
%% the revision LastRow (the resource's newest row) ends at. `{error, {stale_base, _}}' when
%% they are not (checked against the checksum the row carries) or when LastRow is a stock
%% `erlang' row, which carries none: the caller then makes the delta from the chain.
-spec encode_delta_from(LastRow, BaseEtf, NewProps, codec()) -> {ok, row()} | error()
    when LastRow :: row(), BaseEtf :: binary(), NewProps :: term().
encode_delta_from({?ERLANG, _}, _BaseEtf, _NewProps, _Codec) ->
    {error, {stale_base, #{ message => <<"an erlang row carries no checksum">> }}};
encode_delta_from({DataType, Last}, BaseEtf, NewProps, Codec) when is_binary(Last), is_binary(BaseEtf) ->
    case is_full(DataType) orelse is_delta(DataType) of
        true ->
            New = term_to_binary(NewProps),
            case write(fun(D, W) -> backup_nif:revision_delta_from(D, W, Last, BaseEtf, New) end, Codec) of
                {ok, Blob} -> {ok, {?DELTA, Blob}};
                {error, _} = Error -> Error
            end;
        false ->
            bad_revision(<<"unknown revision data_type: ", (type_text(DataType))/binary>>)
    end;
encode_delta_from(_LastRow, _BaseEtf, _NewProps, _Codec) ->
    bad_revision(<<"a revision row must be {DataType, Data} with binary data">>).

%% @doc The props of the revision at the end of Chain (rows in save order; rows before the last
%% full row are ignored).
-spec decode(Chain, codec()) -> {ok, Props :: term()} | error() when Chain :: [row()].
decode(Chain, Codec) ->
    case split_chain(Chain) of
        {ok, {?ERLANG, Data}, []} ->
            erlang_row(Data);
        {ok, {?ERLANG, Data}, Deltas} ->
            case erlang_row(Data) of
                {ok, Base} ->
                    BaseEtf = term_to_binary(Base),
                    from_etf(call(fun(D, _) -> backup_nif:revision_apply(D, BaseEtf, Deltas) end, Codec));
                {error, _} = Error ->
                    Error
            end;
        {ok, {_Keyframe, Key}, Deltas} ->
            from_etf(call(fun(D, _) -> backup_nif:revision_reconstruct(D, [Key | Deltas]) end, Codec));
        {error, _} = Error ->
            Error
    end.

%% @doc The revision at the end of Chain as a full row: what pruning writes over the oldest row
%% it keeps, so no delta is left without its base. A keyframe alone stays as it is.
-spec rekey(Chain, codec()) -> {ok, row()} | error() when Chain :: [row()].
rekey(Chain, Codec) ->
    case split_chain(Chain) of
        {ok, {?ERLANG, _}, _} ->
            case decode(Chain, Codec) of
                {ok, Props} -> encode_keyframe(Props, Codec);
                {error, _} = Error -> Error
            end;
        {ok, {Keyframe, Key}, []} ->
            {ok, {Keyframe, Key}};
        {ok, {_Keyframe, Key}, Deltas} ->
            case write(fun(D, W) -> backup_nif:revision_rekey(D, W, [Key | Deltas]) end, Codec) of
                {ok, Blob} -> {ok, {?KEYFRAME, Blob}};
                {error, _} = Error -> Error
            end;
        {error, _} = Error ->
            Error
    end.

-ifdef(TEST).
%% @doc Where the bytes of a stored `zdelta2' row go: its stored and payload size, and the
%% payload's bytes by part (checksum, framing, paths, ints, times, text_copies, text_inserts,
%% sets, puts, drops, lists). For the benchmark.
-spec delta_cost(binary(), codec()) -> {ok, #{atom() => non_neg_integer()}} | error().
delta_cost(Blob, Codec) ->
    call(fun(D, _) -> backup_nif:revision_delta_cost(D, Blob) end, Codec).
-endif.

%% @doc Per-property changes from PropsA to PropsB, sorted by key, with word-level changes of
%% texts; translated texts are compared per language.
-spec diff(PropsA, PropsB) -> {ok, [change()]} | error() when PropsA :: term(), PropsB :: term().
diff(PropsA, PropsB) ->
    backup_nif:revision_diff(term_to_binary(PropsA), term_to_binary(PropsB)).

%% ---------------------------------------------------------------------------------------------

%% Runs a NIF call with the codec's dictionaries; when a row names a dictionary that is not
%% loaded, loads it and runs the call again.
call(F, Codec) ->
    call(F, Codec, ?MAX_LOADS).

call(F, #{ dicts := Dicts, dict := Dict, load := Load } = Codec, Loads) ->
    case F(Dicts, Dict) of
        {error, {missing_dictionary, #{ dictionary := Id }}} = Missing when Loads > 0 ->
            case Load(Id) of
                ok ->
                    case lists:member(Id, backup_nif:revision_dict_ids(Dicts)) of
                        true -> call(F, Codec, Loads - 1);
                        false -> Missing
                    end;
                {error, _} = Error ->
                    Error
            end;
        Result ->
            Result
    end.

%% A call that writes a row: when the dictionary to write with cannot be had, the row is
%% written without one rather than not at all.
write(F, #{ dict := Dict } = Codec) ->
    case call(F, Codec) of
        {error, {Reason, #{ dictionary := Dict }}} when Dict =/= 0, (Reason =:= missing_dictionary orelse Reason =:= bad_dictionary) ->
            call(F, Codec#{ dict => 0 });
        Result ->
            Result
    end.

-ifdef(TEST).
missing(Id) ->
    {error, {missing_dictionary, #{
        dictionary => Id,
        message => iolist_to_binary(io_lib:format("revision dictionary ~b is not available", [Id]))
    }}}.
-endif.

%% The last full row and the delta blobs after it; every row after it must be a delta.
-spec split_chain([row()]) -> {ok, row(), [binary()]} | error().
split_chain(Chain) when is_list(Chain) ->
    split_chain(lists:reverse(Chain), []);
split_chain(_) ->
    bad_revision(<<"a revision chain must be a list of {DataType, Data} rows">>).

split_chain([], _Deltas) ->
    bad_revision(<<"no keyframe or erlang row before the deltas">>);
split_chain([{Type, Data} = Row | Rest], Deltas) when is_binary(Data) ->
    case is_delta(Type) of
        true ->
            split_chain(Rest, [Data | Deltas]);
        false ->
            case is_full(Type) of
                true -> {ok, Row, Deltas};
                false -> bad_revision(<<"unknown revision data_type: ", (type_text(Type))/binary>>)
            end
    end;
split_chain([_ | _], _Deltas) ->
    bad_revision(<<"a revision row must be {DataType, Data} with binary data">>).

type_text(T) when is_binary(T) -> T;
type_text(T) -> unicode:characters_to_binary(io_lib:format("~p", [T])).

%% Stock rows are our own database's data, decoded as stock mod_backup decodes them: atoms the
%% VM no longer knows must still come back.
erlang_row(Data) ->
    try
        {ok, binary_to_term(Data)}
    catch
        error:badarg -> bad_revision(<<"erlang row is not a term">>)
    end.

%% The NIF has checked the reconstructed term against the checksum taken when it was saved.
from_etf({ok, Etf}) ->
    try
        {ok, binary_to_term(Etf)}
    catch
        error:badarg -> bad_revision(<<"reconstructed revision is not a term">>)
    end;
from_etf({error, _} = Error) ->
    Error.

bad_revision(Message) ->
    {error, {bad_revision, #{message => Message}}}.
