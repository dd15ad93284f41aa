%% @doc zotonic_host: the resource import of Zotonic's m_rsc_import (import/3,4) for a resource
%% export `#{ <<"uri">>, <<"resource">>, <<"is_a">> }' (as m_rsc_export writes it, e.g. in a
%% per-resource JSON backup). A URI of this site maps to the local resource; otherwise the
%% category is the most specific of `is_a' known here, the remote ids, version and creator/
%% modifier are dropped, ISO dates become datetimes, and the resource is inserted or (with a
%% local id) updated as an import. Not emulated: edges, media, the rsc_import table, options
%% other than is_authoritative (non-authoritative imports keep the uri).
%% @end

-module(m_rsc_import).

-export([import/3, import/4]).

% Called by the suites (or the demo) only, as Zotonic's own API would be.
-ignore_xref([import/3]).

-include_lib("zotonic_core/include/zotonic.hrl").

-type import_result() :: {ok, {m_rsc:resource_id(), #{ binary() => m_rsc:resource_id() }}} | {error, term()}.
-export_type([import_result/0]).

-define(DATES, [<<"created">>, <<"modified">>, <<"publication_start">>, <<"publication_end">>,
                <<"date_start">>, <<"date_end">>, <<"org_pubdate">>]).

-spec import(map(), list(), z:context()) -> import_result().
import(JSON, Options, Context) ->
    import(undefined, JSON, Options, Context).

-spec import(m_rsc:resource() | undefined, map(), list(), z:context()) -> import_result().
import(OptLocalId, #{ <<"status">> := <<"ok">>, <<"result">> := JSON }, Options, Context) ->
    import(OptLocalId, JSON, Options, Context);
import(OptLocalId, #{ <<"resource">> := Rsc, <<"uri">> := Uri } = JSON, Options, Context) when is_map(Rsc) ->
    case is_local(Uri, Context) of
        true ->
            case m_rsc:rid(lists:last(binary:split(Uri, <<"/">>, [global])), Context) of
                undefined -> {error, enoent};
                Id -> {ok, {Id, #{}}}
            end;
        false ->
            case category(maps:get(<<"is_a">>, JSON, []), Context) of
                undefined ->
                    {error, category};
                CatId ->
                    Props0 = maps:without([<<"id">>, <<"version">>, <<"creator_id">>, <<"modifier_id">>,
                                           <<"category_id">>, <<"content_group_id">>, <<"uri">>, <<"name">>], Rsc),
                    Props1 = maps:map(fun(K, V) -> date(K, V) end, Props0),
                    Props2 = case proplists:get_bool(is_authoritative, Options) of
                        true -> Props1;
                        false -> Props1#{ <<"uri">> => Uri, <<"is_authoritative">> => false }
                    end,
                    Props = Props2#{ <<"category_id">> => CatId },
                    Result = case m_rsc:rid(OptLocalId, Context) of
                        undefined -> m_rsc_update:insert(Props, [is_import, {is_escape_texts, false}], Context);
                        LocalId -> m_rsc_update:update(LocalId, Props, [is_import, {is_escape_texts, false}], Context)
                    end,
                    case Result of
                        {ok, Id} -> {ok, {Id, #{ Uri => Id }}};
                        {error, _} = Error -> Error
                    end
            end
    end;
import(_OptLocalId, _JSON, _Options, _Context) ->
    {error, status}.

is_local(Uri, #context{ site = Site }) ->
    Host = list_to_binary(atom_to_list(Site) ++ ".test/"),
    lists:any(fun(Prefix) -> binary:match(Uri, <<Prefix/binary, Host/binary>>) =:= {0, byte_size(Prefix) + byte_size(Host)} end,
              [<<"http://">>, <<"https://">>]).

category(IsA, Context) ->
    Known = [ Id || C <- IsA, {ok, Id} <- [m_category:name_to_id(C, Context)] ],
    case lists:reverse(Known) of
        [Id | _] -> Id;
        [] -> m_rsc:rid(other, Context)
    end.

date(K, V) when is_binary(V) ->
    case lists:member(K, ?DATES) of
        true -> try z_convert:to_datetime(V) catch _:_ -> V end;
        false -> V
    end;
date(_K, V) ->
    V.
