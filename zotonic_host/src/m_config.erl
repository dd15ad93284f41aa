%% @doc zotonic_host: Zotonic's m_config over the site's `config' table. set_value/4 stores the
%% value as a binary and sends #m_config_update{} (notify) when it changed, as Zotonic does.
%% @end

-module(m_config).

-export([
    get_value/3,
    get_value/4,
    get_boolean/3,
    get_boolean/4,
    set_value/4
]).

% Called by the suites (or the demo) only, as Zotonic's own API would be.
-ignore_xref([get_boolean/4, get_value/4]).

-include_lib("zotonic_core/include/zotonic.hrl").

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
