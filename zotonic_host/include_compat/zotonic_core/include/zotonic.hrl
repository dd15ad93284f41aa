%% @doc zotonic_host compatibility header: the parts of Zotonic 1.0's zotonic.hrl that
%% zotonic_mod_backup uses, re-declared for the test build (field order as in Zotonic;
%% types simplified). Inside Zotonic the real header is found instead.
%% @end


%% Request/site context. Zotonic passes it everywhere; the host fills site, acl, user and db.
-record(context, {
    cowreq = undefined :: term(),
    cowenv = undefined :: term(),
    site = default :: atom(),
    controller_module = undefined :: atom() | undefined,
    client_id = undefined :: binary() | undefined,
    client_topic = undefined :: term(),
    routing_id = undefined :: binary() | undefined,
    acl = undefined :: term() | admin | undefined,
    acl_is_read_only = false :: boolean(),
    user_id = undefined :: integer() | authenticated | undefined,
    render_state = undefined :: term(),
    db = undefined :: {atom(), atom()} | undefined,
    dbc = undefined :: pid() | undefined,
    language = [en] :: [atom()],
    tz = <<"UTC">> :: binary(),
    props = #{} :: map(),
    depcache :: pid() | atom(),
    dispatcher :: pid() | atom(),
    template_server :: pid() | atom(),
    scomp_server :: pid() | atom(),
    dropbox_server :: pid() | atom(),
    pivot_server :: pid() | atom(),
    module_indexer :: pid() | atom(),
    translation_table :: atom()
}).

%% Store an Erlang term (or JSON) in a bytea column; z_db decodes it on read.
-define(DB_PROPS(N), {term, N}).
-define(DB_PROPS_JSON(N), {term_json, N}).

%% The "no end date" date.
-define(ST_JUTTEMIS, {{9999,8,17}, {12,0,0}}).

%% Uploaded file as query argument.
-record(upload, {
    filename :: binary() | undefined,
    tmpfile :: file:filename_all() | undefined,
    tmpmonitor = undefined :: undefined | pid(),
    data = undefined :: binary() | undefined,
    mime = undefined :: binary() | undefined
}).

-record(rsc_list, {
    list :: list()
}).

-define(SEARCH_PAGELEN, 20).

-record(search_result, {
    search_name = <<"query">> :: binary() | atom(),
    search_args = #{} :: map() | proplists:proplist(),
    result = [] :: list(),
    page = 1 :: pos_integer(),
    pagelen = ?SEARCH_PAGELEN :: pos_integer() | undefined,
    options = #{} :: map(),
    total = undefined :: non_neg_integer() | undefined,
    pages = undefined :: non_neg_integer() | undefined,
    is_total_estimated = false :: boolean(),
    next = false :: pos_integer() | false,
    prev = 1 :: pos_integer(),
    facets = undefined :: map() | undefined
}).

-record(search_sql, {
    select :: iodata() | undefined,
    from :: iodata() | undefined,
    where = "" :: iodata(),
    order = "" :: iodata(),
    group_by = "" :: iodata(),
    limit,
    tables = [] :: list(),
    args = [] :: list(),
    cats = [] :: list(),
    cats_exclude = [] :: list(),
    cats_exact = [] :: list(),
    run_func :: function() | undefined,
    post_func :: function() | undefined,
    extra = [] :: list(),
    assoc = false :: boolean(),
    search_sql_terms = undefined :: list() | undefined
}).

%% Column definitions for z_db:create_table/3.
-record(column_def, {
    name :: atom(),
    type :: string() | binary(),
    length = undefined :: non_neg_integer() | undefined,
    is_nullable = true :: boolean(),
    is_array = false :: boolean(),
    default = undefined,
    primary_key = false :: boolean(),
    unique = false :: boolean()
}).

%% Default data of a module (returned by manage_schema/2).
-record(datamodel, {
    categories = [] :: list(),
    predicates = [] :: list(),
    resources = [] :: list(),
    media = [] :: list(),
    edges = [] :: list()
}).

-define(ACL_ADMIN_USER_ID, 1).
-define(ACL_ANY_USER_ID, -1).

-record(acl_rsc, {
    id :: integer() | undefined,
    category :: atom(),
    props = #{} :: map()
}).

-record(acl_edge, {
    subject_id :: term(),
    predicate :: pos_integer() | atom(),
    object_id :: term()
}).

-record(acl_media, {
    mime = <<"binary/octet-stream">> :: binary(),
    size = undefined :: undefined | non_neg_integer()
}).

-record(acl_props, {
    is_published = true :: boolean(),
    is_authoritative = true :: boolean(),
    publication_start = {{1900,1,1},{0,0,0}} :: calendar:datetime(),
    publication_end = ?ST_JUTTEMIS,
    content_group_id = undefined :: undefined | integer(),
    visible_for = 0 :: non_neg_integer()
}).

%% Template to render, used by z_render:update/insert and friends.
-record(render, {
    template :: term(),
    is_all = false :: boolean(),
    vars = [] :: proplists:proplist()
}).

-define(ASSERT(A,E), z_utils:assert(A,E)).
-define(__(T,Context), z_trans:trans(T,Context)).
-define(___(T,Context), z_trans:translations(T,Context)).

%% Translatable text.
-record(trans, { tr = [] :: list( {atom(), binary()} )}).

-define(MINUTE,     60).
-define(HOUR,     3600).
-define(DAY,     86400).
-define(WEEK,   604800).
-define(YEAR, 31557600).

-include("zotonic_notifications.hrl").
-include("zotonic_log.hrl").
-include("zotonic_wired.hrl").

