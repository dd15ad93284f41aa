%% @doc Encoding and decoding of the `data' column of backup_revision.
%%
%% Stock Zotonic stores each save as `term_to_binary(Props, [compressed])' with data_type
%% `erlang'. We store a keyframe (`zkey1', the full props) at least every N saves of a resource
%% and deltas (`zdelta1', changed keys with new values, long texts as word diffs, removed keys)
%% in between. The diffing, the versioned binary format and the reconstruction are in the Rust
%% NIF (`backup_core::revision'); this module maps rows to NIF calls and results to terms.
%%
%% A chain is a list of rows `{DataType, Data}' in save order: the last full row (`erlang' or
%% `zkey1') and the deltas after it; the wanted revision is the last row. `erlang' rows are
%% readable forever, and a delta may follow one. Each delta carries a checksum of the revision it
%% was made from and of the one it makes, so a damaged row, a missing row or a wrong order is an
%% error, never a wrong revision.
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
    encode_keyframe/1,
    encode_delta/2,
    encode_delta_after/2,
    encode_delta_from/3,
    decode/1,
    rekey/1,
    diff/2,
    is_full/1,
    data_type_keyframe/0,
    data_type_delta/0,
    data_type_erlang/0
]).

-export_type([row/0, data_type/0, change/0, error/0]).

-define(ERLANG, <<"erlang">>).
-define(KEYFRAME, <<"zkey1">>).
-define(DELTA, <<"zdelta1">>).

