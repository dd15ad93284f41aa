%% @doc zotonic_host: Zotonic's m_rsc_update -- insert, update and delete of resources with the
%% same notifications in the same order and with the same contents as Zotonic 1.0:
%% #rsc_insert{} (foldr over the initial props), #rsc_update{} (foldr over `{ok, UpdateProps}'
%% with the props before), then after the transaction #rsc_update_done{} (notify_sync) and the
%% MQTT event `model/rsc/event/<id>/<insert|update|delete>'; a delete records the resource in
%% rsc_gone, sends #rsc_delete{} inside its transaction and #rsc_update_done{action = delete,
%% pre_props = <props>, post_props = #{}} after it. An update that changes nothing is not saved
%% and sends nothing. Options: is_import (keep given created/modified/creator/modifier, no
%% touch), no_touch, is_acl_check, {is_escape_texts, _} (accepted; the host does not sanitize),
%% {expected, [{Key, Value}]}. Edges in props (`o'/`s' maps) are not handled by the host.
%% As Zotonic, it flushes the resource's id from the depcache once a change is committed (before
%% #rsc_update_done{}), and after an update refused on `expected'.
%% @end

-module(m_rsc_update).

-export([
    insert/2,
    insert/3,
    update/3,
    update/4,
    delete/2,
    delete/3
]).

% Called by the suites (or the demo) only, as Zotonic's own API would be.
-ignore_xref([delete/3]).

-include_lib("zotonic_core/include/zotonic.hrl").

-define(COLUMNS, [
    <<"uri">>, <<"name">>, <<"is_authoritative">>, <<"is_published">>, <<"is_featured">>,
    <<"is_protected">>, <<"is_dependent">>, <<"is_unfindable">>, <<"publication_start">>,
    <<"publication_end">>, <<"content_group_id">>, <<"creator_id">>, <<"modifier_id">>,
    <<"version">>, <<"category_id">>, <<"visible_for">>, <<"language">>, <<"slug">>,
    <<"created">>, <<"modified">>
]).

-spec insert(m_rsc:props() | list(), z:context()) -> {ok, m_rsc:resource_id()} | {error, term()}.
insert(Props, Context) ->
    insert(Props, [], Context).

-spec insert(m_rsc:props() | list(), list(), z:context()) -> {ok, m_rsc:resource_id()} | {error, term()}.
insert(Props, Options, Context) ->
    update(insert_rsc, Props, Options, Context).

-spec update(m_rsc:resource() | insert_rsc, m_rsc:props() | list(), z:context()) ->
    {ok, m_rsc:resource_id()} | {error, term()}.
update(Id, Props, Context) ->
    update(Id, Props, [], Context).

