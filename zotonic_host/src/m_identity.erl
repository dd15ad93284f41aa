%% @doc zotonic_host: the parts of Zotonic's m_identity that mod_backup uses.
%% @end

-module(m_identity).

-export([user_types/1, is_user/2]).

-include_lib("zotonic_core/include/zotonic.hrl").

%% @doc The identity types that make a resource a user (a foldl over #auth_identity_types{}
%% in Zotonic; no host module adds types, so `[username_pw]').
-spec user_types(z:context()) -> [atom()].
user_types(Context) ->
    z_notifier:foldl(#auth_identity_types{ type = user }, [username_pw], Context).

%% @doc Does the resource have an identity of a user type?
-spec is_user(m_rsc:resource_id(), z:context()) -> boolean().
is_user(Id, Context) ->
    Types = [ atom_to_binary(T, utf8) || T <- user_types(Context) ],
    z_db:q1("select count(*) from identity where rsc_id = $1 and type = any($2)", [Id, Types], Context) > 0.
