%% @doc zotonic_host compatibility header: the notification records of Zotonic 1.0's
%% zotonic_notifications.hrl that zotonic_mod_backup and the host use. Field order and defaults
%% are Zotonic's; the comment above each record names how Zotonic sends it (notify, first, fold).
%% Like Zotonic's headers there are no include guards: include zotonic.hrl only once.
%% @end

%% foldl: the admin menu, a list of #menu_item{} / #menu_separator{}.
-record(admin_menu, {}).

%% foldr: computed fields added to a resource that is read.
-record(rsc_get, {
    id :: integer()
}).

%% notify_sync, inside the delete transaction: clean up data belonging to the resource.
-record(rsc_delete, {
    id :: integer(),
    is_a :: list( atom() )
}).

%% foldr over the initial properties of an insert.
-record(rsc_insert, {
    props :: map()
}).

%% foldr over {ok, UpdateProps} before a resource is persisted; props are the props before.
-record(rsc_update, {
    action :: insert | update,
    id :: integer(),
    props :: map()
}).

%% notify_sync after a resource was inserted, updated or deleted.
-record(rsc_update_done, {
    action :: insert | update | delete,
    id :: integer(),
    pre_is_a :: list(),
    post_is_a :: list(),
    pre_props :: map(),
    post_props :: map()
}).

%% first: replace or create a resource from uploaded data; {ok, Id} | {error, Reason}.
-record(rsc_upload, {
    id :: integer() | atom() | binary() | undefined,
    format :: json | bert,
    data :: binary() | map()
}).

%% notify: a resource pivot has been done.
-record(rsc_pivot_done, {
    id :: integer(),
    is_a = [] :: list( atom() )
}).

%% notify_sync: two resources are merged.
-record(rsc_merge, {
    winner_id :: integer(),
    loser_id :: integer(),
    is_merge_trans :: boolean()
}).

%% first: a named search query.
-record(search_query, {
    name = undefined :: binary() | undefined,
    args = undefined :: map() | undefined,
    offsetlimit :: {pos_integer(), pos_integer()},
    options = #{} :: map(),
    search = undefined :: {atom(), list()} | undefined
}).

%% notify_sync from the edge log (sudo context): an edge was inserted.
-record(edge_insert, {
    subject_id :: integer(),
    predicate :: atom(),
    object_id :: integer(),
    edge_id :: pos_integer()
}).

%% notify_sync from the edge log (sudo context): an edge was deleted.
-record(edge_delete, {
    subject_id :: integer(),
    predicate :: atom(),
    object_id :: integer(),
    edge_id :: pos_integer()
}).

%% notify_sync from the edge log (sudo context): an edge was updated.
-record(edge_update, {
    subject_id :: integer(),
    predicate :: atom(),
    object_id :: integer(),
    edge_id :: pos_integer()
}).

%% notify: a configuration value changed.
-record(m_config_update, {
    module :: atom(),
    key :: term(),
    value :: term()
}).

%% notify: a configuration property changed.
-record(m_config_update_prop, {module, key, prop, value}).

%% notify: the file of a medium was replaced (or removed, medium = undefined).
-record(media_replace_file, {
    id :: integer(),
    medium :: map() | undefined
}).

%% notify: a medium record was inserted, updated or deleted.
-record(media_update_done, {
    action :: insert | update | delete,
    id :: integer(),
    pre_is_a :: list( atom() ),
    post_is_a :: list( atom() ),
    pre_props :: map() | undefined,
    post_props :: map() | undefined
}).

%% notify: a module was activated and started.
-record(module_activate, {
    module :: atom(),
    pid :: pid()
}).

%% notify: a module was stopped and deactivated.
-record(module_deactivate, {
    module :: atom()
}).

%% first: is the action on the object allowed? true | false | undefined.
-record(acl_is_allowed, {
    action :: view | update | delete | insert | use | atom(),
    object :: term()
}).

%% first: is the action on the property allowed?
-record(acl_is_allowed_prop, {
    action :: view | update | delete | insert | atom(),
    object :: term(),
    prop :: binary()
}).

%% notify: an identity of a user was changed.
-record(identity_update_done, {
    action :: insert | update | delete | verify,
    rsc_id :: integer(),
    type :: binary(),
    key :: term() | undefined,
    is_verified :: boolean() | undefined
}).

%% first: a postback by a wired notify action.
-record(postback_notify, {
    message,
    trigger,
    target,
    data
}).

%% foldl: the identity types that make a resource a user.
-record(auth_identity_types, {
    type = user :: user
}).