-type data_type() :: binary().
%% `<<"erlang">>', `<<"zkey1">>' or `<<"zdelta1">>' (backup_revision.data_type).
-type row() :: {data_type(), binary()}.
-type error() :: {error, {Reason :: atom(), #{message := binary()}}}.
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

%% @doc The data_type of keyframe rows.
-spec data_type_keyframe() -> data_type().
data_type_keyframe() -> ?KEYFRAME.

%% @doc The data_type of delta rows.
-spec data_type_delta() -> data_type().
data_type_delta() -> ?DELTA.

%% @doc The data_type of stock rows (`term_to_binary(Props, [compressed])').
-spec data_type_erlang() -> data_type().
data_type_erlang() -> ?ERLANG.

%% @doc True for rows that hold a full revision (a chain may start there).
-spec is_full(data_type()) -> boolean().
is_full(?ERLANG) -> true;
is_full(?KEYFRAME) -> true;
is_full(_) -> false.

%% @doc A full row for Props. Props our codec cannot represent (nesting deeper than 64, old
%% fun terms) are stored as a stock `erlang' row, which is just as full.
-spec encode_keyframe(Props) -> {ok, row()} when Props :: term().
encode_keyframe(Props) ->
    case backup_nif:revision_keyframe(term_to_binary(Props)) of
        {ok, Blob} -> {ok, {?KEYFRAME, Blob}};
        {error, _} -> {ok, {?ERLANG, term_to_binary(Props, [compressed])}}
    end.

%% @doc A delta row turning BaseProps into NewProps, or a full row when the props cannot be
%% diffed (see encode_keyframe/1).
-spec encode_delta(BaseProps, NewProps) -> {ok, row()} when BaseProps :: term(), NewProps :: term().
encode_delta(BaseProps, NewProps) ->
    case backup_nif:revision_delta(term_to_binary(BaseProps), term_to_binary(NewProps)) of
        {ok, Blob} -> {ok, {?DELTA, Blob}};
        {error, _} -> encode_keyframe(NewProps)
    end.

%% @doc A delta row from the revision at the end of Chain to NewProps, in one NIF call when the
%% chain starts at a keyframe. Errors when the chain does not decode.
-spec encode_delta_after(Chain, NewProps) -> {ok, row()} | error()
    when Chain :: [row()], NewProps :: term().
encode_delta_after(Chain, NewProps) ->
    case split_chain(Chain) of
        {ok, {?KEYFRAME, Key}, Deltas} ->
            case backup_nif:revision_delta_after([Key | Deltas], term_to_binary(NewProps)) of
                {ok, Blob} -> {ok, {?DELTA, Blob}};
                {error, {einval, _}} -> encode_keyframe(NewProps);
                {error, _} = Error -> Error
            end;
        {ok, _, _} ->
            case decode(Chain) of
                {ok, Base} -> encode_delta(Base, NewProps);
                {error, _} = Error -> Error
            end;
        {error, _} = Error ->
            Error
    end.

%% @doc A delta row to NewProps from the props BaseEtf (their term_to_binary/1), which should be
%% the revision LastRow (the resource's newest row) ends at. `{error, {stale_base, _}}' when
%% they are not (checked against the checksum the row carries) or when LastRow is a stock
%% `erlang' row, which carries none: the caller then makes the delta from the chain.
-spec encode_delta_from(LastRow, BaseEtf, NewProps) -> {ok, row()} | error()
    when LastRow :: row(), BaseEtf :: binary(), NewProps :: term().
encode_delta_from({?ERLANG, _}, _BaseEtf, _NewProps) ->
    {error, {stale_base, #{ message => <<"an erlang row carries no checksum">> }}};
encode_delta_from({DataType, Last}, BaseEtf, NewProps) when is_binary(Last), is_binary(BaseEtf) ->
    case is_full(DataType) orelse DataType =:= ?DELTA of
        true ->
            case backup_nif:revision_delta_from(Last, BaseEtf, term_to_binary(NewProps)) of
                {ok, Blob} -> {ok, {?DELTA, Blob}};
                {error, _} = Error -> Error
            end;
        false ->
            bad_revision(<<"unknown revision data_type: ", (type_text(DataType))/binary>>)
    end;
encode_delta_from(_LastRow, _BaseEtf, _NewProps) ->
    bad_revision(<<"a revision row must be {DataType, Data} with binary data">>).

%% @doc The props of the revision at the end of Chain (rows in save order; rows before the last
%% full row are ignored).
-spec decode(Chain) -> {ok, Props :: term()} | error() when Chain :: [row()].
decode(Chain) ->
    case split_chain(Chain) of
        {ok, {?KEYFRAME, Key}, Deltas} ->
            from_etf(backup_nif:revision_reconstruct([Key | Deltas]));
        {ok, {?ERLANG, Data}, []} ->
            erlang_row(Data);
        {ok, {?ERLANG, Data}, Deltas} ->
            case erlang_row(Data) of
                {ok, Base} -> from_etf(backup_nif:revision_apply(term_to_binary(Base), Deltas));
                {error, _} = Error -> Error
            end;
        {error, _} = Error ->
            Error
    end.

%% @doc The revision at the end of Chain as a full row: what pruning writes over the oldest row
%% it keeps, so no delta is left without its base.
-spec rekey(Chain) -> {ok, row()} | error() when Chain :: [row()].
rekey(Chain) ->
    case split_chain(Chain) of
        {ok, {?KEYFRAME, Key}, []} ->
            {ok, {?KEYFRAME, Key}};
        {ok, {?KEYFRAME, Key}, Deltas} ->
            case backup_nif:revision_rekey([Key | Deltas]) of
                {ok, Blob} -> {ok, {?KEYFRAME, Blob}};
                {error, _} = Error -> Error
            end;
        {ok, _, _} ->
            case decode(Chain) of
                {ok, Props} -> encode_keyframe(Props);
                {error, _} = Error -> Error
            end;
        {error, _} = Error ->
            Error
    end.

%% @doc Per-property changes from PropsA to PropsB, sorted by key, with word-level changes of
%% texts; translated texts are compared per language.
-spec diff(PropsA, PropsB) -> {ok, [change()]} | error() when PropsA :: term(), PropsB :: term().
diff(PropsA, PropsB) ->
    backup_nif:revision_diff(term_to_binary(PropsA), term_to_binary(PropsB)).

%% ---------------------------------------------------------------------------------------------

%% The last full row and the delta blobs after it; every row after it must be a delta.
-spec split_chain([row()]) -> {ok, row(), [binary()]} | error().
split_chain(Chain) when is_list(Chain) ->
    split_chain(lists:reverse(Chain), []);
split_chain(_) ->
    bad_revision(<<"a revision chain must be a list of {DataType, Data} rows">>).

split_chain([], _Deltas) ->
    bad_revision(<<"no keyframe or erlang row before the deltas">>);
split_chain([{?DELTA, Blob} | Rest], Deltas) when is_binary(Blob) ->
    split_chain(Rest, [Blob | Deltas]);
split_chain([{Type, Data} = Row | _], Deltas) when is_binary(Data) ->
    case is_full(Type) of
        true -> {ok, Row, Deltas};
        false -> bad_revision(<<"unknown revision data_type: ", (type_text(Type))/binary>>)
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
