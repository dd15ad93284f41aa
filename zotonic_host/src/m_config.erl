%% @doc zotonic_host: Zotonic's m_config over the site's `config' table. set_value/4 stores the
%% value as a binary and sends #m_config_update{} (notify) when it changed, as Zotonic does.
%% @end

-module(m_config).

-export([
    get/3,
    get_value/3,
    get_value/4,
    get_boolean/3,
    get_boolean/4,
    set_value/4,
    set_default_value/4,
    get_prop/4,
    set_prop/5,
    delete/3
]).

% Called by the suites (or the demo) only, as Zotonic's own API would be.
-ignore_xref([get_boolean/4, get_value/4]).
% Zotonic's API as Zotonic exports it (or called by name: supervisors, observers); nothing
% here calls it directly.
-ignore_xref([delete/3, get/3, get_prop/4, set_default_value/4, set_prop/5]).

-include_lib("zotonic_core/include/zotonic.hrl").

%% @doc The config entry as a proplist (id, module, key, value, props..., created, modified).
-spec get(atom(), atom(), z:context()) -> proplists:proplist() | undefined.
get(Module, Key, Context) ->
    z_db:assoc_props_row("select * from config where module = $1 and key = $2",
                         [z_convert:to_binary(Module), z_convert:to_binary(Key)], Context).

-spec get_value(atom(), atom(), z:context()) -> binary() | undefined.
get_value(Module, Key, Context) ->
    z_db:q1("select value from config where module = $1 and key = $2",
            [z_convert:to_binary(Module), z_convert:to_binary(Key)], Context).

-spec get_value(atom(), atom(), term(), z:context()) -> term().
get_value(Module, Key, Default, Context) ->
    case get_value(Module, Key, Context) of
        undefined -> Default;
        Value -> Value
    end.

-spec get_boolean(atom(), atom(), z:context()) -> boolean().
get_boolean(Module, Key, Context) ->
    z_convert:to_bool(get_value(Module, Key, Context)).

-spec get_boolean(atom(), atom(), boolean(), z:context()) -> boolean().
get_boolean(Module, Key, Default, Context) ->
    case get_value(Module, Key, Context) of
        undefined -> Default;
        V -> z_convert:to_bool(V)
    end.

%% @doc Set a value; notifies #m_config_update{} when it changed.
-spec set_value(atom(), atom(), term(), z:context()) -> ok | {error, term()}.
set_value(Module, Key, Value0, Context) ->
    M = z_convert:to_atom(Module),
    K = z_convert:to_atom(Key),
    Value = z_convert:to_binary(Value0),
    case get_value(M, K, Context) of
        Value -> ok;
        _ ->
            _ = z_db:q("insert into config (module, key, value) values ($1, $2, $3)
                        on conflict (module, key) do update set value = excluded.value, modified = now()",
                       [atom_to_binary(M, utf8), atom_to_binary(K, utf8), Value], Context),
            z_notifier:notify(#m_config_update{ module = M, key = K, value = Value }, Context),
            ok
    end.

%% @doc Set a value only if none is set.
-spec set_default_value(atom(), atom(), term(), z:context()) -> ok | {error, term()}.
set_default_value(Module, Key, Value, Context) ->
    case get_value(Module, Key, Context) of
        undefined -> set_value(Module, Key, Value, Context);
        _ -> ok
    end.

-spec get_prop(atom(), atom(), atom(), z:context()) -> term().
get_prop(Module, Key, Prop, Context) ->
    case z_db:q1("select props from config where module = $1 and key = $2",
                 [z_convert:to_binary(Module), z_convert:to_binary(Key)], Context) of
        M when is_map(M) -> maps:get(Prop, M, maps:get(z_convert:to_binary(Prop), M, undefined));
        L when is_list(L) -> proplists:get_value(Prop, L);
        _ -> undefined
    end.

-spec set_prop(atom(), atom(), atom(), term(), z:context()) -> ok.
set_prop(Module, Key, Prop, Value, Context) ->
    M = z_convert:to_binary(Module),
    K = z_convert:to_binary(Key),
    Props = case z_db:q1("select props from config where module = $1 and key = $2", [M, K], Context) of
        P when is_map(P) -> P;
        _ -> #{}
    end,
    _ = z_db:q("insert into config (module, key, value, props) values ($1, $2, '', $3)
                on conflict (module, key) do update set props = excluded.props, modified = now()",
               [M, K, ?DB_PROPS(Props#{ Prop => Value })], Context),
    z_notifier:notify(#m_config_update_prop{ module = z_convert:to_atom(Module), key = z_convert:to_atom(Key),
                                             prop = Prop, value = Value }, Context),
    ok.

-spec delete(atom(), atom(), z:context()) -> ok.
delete(Module, Key, Context) ->
    _ = z_db:q("delete from config where module = $1 and key = $2",
               [z_convert:to_binary(Module), z_convert:to_binary(Key)], Context),
    z_notifier:notify(#m_config_update{ module = z_convert:to_atom(Module), key = z_convert:to_atom(Key),
                                        value = undefined }, Context),
    ok.
