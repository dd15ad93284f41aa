%% @doc zotonic_host: Zotonic's m_rsc read side. A resource is a row of `rsc': its columns plus
%% the map in its `props' column (stored with ?DB_PROPS), returned as one map with binary keys,
%% `language' as atoms, pivot columns left out -- as m_rsc:get/2 of Zotonic 1.0 returns it.
%% As in Zotonic, get/2, p/3, p_no_acl/3 and exists/2 read the resource from the site's
%% depcache (keyed on its id, for a week, after the #rsc_get{} fold), and get_raw/2 and
%% get_raw_lock/2 from the database; writes go through m_rsc_update, which flushes the id after
%% each committed change, as touch/2 does.
%% @end

-module(m_rsc).

-export([
    rid/2,
    exists/2,
    get/2,
    get_raw/2,
    get_raw_lock/2,
    p/3,
    p_no_acl/3,
    is_a/2,
    is_a/3,
    insert/2,
    insert/3,
    update/3,
    update/4,
    delete/2,
    touch/2
]).

% Zotonic's API as Zotonic exports it (or called by name: supervisors, observers); nothing
% here calls it directly.
-ignore_xref([delete/2, insert/2, insert/3, update/3, update/4]).

-include_lib("zotonic_core/include/zotonic.hrl").

-type resource_id() :: pos_integer().
-type resource() :: resource_id() | atom() | binary() | string() | undefined.
-type props() :: #{ binary() => term() }.
-export_type([resource_id/0, resource/0, props/0]).

%% @doc The id of a resource given as id, name (atom, binary or string) or numeric string.
-spec rid(resource() | map(), z:context()) -> resource_id() | undefined.
rid(Id, _Context) when is_integer(Id) -> Id;
rid(undefined, _Context) -> undefined;
rid(<<>>, _Context) -> undefined;
rid([], _Context) -> undefined;
rid(#{ <<"id">> := Id }, Context) -> rid(Id, Context);
rid(Name, Context) when is_atom(Name) -> rid(atom_to_binary(Name, utf8), Context);
rid(Name, Context) when is_list(Name) -> rid(unicode:characters_to_binary(Name), Context);
rid(Name, Context) when is_binary(Name) ->
    case string:to_integer(Name) of
        {Int, <<>>} -> Int;
        _ ->
            z_db:q1("select id from rsc where name = $1", [string:lowercase(Name)], Context)
    end;
rid(_, _Context) -> undefined.

%% @doc Does the resource exist? As in Zotonic: its id read through the cache.
-spec exists(resource(), z:context()) -> boolean().
exists(Id, Context) ->
    case rid(Id, Context) of
        undefined -> false;
        Rid -> p_no_acl(Rid, <<"id">>, Context) =:= Rid
    end.

%% @doc The resource's properties if the context may view it, else undefined.
-spec get(resource(), z:context()) -> props() | undefined.
get(Id, Context) ->
    case rid(Id, Context) of
        undefined -> undefined;
        Rid ->
            case z_acl:rsc_visible(Rid, Context) of
                true -> get_cached_unsafe(Rid, Context);
                false -> undefined
            end
    end.

%% The resource for any user (no ACL), from the depcache, else read and folded through
%% #rsc_get{} and cached under its id for a week -- also `undefined' for a missing resource,
%% as Zotonic's get_cached_unsafe/2. A database error crashes and is not cached.
get_cached_unsafe(Rid, Context) ->
    z_depcache:memo(
        fun() ->
            case get_raw(Rid, Context) of
                {ok, Map} -> z_notifier:foldr(#rsc_get{ id = Rid }, Map, Context);
                {error, enoent} -> undefined
            end
        end,
        Rid,
        ?WEEK,
        Context).

%% @doc All properties from the database (not the cache), without ACL checks.
-spec get_raw(resource(), z:context()) -> {ok, props()} | {error, enoent}.
get_raw(Id, Context) ->
    get_raw(Id, false, Context).

%% @doc As get_raw/2, locking the row (inside a transaction).
-spec get_raw_lock(resource(), z:context()) -> {ok, props()} | {error, enoent}.
get_raw_lock(Id, Context) ->
    get_raw(Id, true, Context).

get_raw(Id, IsLock, Context) ->
    case rid(Id, Context) of
        undefined -> {error, enoent};
        Rid ->
            Cols = [ C || C <- z_db:column_names_bin(rsc, Context), not is_pivot(C) ],
            Sql = ["select ", lists:join($,, [ [$", C, $"] || C <- Cols ]), " from rsc where id = $1",
                   case IsLock of true -> " for update"; false -> "" end],
            case z_db:qmap_props_row(Sql, [Rid], Context) of
                {ok, Map} -> {ok, language_atoms(Map)};
                {error, _} -> {error, enoent}
            end
    end.

is_pivot(<<"pivot_", _/binary>>) -> true;
is_pivot(_) -> false.

language_atoms(#{ <<"language">> := Langs } = Map) when is_list(Langs) ->
    Map#{ <<"language">> => [ binary_to_atom(L, utf8) || L <- Langs, is_binary(L) ] };
language_atoms(Map) ->
    Map#{ <<"language">> => [] }.

%% @doc A property of a visible resource.
-spec p(resource(), atom() | binary(), z:context()) -> term() | undefined.
p(Id, Prop, Context) ->
    case get(Id, Context) of
        undefined -> undefined;
        Map -> prop(Prop, Map, Context)
    end.

%% @doc A property, without ACL checks (from the cached resource).
-spec p_no_acl(resource(), atom() | binary(), z:context()) -> term() | undefined.
p_no_acl(Id, Prop, Context) ->
    case rid(Id, Context) of
        undefined ->
            undefined;
        Rid ->
            case get_cached_unsafe(Rid, Context) of
                undefined -> undefined;
                Map -> prop(Prop, Map, Context)
            end
    end.

prop(Prop, Map, Context) ->
    case z_convert:to_binary(Prop) of
        <<"category">> -> hd(lists:reverse(is_a_cat(maps:get(<<"category_id">>, Map), Context)));
        <<"is_a">> -> is_a_cat(maps:get(<<"category_id">>, Map), Context);
        P -> maps:get(P, Map, undefined)
    end.

%% @doc The category path of the resource, root first: e.g. [text, article].
-spec is_a(resource(), z:context()) -> [atom()].
is_a(Id, Context) ->
    case rid(Id, Context) of
        undefined -> [];
        Rid ->
            case z_db:q1("select category_id from rsc where id = $1", [Rid], Context) of
                undefined -> [];
                CatId -> is_a_cat(CatId, Context)
            end
    end.

-spec is_a(resource(), atom(), z:context()) -> boolean().
is_a(Id, Cat, Context) ->
    lists:member(z_convert:to_atom(Cat), is_a(Id, Context)).

is_a_cat(CatId, Context) ->
    is_a_cat(CatId, Context, []).

is_a_cat(undefined, _Context, Acc) -> Acc;
is_a_cat(CatId, Context, Acc) ->
    case z_db:q_row("select r.name, h.parent_id from hierarchy h join rsc r on r.id = h.id
                     where h.name = '$category' and h.id = $1", [CatId], Context) of
        {Name, Parent} -> is_a_cat(Parent, Context, [binary_to_atom(Name, utf8) | Acc]);
        undefined -> Acc
    end.

-spec insert(props() | list(), z:context()) -> {ok, resource_id()} | {error, term()}.
insert(Props, Context) -> m_rsc_update:insert(Props, Context).

-spec insert(props() | list(), list(), z:context()) -> {ok, resource_id()} | {error, term()}.
insert(Props, Options, Context) -> m_rsc_update:insert(Props, Options, Context).

-spec update(resource(), props() | list(), z:context()) -> {ok, resource_id()} | {error, term()}.
update(Id, Props, Context) -> m_rsc_update:update(Id, Props, Context).

-spec update(resource(), props() | list(), list(), z:context()) -> {ok, resource_id()} | {error, term()}.
update(Id, Props, Options, Context) -> m_rsc_update:update(Id, Props, Options, Context).

-spec delete(resource(), z:context()) -> ok | {error, term()}.
delete(Id, Context) -> m_rsc_update:delete(Id, Context).

%% @doc Set the modification date and modifier, bump the version; flush the cached resource.
-spec touch(resource(), z:context()) -> {ok, resource_id()} | {error, term()}.
touch(Id, Context) ->
    case rid(Id, Context) of
        undefined -> {error, enoent};
        Rid ->
            1 = z_db:q("update rsc set modified = now(), modifier_id = $2, version = version + 1 where id = $1",
                       [Rid, z_acl:user(Context)], Context),
            ok = z_depcache:flush(Rid, Context),
            {ok, Rid}
    end.
