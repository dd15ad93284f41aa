%% @doc zotonic_host: the parts of Zotonic's z_context that modules use -- creating a site
%% context, its site, metadata (get/set), query arguments (get_q/set_q), logger metadata,
%% the database driver and the response-header helpers (no-ops without a request).
%% @end

-module(z_context).

-export([
    new/1,
    new/2,
    site/1,
    get/2,
    set/2,
    set/3,
    get_q/2,
    get_q/3,
    get_q_validated/2,
    set_q/3,
    logger_md/1,
    language/1,
    prune_for_spawn/1,
    set_nocache_headers/1,
    set_noindex_header/1,
    set_noindex_header/2,
    output/2
]).

% Called by the suites (or the demo) only, as Zotonic's own API would be.
-ignore_xref([get_q/3, new/2, set_noindex_header/2, set_q/3]).

-include_lib("zotonic_core/include/zotonic.hrl").

%% @doc A fresh anonymous context for the site (or for the site of the given context).
-spec new(z:context() | atom()) -> z:context().
new(#context{ site = Site }) ->
    new(Site);
new(Site) when is_atom(Site) ->
    #context{
        site = Site,
        db = {zotonic_host_db_pool:name(Site), z_db_pgsql},
        depcache = z_utils:name_for_site(z_depcache, Site),
        dispatcher = undefined,
        template_server = undefined,
        scomp_server = undefined,
        dropbox_server = undefined,
        pivot_server = undefined,
        module_indexer = undefined,
        translation_table = undefined
    }.

-spec new(atom(), atom() | [atom()]) -> z:context().
new(Site, Language) when is_atom(Language) -> new(Site, [Language]);
new(Site, Languages) -> (new(Site))#context{ language = Languages }.

-spec site(z:context()) -> atom().
site(#context{ site = Site }) -> Site.

-spec get(atom(), z:context()) -> term() | undefined.
get(Key, Context) -> get(Key, Context, undefined).

-spec get(atom(), z:context(), term()) -> term().
get(Key, #context{ props = Props }, Default) -> maps:get(Key, Props, Default).

-spec set(atom(), term(), z:context()) -> z:context().
set(Key, Value, #context{ props = Props } = Context) -> Context#context{ props = Props#{ Key => Value } }.

-spec set(proplists:proplist(), z:context()) -> z:context().
set(List, Context) -> lists:foldl(fun({K, V}, Ctx) -> set(K, V, Ctx) end, Context, List).

%% @doc A query argument (binary keys, as Zotonic stores them).
-spec get_q(atom() | binary() | string(), z:context()) -> term() | undefined.
get_q(Key, Context) -> get_q(Key, Context, undefined).

-spec get_q(atom() | binary() | string(), z:context(), term()) -> term().
get_q(Key, Context, Default) ->
    case lists:keyfind(z_convert:to_binary(Key), 1, get_q_all(Context)) of
        {_, V} -> V;
        false -> Default
    end.

-spec get_q_all(z:context()) -> [{binary(), term()}].
get_q_all(Context) -> get(q, Context, []).

-spec get_q_validated(atom() | binary() | string(), z:context()) -> term() | undefined.
get_q_validated(Key, Context) ->
    case get(q_validated, Context) of
        #{} = V -> maps:get(z_convert:to_binary(Key), V, get_q(Key, Context));
        _ -> get_q(Key, Context)
    end.

%% @doc Set a query argument (tests use it to play a request's arguments).
-spec set_q(atom() | binary() | string(), term(), z:context()) -> z:context().
set_q(Key, Value, Context) ->
    K = z_convert:to_binary(Key),
    set(q, [{K, Value} | lists:keydelete(K, 1, get_q_all(Context))], Context).

-spec logger_md(z:context() | atom()) -> ok.
logger_md(#context{ site = Site, user_id = UserId }) ->
    logger:update_process_metadata(#{ site => Site, user_id => UserId });
logger_md(Site) when is_atom(Site) ->
    logger:update_process_metadata(#{ site => Site }).

-spec language(z:context()) -> atom().
language(#context{ language = [Lang | _] }) -> Lang;
language(_) -> en.

-spec prune_for_spawn(z:context()) -> z:context().
prune_for_spawn(Context) -> Context#context{ dbc = undefined, cowreq = undefined, render_state = undefined }.

-spec set_nocache_headers(z:context()) -> z:context().
set_nocache_headers(Context) -> set(zotonic_host_nocache, true, Context).

-spec set_noindex_header(z:context()) -> z:context().
set_noindex_header(Context) -> set_noindex_header(true, Context).

-spec set_noindex_header(boolean(), z:context()) -> z:context().
set_noindex_header(IsNoIndex, Context) -> set(zotonic_host_noindex, IsNoIndex, Context).

%% @doc Zotonic renders the mixed HTML of a controller; the host flattens binaries/iolists and
%% records everything else in the render log.
-spec output(term(), z:context()) -> {iolist(), z:context()}.
output(Html, Context) ->
    try
        {[iolist_to_binary(Html)], Context}
    catch
        error:badarg ->
            ok = zotonic_host:log(Context, {output, Html}),
            {[], Context}
    end.
