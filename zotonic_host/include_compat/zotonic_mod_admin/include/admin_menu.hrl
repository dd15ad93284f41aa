%% @doc zotonic_host compatibility header: the admin menu records of Zotonic 1.0's
%% zotonic_mod_admin/include/admin_menu.hrl.
%% @end


-record(menu_item, {
    id :: term(),
    parent :: term() | undefined,
    label :: binary() | string() | tuple(),
    url :: atom() | {atom()} | {atom(), list()} | string() | binary() | undefined,
    icon,
    visiblecheck,
    sort = 99999 :: non_neg_integer()
}).

-record(menu_separator, {
    parent :: term() | undefined,
    visiblecheck,
    sort = 99999 :: non_neg_integer()
}).

