%% @doc zotonic_host: Zotonic's m_category lookups over the `$category' hierarchy.
%% @end

-module(m_category).

-export([name_to_id/2]).

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
