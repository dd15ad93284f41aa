%% @doc Replace or create a resource from an uploaded per-resource backup file (#rsc_upload{}):
%% `bert' files hold `[{Id, Props}]', `[Props]' or a property list; `json' files are a resource
%% as m_rsc_export writes it and go through m_rsc_import. Data that does not decode to one of
%% those shapes gives `{error, badarg}' and leaves every resource as it was.
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

-module(backup_rsc_upload).

-export([
    rsc_upload/2
]).

-include_lib("zotonic_core/include/zotonic.hrl").

%% @doc Import the uploaded data over the resource (or as a new one when id is undefined).
-spec rsc_upload(Upload, Context) -> {ok, m_rsc:resource_id()} | {error, term()} when
    Upload :: #rsc_upload{},
    Context :: z:context().
rsc_upload(#rsc_upload{ id = Id, format = bert, data = Data }, Context) when is_binary(Data) ->
    case bert_decode(Data) of
        {ok, [ {OtherId, Props} ]} when is_integer(OtherId), is_list(Props) ->
            upload_props(Id, Props, Context);
        {ok, [ {Key, _} | _ ] = Props} when is_atom(Key) ->
            upload_props(Id, Props, Context);
        {ok, [ Props ]} when is_map(Props) ->
            upload_props(Id, Props, Context);
        _ ->
            {error, badarg}
    end;
rsc_upload(#rsc_upload{ id = Id, format = json, data = Data }, Context) ->
    case json_decode(Data) of
        {ok, JSON} when is_map(JSON) ->
            case is_export(JSON) of
                true -> import_json(Id, JSON, Context);
                false -> {error, badarg}
            end;
        _ ->
            {error, badarg}
    end;
rsc_upload(#rsc_upload{}, _Context) ->
    {error, badarg}.

%% BERT is the external term format with a few tagged tuples; only terms of atoms the VM
%% knows are accepted (an upload cannot fill the atom table).
bert_decode(Data) ->
    try
        {ok, unbert(binary_to_term(Data, [ safe ]))}
    catch
        error:_ -> {error, badarg}
    end.

unbert({bert, nil}) -> [];
unbert({bert, true}) -> true;
unbert({bert, false}) -> false;
unbert({bert, dict, KVs}) when is_list(KVs) -> [ {unbert(K), unbert(V)} || {K, V} <- KVs ];
unbert({bert, time, Mega, Secs, Micro}) -> {Mega, Secs, Micro};
unbert(L) when is_list(L) -> unbert_list(L);
unbert(T) when is_tuple(T) -> list_to_tuple([ unbert(E) || E <- tuple_to_list(T) ]);
unbert(M) when is_map(M) -> maps:from_list([ {unbert(K), unbert(V)} || {K, V} <- maps:to_list(M) ]);
unbert(X) -> X.

%% Lists may be improper (strings are fine); keep them as they are then.
unbert_list(L) ->
    try
        [ unbert(E) || E <- L ]
    catch
        error:_ -> L
    end.

%% A resource as m_rsc_export writes it (possibly wrapped in an API result).
is_export(#{ <<"status">> := <<"ok">>, <<"result">> := JSON }) ->
    is_export(JSON);
is_export(#{ <<"resource">> := Rsc, <<"uri">> := Uri }) ->
    is_map(Rsc) andalso is_binary(Uri);
is_export(_) ->
    false.

import_json(Id, JSON, Context) ->
    case m_rsc_import:import(Id, JSON, [ is_authoritative ], Context) of
        {ok, {LocalId, _Mapping}} -> {ok, LocalId};
        {error, _} = Error -> Error
    end.

json_decode(Data) when is_map(Data) ->
    {ok, Data};
json_decode(Data) when is_binary(Data) ->
    try
        {ok, z_json:decode(Data)}
    catch
        _:_ -> {error, badarg}
    end;
json_decode(_) ->
    {error, badarg}.

upload_props(Id, Props, Context) ->
    case update_props(Props, Context) of
        {ok, UpdateProps} ->
            Options = [ {is_escape_texts, false}, is_import ],
            case m_rsc:rid(Id, Context) of
                undefined when Id =:= undefined ->
                    m_rsc_update:insert(UpdateProps, Options, Context);
                undefined ->
                    {error, enoent};
                RscId ->
                    m_rsc_update:update(RscId, UpdateProps, Options, Context)
            end;
        {error, _} = Error ->
            Error
    end.

%% The props an upload may set, with binary keys and the category mapped to a local one.
update_props(Props, Context) when is_list(Props) ->
    case lists:all(fun({K, _}) -> is_atom(K) orelse is_binary(K); (_) -> false end, Props) of
        true ->
            update_props(maps:from_list([ {z_convert:to_binary(K), V} || {K, V} <- Props ]), Context);
        false ->
            {error, badarg}
    end;
update_props(Props, Context) when is_map(Props) ->
    case lists:all(fun(K) -> is_atom(K) orelse is_binary(K) end, maps:keys(Props)) of
        true ->
            Bin = maps:fold(fun(K, V, Acc) -> Acc#{ z_convert:to_binary(K) => V } end, #{}, Props),
            Update = maps:filter(fun(K, _V) -> is_updateable(K) end, Bin),
            {ok, Update#{ <<"category">> => map_category(Bin, Context) }};
        false ->
            {error, badarg}
    end.

%% The first category of the upload's category path that exists here, else `other'.
map_category(#{ <<"computed_category">> := Path }, Context) when is_list(Path) ->
    Known = [ C || C <- Path, (is_atom(C) orelse is_binary(C)), C =/= undefined,
                   element(1, m_category:name_to_id(C, Context)) =:= ok ],
    case Known of
        [ Cat | _ ] -> Cat;
        [] -> other
    end;
map_category(_Props, _Context) ->
    other.

is_updateable(<<"id">>) -> false;
is_updateable(<<"category_id">>) -> false;
is_updateable(<<"category">>) -> false;
is_updateable(<<"version">>) -> false;
is_updateable(<<"medium">>) -> false;
is_updateable(<<"created">>) -> false;
is_updateable(<<"creator_id">>) -> false;
is_updateable(<<"modified">>) -> false;
is_updateable(<<"modifier_id">>) -> false;
is_updateable(<<"page_url">>) -> false;
is_updateable(<<"props">>) -> false;
is_updateable(<<"computed_", _/binary>>) -> false;
is_updateable(<<"pivot_", _/binary>>) -> false;
is_updateable(_) -> true.
