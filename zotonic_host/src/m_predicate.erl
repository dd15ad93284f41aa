%% @doc zotonic_host: Zotonic's m_predicate lookups (predicates are resources of category predicate).
%% @end

-module(m_predicate).

-export([name_to_id/2, id_to_name/2]).

-spec name_to_id(m_rsc:resource(), z:context()) -> {ok, m_rsc:resource_id()} | {error, term()}.
name_to_id(Pred, Context) ->
    case m_rsc:rid(Pred, Context) of
        undefined -> {error, {unknown_predicate, Pred}};
        Id ->
            case is_predicate(Id, Context) of
                true -> {ok, Id};
                false -> {error, {unknown_predicate, Pred}}
            end
    end.

-spec id_to_name(m_rsc:resource_id(), z:context()) -> {ok, atom()} | {error, term()}.
id_to_name(Id, Context) ->
    case z_db:q1("select name from rsc where id = $1", [Id], Context) of
        undefined -> {error, {unknown_predicate, Id}};
        Name -> {ok, binary_to_atom(Name, utf8)}
    end.

-spec is_predicate(m_rsc:resource(), z:context()) -> boolean().
is_predicate(Id, Context) ->
    m_rsc:is_a(Id, predicate, Context).
