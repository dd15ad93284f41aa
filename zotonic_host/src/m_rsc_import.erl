%% @doc zotonic_host: the part of Zotonic's m_rsc_import that mod_backup calls --
%% import/4 of one exported resource (m_rsc_export's JSON: `uri', `resource', `is_a', optionally
%% wrapped in `status'/`result') over a given local id or as a new resource. The host imports
%% the resource props only, with the category from `is_a' (the most specific one that exists
%% here, else `other'); edges, media and uri mapping of Zotonic's importer are not emulated.
%% @end

-module(m_rsc_import).

-export([import/4]).

-include_lib("zotonic_core/include/zotonic.hrl").

-type import_result() :: {ok, {m_rsc:resource_id(), #{ binary() => m_rsc:resource_id() }}}
                       | {error, term()}.
-export_type([import_result/0]).

%% @doc Import a resource, overwriting OptLocalId when given.
-spec import(OptLocalId, JSON, Options, Context) -> import_result() when
    OptLocalId :: m_rsc:resource() | undefined,
    JSON :: map(),
    Options :: list(),
    Context :: z:context().
import(OptLocalId, #{ <<"status">> := <<"ok">>, <<"result">> := JSON }, Options, Context) ->
    import(OptLocalId, JSON, Options, Context);
import(OptLocalId, #{ <<"resource">> := Rsc, <<"uri">> := Uri } = JSON, _Options, Context) when is_map(Rsc) ->
    Props = maps:without([<<"id">>, <<"category_id">>, <<"version">>, <<"uri">>], Rsc),
    Props1 = Props#{ <<"category">> => category(maps:get(<<"is_a">>, JSON, []), Context) },
    Result = case m_rsc:rid(OptLocalId, Context) of
        undefined -> m_rsc_update:insert(Props1, [is_import], Context);
        Id -> m_rsc_update:update(Id, Props1, [is_import], Context)
    end,
    case Result of
        {ok, LocalId} -> {ok, {LocalId, #{ z_convert:to_binary(Uri) => LocalId }}};
        {error, _} = Error -> Error
    end;
import(_OptLocalId, _JSON, _Options, _Context) ->
    {error, badarg}.

category(IsA, Context) when is_list(IsA) ->
    Known = [ C || C <- IsA, is_binary(C), element(1, m_category:name_to_id(C, Context)) =:= ok ],
    case lists:reverse(Known) of
        [ Cat | _ ] -> Cat;
        [] -> <<"other">>
    end;
category(_, _Context) ->
    <<"other">>.
