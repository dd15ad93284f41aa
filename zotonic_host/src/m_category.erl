%% @doc zotonic_host: Zotonic's m_category lookups over the `$category' hierarchy.
%% @end

-module(m_category).

-export([name_to_id/2, id_to_name/2, is_a/2]).

% Zotonic's API as Zotonic exports it (or called by name: supervisors, observers); nothing
% here calls it directly.
-ignore_xref([id_to_name/2, is_a/2]).

-spec name_to_id(m_rsc:resource(), z:context()) -> {ok, m_rsc:resource_id()} | {error, {unknown_category, term()}}.
name_to_id(Name, Context) ->
    case m_rsc:rid(Name, Context) of
        undefined -> {error, {unknown_category, Name}};
        Id ->
            case z_db:q1("select count(*) from hierarchy where name = '$category' and id = $1", [Id], Context) of
                1 -> {ok, Id};
                _ -> {error, {unknown_category, Name}}
            end
    end.

-spec id_to_name(m_rsc:resource_id(), z:context()) -> atom() | undefined.
id_to_name(Id, Context) ->
    z_convert:to_atom(z_db:q1("select name from rsc where id = $1", [Id], Context)).

%% @doc The path of a category, root first: is_a(article) = [text, article].
-spec is_a(m_rsc:resource(), z:context()) -> [atom()].
is_a(Cat, Context) ->
    case name_to_id(Cat, Context) of
        {ok, Id} -> path(Id, Context, []);
        {error, _} -> []
    end.

path(undefined, _Context, Acc) -> Acc;
path(Id, Context, Acc) ->
    {N, P} = z_db:q_row("select r.name, h.parent_id from hierarchy h join rsc r on r.id = h.id
                         where h.name = '$category' and h.id = $1", [Id], Context),
    path(P, Context, [binary_to_atom(N, utf8) | Acc]).
