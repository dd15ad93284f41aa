%% @doc zotonic_host: Zotonic's m_media for medium records. get/2 returns the `medium' row with
%% its props merged (binary keys); replace/3, delete/2 and recover_medium/2 write the row and
%% send #media_update_done{} (notify, after commit) with the same contents as Zotonic, plus
%% #media_replace_file{} and the MQTT media events. Files are not processed: a medium's
%% `filename' is relative to the site's files/archive dir, as in Zotonic.
%% @end

-module(m_media).

-export([
    get/2,
    replace/3,
    delete/2,
    recover_medium/2
]).

-include_lib("zotonic_core/include/zotonic.hrl").

-spec get(m_rsc:resource() | undefined, z:context()) -> map() | undefined.
get(undefined, _Context) ->
    undefined;
get(Id, Context) ->
    case m_rsc:rid(Id, Context) of
        undefined -> undefined;
        Rid ->
            case z_db:qmap_props_row("select * from medium where id = $1", [Rid], [{keys, binary}], Context) of
                {ok, Map} -> Map;
                {error, _} -> undefined
            end
    end.

%% @doc Replace (or insert) the medium record of a resource.
-spec replace(m_rsc:resource_id(), map() | list(), z:context()) -> ok | {error, term()}.
replace(Id, MediaProps, Context) when is_list(MediaProps) ->
    replace(Id, maps:from_list([ {z_convert:to_binary(K), V} || {K, V} <- MediaProps ]), Context);
replace(Id, MediaProps, Context) ->
    Mime = maps:get(<<"mime">>, MediaProps, undefined),
    Size = maps:get(<<"size">>, MediaProps, 1),
    case z_acl:rsc_editable(Id, Context)
        andalso z_acl:is_allowed(insert, #acl_media{ mime = Mime, size = Size }, Context)
    of
        true ->
            F = fun(Ctx) ->
                {ok, _} = medium_delete(Id, Ctx),
                medium_insert(Id, MediaProps#{ <<"id">> => Id }, Ctx)
            end,
            case z_db:transaction(F, Context) of
                {ok, _} ->
                    Medium = get(Id, Context),
                    z_notifier:notify(#media_replace_file{ id = Id, medium = Medium }, Context),
                    z_mqtt:publish([<<"model">>, <<"media">>, <<"event">>, Id, <<"update">>], #{ id => Id }, Context),
                    ok;
                {rollback, {Error, _Trace}} ->
                    {error, Error};
                {error, _} = Error ->
                    Error
            end;
        false ->
            {error, eacces}
    end.

%% @doc Delete the medium record of a resource.
-spec delete(m_rsc:resource_id(), z:context()) -> ok | {error, term()}.
delete(Id, Context) ->
    case z_acl:rsc_editable(Id, Context) of
        true ->
            {ok, _} = medium_delete(Id, Context),
            _ = m_rsc:touch(Id, Context),
            z_notifier:notify(#media_replace_file{ id = Id, medium = undefined }, Context),
            z_mqtt:publish([<<"model">>, <<"media">>, <<"event">>, Id, <<"delete">>], #{ id => Id }, Context),
            ok;
        false ->
            {error, eacces}
    end.

%% @doc Put back a medium record saved earlier (a map as get/2 returns it).
-spec recover_medium(map(), z:context()) -> ok | {error, term()}.
recover_medium(#{ <<"id">> := RscId } = Medium, Context) ->
    case z_db:q1("select count(*) from medium where id = $1", [RscId], Context) of
        1 -> ok = delete(RscId, Context);
        0 -> ok
    end,
    case medium_insert(RscId, Medium#{ <<"created">> => calendar:universal_time() }, Context) of
        {ok, _} -> ok;
        {error, _} = Error -> Error
    end.

medium_insert(Id, Props, Context) ->
    IsA = m_rsc:is_a(Id, Context),
    case z_db:insert(medium, Props#{ <<"id">> => Id, <<"created">> => calendar:universal_time() }, Context) of
        {ok, _} ->
            z_notifier:notify(
                #media_update_done{
                    action = insert,
                    id = Id,
                    pre_is_a = [],
                    post_is_a = IsA,
                    pre_props = #{},
                    post_props = get(Id, Context)
                },
                Context),
            {ok, Id};
        {error, _} = Error ->
            Error
    end.

medium_delete(Id, Context) ->
    case get(Id, Context) of
        undefined ->
            {ok, 0};
        Props ->
            IsA = m_rsc:is_a(Id, Context),
            case z_db:delete(medium, Id, Context) of
                {ok, _} = OK ->
                    z_notifier:notify(
                        #media_update_done{
                            action = delete,
                            id = Id,
                            pre_is_a = IsA,
                            post_is_a = [],
                            pre_props = Props,
                            post_props = #{}
                        },
                        Context),
                    OK;
                {error, _} = Error ->
                    Error
            end
    end.