%% @doc Update (or with `insert_rsc' insert) a resource.
-spec update(Id, Props, Options, Context) -> {ok, m_rsc:resource_id()} | {error, term()} when
    Id :: m_rsc:resource() | insert_rsc,
    Props :: m_rsc:props() | list(),
    Options :: list(),
    Context :: z:context().
update(Id, Props, Options, Context) when is_list(Props) ->
    update(Id, maps:from_list([ {z_convert:to_binary(K), V} || {K, V} <- Props ]), Options, Context);
update(insert_rsc, Props, Options, Context) ->
    do_update(insert_rsc, binary_keys(Props), Options, Context);
update(Id, Props, Options, Context) ->
    case m_rsc:rid(Id, Context) of
        undefined -> {error, enoent};
        Rid ->
            case m_rsc:exists(Rid, Context) of
                true ->
                    do_update(Rid, binary_keys(Props), Options, Context);
                false when is_integer(Rid) ->
                    case proplists:get_bool(is_import, Options) of
                        true -> import_insert(Rid, binary_keys(Props), Options, Context);
                        false -> {error, enoent}
                    end;
                false ->
                    {error, enoent}
            end
    end.

%% As Zotonic: an import over an id that does not exist (any more) first creates a bare
%% resource with that id (category `other', unpublished), then updates it.
import_insert(Id, Props, Options, Context) ->
    1 = z_db:q("insert into rsc (id, creator_id, is_published, category_id) values ($1, $2, false, $3)",
               [Id, z_acl:user(Context), m_rsc:rid(other, Context)], Context),
    % The existence check above cached the id as missing.
    ok = z_depcache:flush(Id, Context),
    do_update(Id, Props, Options, Context).

binary_keys(Props) ->
    maps:fold(fun(K, V, Acc) -> Acc#{ z_convert:to_binary(K) => V } end, #{}, Props).

do_update(Id, Props0, Options, Context) ->
    IsImport = proplists:get_bool(is_import, Options),
    IsNoTouch = proplists:get_bool(no_touch, Options),
    IsAclCheck = proplists:get_value(is_acl_check, Options, true),
    Props = normalize(filter_protected(Props0, IsImport), Context),
    Allowed = (not IsAclCheck) orelse case Id of
        insert_rsc ->
            z_acl:is_allowed(insert, #acl_rsc{ id = undefined, category = category_name(Props, Context), props = Props }, Context);
        _ ->
            z_acl:rsc_editable(Id, Context)
    end,
    case Allowed of
        false ->
            {error, eacces};
        true ->
            F = fun(Ctx) -> transaction_update(Id, Props, Options, IsImport orelse IsNoTouch, Ctx) end,
            case z_db:transaction(F, Context) of
                {ok, NewId, notchanged} ->
                    {ok, NewId};
                {ok, NewId, {PreProps, PostProps, PreIsA}} ->
                    ok = z_depcache:flush(NewId, Context),
                    PostIsA = m_rsc:is_a(NewId, Context),
                    Action = case Id of insert_rsc -> insert; _ -> update end,
                    z_notifier:notify_sync(
                        #rsc_update_done{
                            action = Action,
                            id = NewId,
                            pre_is_a = PreIsA,
                            post_is_a = PostIsA,
                            pre_props = PreProps,
                            post_props = PostProps
                        },
                        Context),
                    z_mqtt:publish(
                        [<<"model">>, <<"rsc">>, <<"event">>, NewId, atom_to_binary(Action, utf8)],
                        #{ id => NewId, pre_is_a => PreIsA, post_is_a => PostIsA },
                        Context),
                    {ok, NewId};
                {error, {expected, _, _}} = Error ->
                    % The caller may have judged by a stale cached resource.
                    ok = z_depcache:flush(Id, Context),
                    Error;
                {error, _} = Error ->
                    Error;
                {rollback, {{error, _} = Error, _}} ->
                    Error;
                {rollback, Reason} ->
                    {error, Reason}
            end
    end.

transaction_update(insert_rsc, Props, Options, IsNoTouch, Context) ->
    CategoryId = maps:get(<<"category_id">>, Props, m_rsc:rid(other, Context)),
    InitProps0 = #{
        <<"version">> => 0,
        <<"category_id">> => CategoryId,
        <<"content_group_id">> => maps:get(<<"content_group_id">>, Props, undefined),
        <<"is_published">> => false,
        <<"publication_start">> => undefined
    },
    InsProps = z_notifier:foldr(#rsc_insert{ props = Props }, InitProps0, Context),
    CreatorId = case maps:get(<<"creator_id">>, Props, undefined) of
        C when is_integer(C) -> C;
        _ -> z_acl:user(Context)
    end,
    NewId = z_db:q1("insert into rsc (version, category_id, content_group_id, is_published, creator_id)
                     values (0, $1, $2, false, $3) returning id",
                    [maps:get(<<"category_id">>, InsProps), maps:get(<<"content_group_id">>, InsProps),
                     CreatorId], Context),
    Props1 = maps:merge(Props, maps:without([<<"version">>, <<"creator_id">>, <<"is_published">>,
                                             <<"publication_start">>], InsProps)),
    apply_update(NewId, insert, Props1, InsProps, [], Options, IsNoTouch, Context);
transaction_update(Id, Props, Options, IsNoTouch, Context) ->
    {ok, Raw} = m_rsc:get_raw_lock(Id, Context),
    case check_expected(Raw, proplists:get_value(expected, Options, [])) of
        ok ->
            apply_update(Id, update, Props, Raw, m_rsc:is_a(Id, Context), Options, IsNoTouch, Context);
        {error, _} = Error ->
            {rollback, Error}
    end.

check_expected(_Raw, []) -> ok;
check_expected(Raw, [{K, V} | Rest]) ->
    case maps:get(z_convert:to_binary(K), Raw, undefined) of
        V -> check_expected(Raw, Rest);
        Other -> {error, {expected, K, Other}}
    end.

apply_update(Id, Action, Props, Raw, PreIsA, _Options, IsNoTouch, Context) ->
    Version = maps:get(<<"version">>, Raw, 0),
    Touch = case IsNoTouch of
        true -> #{};
        false -> #{ <<"modified">> => calendar:universal_time(), <<"modifier_id">> => z_acl:user(Context) }
    end,
    UpdateProps = maps:merge(maps:merge(Props, Touch), #{ <<"version">> => Version + 1 }),
    case z_notifier:foldr(#rsc_update{ action = Action, id = Id, props = Raw }, {ok, UpdateProps}, Context) of
        {ok, UpdateProps1} ->
            New0 = maps:merge(Raw, UpdateProps1),
            New1 = case maps:get(<<"language">>, New0, []) of
                [] -> New0#{ <<"language">> => [z_context:language(Context)] };
                _ -> New0
            end,
            New2 = case maps:get(<<"tz">>, New1, undefined) of
                undefined -> New1#{ <<"tz">> => <<"UTC">> };
                _ -> New1
            end,
            New3 = case {maps:get(<<"is_published">>, New2, false), maps:get(<<"publication_start">>, New2, undefined)} of
                {true, undefined} -> New2#{ <<"publication_start">> => calendar:universal_time() };
                _ -> New2
            end,
            NewProps = maps:filter(fun(_, V) -> V =/= undefined end, New3#{ <<"id">> => Id }),
            Compare = fun(M) -> maps:without([<<"version">>, <<"modified">>, <<"modifier_id">>], M) end,
            case Action =:= insert orelse Compare(NewProps) =/= Compare(maps:filter(fun(_, V) -> V =/= undefined end, Raw)) of
                true ->
                    ok = write_row(Id, UpdateProps1, NewProps, Context),
                    {ok, Id, {Raw, NewProps, PreIsA}};
                false ->
                    {ok, Id, notchanged}
            end;
        {error, _} = Error ->
            {rollback, Error}
    end.

%% Write the columns the update sets (as z_db:update/4) and the whole props column.
write_row(Id, UpdateProps, Props, Context) ->
    Set = maps:merge(maps:with([<<"language">>, <<"publication_start">>], Props), UpdateProps),
    Cols = [ C || C <- ?COLUMNS, maps:is_key(C, Set) ],
    Extra = maps:without([<<"id">> | ?COLUMNS], Props),
    Values = [ column_value(C, maps:get(C, Set)) || C <- Cols ],
    Title = title(maps:get(<<"title">>, Props, undefined)),
    Sets = [ [$", C, "\" = $", integer_to_binary(N + 3)] || {C, N} <- lists:zip(Cols, lists:seq(1, length(Cols))) ],
    Sql = ["update rsc set props = $2, pivot_title = $3",
           [ [", ", S] || S <- Sets ],
           ", pivot_category_nr = (select nr from hierarchy where name = '$category' and id = rsc.category_id)",
           " where id = $1"],
    {ok, 1} = z_db:equery(Sql, [Id, ?DB_PROPS(Extra), Title | Values], Context),
    ok.

column_value(_, undefined) -> undefined;
column_value(<<"language">>, Langs) when is_list(Langs) -> [ z_convert:to_binary(L) || L <- Langs ];
column_value(<<"is_", _/binary>>, V) -> z_convert:to_bool(V);
column_value(_, V) -> V.

title(undefined) -> undefined;
title(#trans{ tr = [{_, T} | _] }) -> truncate(T);
title(T) when is_binary(T) -> truncate(T);
title(_) -> undefined.

truncate(T) when byte_size(T) > 100 -> string:slice(T, 0, 100);
truncate(T) -> T.

%% Protected props are only taken from an import.
filter_protected(Props, true) ->
    maps:without([<<"id">>, <<"version">>], Props);
filter_protected(Props, false) ->
    maps:without([<<"id">>, <<"version">>, <<"created">>, <<"modified">>, <<"modifier_id">>], Props).

normalize(Props, Context) ->
    P1 = case maps:take(<<"category">>, Props) of
        {Cat, P} -> P#{ <<"category_id">> => m_rsc:rid(Cat, Context) };
        error -> Props
    end,
    case maps:get(<<"category_id">>, P1, undefined) of
        undefined -> P1;
        CatId when is_integer(CatId) -> P1;
        CatName -> P1#{ <<"category_id">> => m_rsc:rid(CatName, Context) }
    end.

category_name(Props, Context) ->
    case maps:get(<<"category_id">>, Props, undefined) of
        undefined -> other;
        CatId -> z_convert:to_atom(z_db:q1("select name from rsc where id = $1", [CatId], Context))
    end.

%% ---------------------------------------------------------------------------------------------
%% Delete

-spec delete(m_rsc:resource(), z:context()) -> ok | {error, term()}.
delete(Id, Context) ->
    delete(Id, undefined, Context).

%% @doc Delete a resource (not the admin), if the context may.
-spec delete(m_rsc:resource(), m_rsc:resource_id() | undefined, z:context()) -> ok | {error, term()}.
delete(Id, FollowUpId, Context) ->
    case m_rsc:rid(Id, Context) of
        undefined -> {error, enoent};
        1 -> {error, eacces};
        Rid ->
            case z_acl:rsc_deletable(Rid, Context) of
                true -> delete_nocheck(Rid, FollowUpId, Context);
                false -> {error, eacces}
            end
    end.

delete_nocheck(1, _FollowUpId, _Context) ->
    {error, eacces};
delete_nocheck(Id, FollowUpId, Context) when is_integer(Id) ->
    CatList = m_rsc:is_a(Id, Context),
    {ok, Props} = m_rsc:get_raw(Id, Context),
    _ = m_rsc_gone:gone(Id, FollowUpId, Context),
    F = fun(Ctx) ->
        z_notifier:notify_sync(#rsc_delete{ id = Id, is_a = CatList }, Ctx),
        z_db:delete(rsc, Id, Ctx)
    end,
    case z_db:transaction(F, Context) of
        {ok, _} ->
            ok = z_depcache:flush(Id, Context),
            z_notifier:notify_sync(
                #rsc_update_done{
                    action = delete,
                    id = Id,
                    pre_is_a = CatList,
                    post_is_a = [],
                    pre_props = Props,
                    post_props = #{}
                },
                Context),
            z_mqtt:publish([<<"model">>, <<"rsc">>, <<"event">>, Id, <<"delete">>],
                           #{ id => Id, pre_is_a => CatList }, Context),
            z_edge_log_server:check(Context),
            ok;
        {error, _} = Error ->
            Error;
        {rollback, Reason} ->
            {error, Reason}
    end.
