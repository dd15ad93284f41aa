%% @doc zotonic_host: Zotonic's z_acl. The context fields and sudo/anonymous/logon behave as in
%% Zotonic. is_allowed/3 first asks the #acl_is_allowed{} observers (as Zotonic's ACL modules
%% answer it); when none answers, the host's fixed user roles decide (a stand-in for
%% mod_acl_user_groups): `admin' may do everything; `editor' may view, insert, update and delete
%% resources, edges and media and `use' the modules given for editors (site option
%% `editor_use', default [mod_admin, mod_admin_frontend]); `member' may view and update itself;
%% anonymous may view published resources. A read-only context may not change anything.
%% @end

-module(z_acl).

-export([
    is_allowed/3,
    rsc_visible/2,
    rsc_editable/2,
    rsc_deletable/2,
    user/1,
    sudo/1,
    sudo/2,
    logon/2,
    is_sudo/1,
    is_admin/1,
    is_admin_editable/1,
    is_read_only/1,
    set_read_only/2
]).

% Called by the suites (or the demo) only, as Zotonic's own API would be.
-ignore_xref([is_sudo/1, set_read_only/2, sudo/2]).

-include_lib("zotonic_core/include/zotonic.hrl").

-type action() :: view | insert | update | delete | use | link | atom().
-type role() :: admin | editor | member | anonymous.
-export_type([action/0, role/0]).

%% @doc Is the action on the object allowed for the context's user?
-spec is_allowed(Action, Object, Context) -> boolean() when
    Action :: action(),
    Object :: term(),
    Context :: z:context().
is_allowed(_Action, _Object, #context{ acl = admin }) ->
    true;
is_allowed(Action, _Object, #context{ acl_is_read_only = true })
    when Action =:= insert; Action =:= update; Action =:= delete; Action =:= link ->
    false;
is_allowed(Action, Object, Context) ->
    case z_notifier:first(#acl_is_allowed{ action = Action, object = Object }, Context) of
        true -> true;
        false -> false;
        undefined -> role_allows(role(Context), Action, Object, Context)
    end.

role_allows(admin, _Action, _Object, _Context) ->
    true;
role_allows(editor, use, Module, #context{ site = Site }) ->
    lists:member(Module, editor_use(Site));
role_allows(editor, _Action, _Object, _Context) ->
    true;
role_allows(member, view, Object, Context) ->
    is_published(Object, Context) orelse rsc_id(Object, Context) =:= user(Context);
role_allows(member, update, Object, Context) ->
    rsc_id(Object, Context) =:= user(Context);
role_allows(anonymous, view, Object, Context) ->
    is_published(Object, Context);
role_allows(_, _, _, _) ->
    false.

editor_use(Site) ->
    case ets:lookup(zotonic_host_kv, {Site, editor_use}) of
        [{_, Modules}] -> Modules;
        [] -> [mod_admin, mod_admin_frontend]
    end.

rsc_id(#acl_rsc{ id = Id }, _Context) -> Id;
rsc_id(Id, _Context) when is_integer(Id) -> Id;
rsc_id(Name, Context) when is_atom(Name); is_binary(Name) -> m_rsc:rid(Name, z_acl:sudo(Context));
rsc_id(_, _Context) -> undefined.

is_published(Object, Context) ->
    case rsc_id(Object, Context) of
        undefined -> not is_integer(Object);
        Id -> z_db:q1("select is_published from rsc where id = $1", [Id], Context) =:= true
    end.

%% @doc The host role of the context's user: admin, editor, member or anonymous.
-spec role(z:context()) -> role().
role(#context{ acl = admin }) -> admin;
role(#context{ user_id = ?ACL_ADMIN_USER_ID }) -> admin;
role(#context{ user_id = undefined }) -> anonymous;
role(#context{ site = Site, user_id = UserId }) ->
    case ets:lookup(zotonic_host_kv, {Site, role, UserId}) of
        [{_, Role}] -> Role;
        [] -> member
    end.

-spec rsc_visible(term(), z:context()) -> boolean().
rsc_visible(Id, Context) ->
    is_allowed(view, Id, Context).

-spec rsc_editable(term(), z:context()) -> boolean().
rsc_editable(undefined, _Context) -> false;
rsc_editable(Id, Context) ->
    is_allowed(update, m_rsc:rid(Id, Context), Context).

-spec rsc_deletable(term(), z:context()) -> boolean().
rsc_deletable(undefined, _Context) -> false;
rsc_deletable(Id, Context) ->
    is_allowed(delete, m_rsc:rid(Id, Context), Context).

-spec user(z:context()) -> integer() | undefined.
user(#context{ user_id = UserId }) when is_integer(UserId) -> UserId;
user(#context{}) -> undefined.

%% @doc A context with all rights; the admin (1) becomes the user if there was none.
-spec sudo(z:context() | atom()) -> z:context().
sudo(Site) when is_atom(Site) -> sudo(z_context:new(Site));
sudo(#context{ acl = undefined, user_id = undefined } = Context) ->
    Context#context{ acl = admin, user_id = ?ACL_ADMIN_USER_ID };
sudo(#context{} = Context) ->
    Context#context{ acl = admin }.

-spec sudo(fun((z:context()) -> term()) | {module(), atom()} | mfa(), z:context()) -> term().
sudo({M, F}, Context) -> M:F(sudo(Context));
sudo({M, F, A}, Context) -> erlang:apply(M, F, A ++ [sudo(Context)]);
sudo(Fun, Context) when is_function(Fun, 1) -> Fun(sudo(Context)).

-spec logon(integer(), z:context()) -> z:context().
logon(UserId, Context) when is_integer(UserId) ->
    Context#context{ user_id = UserId, acl = undefined }.

-spec is_sudo(z:context()) -> boolean().
is_sudo(#context{ acl = admin }) -> true;
is_sudo(_) -> false.

%% @doc Admin: sudo, the admin user, or allowed to use mod_admin_config.
-spec is_admin(z:context()) -> boolean().
is_admin(#context{ user_id = ?ACL_ADMIN_USER_ID }) -> true;
is_admin(#context{ acl = admin }) -> true;
is_admin(#context{ acl = undefined, user_id = undefined }) -> false;
is_admin(Context) -> is_allowed(use, mod_admin_config, Context).

-spec is_admin_editable(z:context()) -> boolean().
is_admin_editable(#context{ acl = admin }) -> true;
is_admin_editable(#context{ acl_is_read_only = true }) -> false;
is_admin_editable(Context) -> is_admin(Context).

-spec is_read_only(z:context()) -> boolean().
is_read_only(#context{ acl = admin }) -> false;
is_read_only(#context{ acl_is_read_only = IsReadOnly }) -> IsReadOnly.

-spec set_read_only(boolean(), z:context()) -> z:context().
set_read_only(IsReadOnly, Context) -> Context#context{ acl_is_read_only = IsReadOnly }.
