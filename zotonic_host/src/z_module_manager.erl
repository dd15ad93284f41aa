%% @doc zotonic_host: the module handling of Zotonic's z_module_manager. scan/0 finds modules
%% as Zotonic does: every `*zotonic_mod_*' directory in the build's lib dir is a module, named
%% `mod_x' when the directory has `src/mod_x.erl', else after the directory. A site's modules are
%% started in priority order (mod_prio, lower first): the schema is installed or upgraded
%% through manage_schema/2 in a transaction (version kept in the `module' table), then the module
%% is started under the site's module supervisor with `start_link([{context, Ctx}, {module, M} |
%% SiteConfig])' -- a module that is not a gen_server gets z_module_dummy -- and its exported
%% observe_* (arity 2/3) and pid_observe_* (3/4) functions become observers with its pid as owner.
%% @end

-module(z_module_manager).

-export([
    scan/0,
    scan/1,
    prio/1,
    mod_schema/1,
    active/1,
    active/2,
    whereis/2,
    start_modules/3,
    stop_modules/1
]).

% Called by the suites (or the demo) only, as Zotonic's own API would be.
-ignore_xref([active/1, mod_schema/1, whereis/2]).

-include_lib("zotonic_core/include/zotonic.hrl").

-define(MOD_PRIO, 500).

%% @doc All modules found in the build lib dir: [{Module, Application, Dir}].
-spec scan() -> [{atom(), atom(), file:filename_all()}].
scan() ->
    scan([build_lib_dir()]).

%% @doc All modules found in the given lib dirs.
-spec scan([file:filename_all()]) -> [{atom(), atom(), file:filename_all()}].
scan(LibDirs) ->
    lists:flatmap(
        fun(LibDir) ->
            [ begin {M, App} = module_name(Dir), {M, App, Dir} end
              || Dir <- filelib:wildcard(filename:join(LibDir, "*zotonic_mod_*")),
                 filelib:is_dir(Dir) ]
        end,
        LibDirs).

build_lib_dir() ->
    case code:lib_dir(zotonic_mod_backup) of
        {error, _} -> filename:join([element(2, file:get_cwd()), "_build", "test", "lib"]);
        Dir -> filename:dirname(Dir)
    end.

module_name(Dir) ->
    AppName = filename:basename(Dir),
    Simple = "mod_" ++ strip_namespace(AppName),
    case filelib:is_regular(filename:join([Dir, "src", Simple ++ ".erl"])) of
        true -> {list_to_atom(Simple), list_to_atom(AppName)};
        false -> {list_to_atom(AppName), list_to_atom(AppName)}
    end.

strip_namespace("zotonic_mod_" ++ Name) -> Name;
strip_namespace("mod_" ++ Name) -> Name;
strip_namespace([_ | Rest]) -> strip_namespace(Rest).

%% @doc The module's priority (-mod_prio), 500 when not set. Never crashes.
-spec prio(atom()) -> integer().
prio(Module) ->
    try erlang:get_module_info(Module, attributes) of
        Attrs ->
            case proplists:get_value(mod_prio, Attrs) of
                [Prio] when is_integer(Prio) -> Prio;
                _ -> ?MOD_PRIO
            end
    catch
        _:_ -> ?MOD_PRIO
    end.

-spec prio_sort([atom()]) -> [atom()].
prio_sort(Modules) ->
    [ M || {_, M} <- lists:sort([ {prio(M), M} || M <- Modules ]) ].

%% @doc The -mod_schema version of a module, undefined when it has none.
-spec mod_schema(atom()) -> integer() | undefined.
mod_schema(Module) ->
    case proplists:get_value(mod_schema, erlang:get_module_info(Module, attributes)) of
        [Version] -> Version;
        _ -> undefined
    end.

%% @doc The running modules of the site.
-spec active(z:context()) -> [atom()].
active(#context{ site = Site }) ->
    [ M || {M, _Pid} <- running(Site) ].

%% @doc Is the module running in the context's site?
-spec active(atom(), z:context()) -> boolean().
active(Module, Context) ->
    lists:member(Module, active(Context)).

-spec whereis(atom(), z:context()) -> {ok, pid()} | {error, not_running}.
whereis(Module, #context{ site = Site }) ->
    case lists:keyfind(Module, 1, running(Site)) of
        {_, Pid} -> {ok, Pid};
        false -> {error, not_running}
    end.

running(Site) ->
    Sup = zotonic_host_site_sup:module_sup_name(Site),
    case erlang:whereis(Sup) of
        undefined -> [];
        _ -> [ {M, Pid} || {M, Pid, _, _} <- supervisor:which_children(Sup), is_pid(Pid) ]
    end.

%% @doc Start the site's modules: Modules are names found by Scan, or (host extension for test
%% helpers) modules on the code path given as `{code, Module}'.
-spec start_modules(atom(), [atom() | {code, atom()}], [{atom(), atom(), file:filename_all()}]) ->
    ok | {error, term()}.
start_modules(Site, Modules, Scan) ->
    Names = [ case M of {code, C} -> C; _ -> M end || M <- Modules ],
    Missing = [ M || M <- Modules, is_atom(M), not lists:keymember(M, 1, Scan) ],
    case Missing of
        [] ->
            lists:foldl(
                fun
                    (M, ok) -> start_module(Site, M);
                    (_M, Error) -> Error
                end,
                ok,
                prio_sort([ ensure_loaded(M) || M <- Names ]));
        _ ->
            {error, {modules_not_found, Missing}}
    end.

ensure_loaded(M) ->
    {module, M} = code:ensure_loaded(M),
    M.

start_module(Site, Module) ->
    Context = z_acl:sudo(z_context:new(Site)),
    case manage_schema(Module, Context) of
        ok ->
            Args = [ {context, z_context:new(Site)}, {module, Module} | zotonic_host:site_config(Site) ],
            ChildModule = case has_behaviour(Module, gen_server) orelse has_behaviour(Module, supervisor) of
                true -> Module;
                false -> z_module_dummy
            end,
            Spec = #{
                id => Module,
                start => {ChildModule, start_link, [Args]},
                restart => temporary,
                type => case has_behaviour(Module, supervisor) of true -> supervisor; false -> worker end
            },
            case supervisor:start_child(zotonic_host_site_sup:module_sup_name(Site), Spec) of
                {ok, Pid} ->
                    lists:foreach(
                        fun({Event, Observer}) -> z_notifier:observe(Event, Observer, Pid, Context) end,
                        observes(Module, Module:module_info(exports), Pid)),
                    z_notifier:notify(#module_activate{ module = Module, pid = Pid }, Context),
                    ok;
                {error, Reason} ->
                    ?LOG_ERROR(#{
                        in => zotonic_host,
                        text => <<"Could not start module">>,
                        module => Module,
                        result => error,
                        reason => Reason
                    }),
                    {error, {start_module, Module, Reason}}
            end;
        {error, _} = Error ->
            Error
    end.

%% @doc Stop all modules of the site, removing their observers.
-spec stop_modules(atom()) -> ok.
stop_modules(Site) ->
    Sup = zotonic_host_site_sup:module_sup_name(Site),
    lists:foreach(
        fun({M, Pid}) ->
            z_notifier:detach_all(Pid, Site),
            _ = supervisor:terminate_child(Sup, M),
            _ = supervisor:delete_child(Sup, M)
        end,
        lists:reverse(running(Site))).

%% @doc The observers a module declares through its exported functions.
-spec observes(atom(), [{atom(), arity()}], pid()) -> [{atom(), z_notifier:observer()}].
observes(Module, Exports, Pid) ->
    lists:filtermap(
        fun({F, Arity}) ->
            case atom_to_list(F) of
                "observe_" ++ Msg when Arity =:= 2; Arity =:= 3 ->
                    {true, {list_to_atom(Msg), {Module, F}}};
                "pid_observe_" ++ Msg when Arity =:= 3; Arity =:= 4 ->
                    {true, {list_to_atom(Msg), {Module, F, [Pid]}}};
                _ ->
                    false
            end
        end,
        Exports).

has_behaviour(M, Behaviour) ->
    Attrs = erlang:get_module_info(M, attributes),
    lists:member(Behaviour, lists:flatten(proplists:get_all_values(behaviour, Attrs)
                                          ++ proplists:get_all_values(behavior, Attrs))).

%% Schema: install or upgrade step by step, as z_module_manager:manage_schema/2.
manage_schema(Module, Context) ->
    Target = mod_schema(Module),
    Current = z_db:q1("select schema_version from module where name = $1", [atom_to_binary(Module, utf8)], Context),
    HasManage = erlang:function_exported(Module, manage_schema, 2),
    case {Target, HasManage} of
        {undefined, _} -> ok;
        {_, false} -> {error, {manage_schema, Module}};
        {_, true} -> manage_schema(Module, Current, Target, Context)
    end.

manage_schema(_Module, Version, Version, _Context) ->
    ok;
manage_schema(_Module, Current, Target, _Context) when is_integer(Current), Target < Current ->
    ok;
manage_schema(Module, Current, Target, Context) ->
    Step = case Current of
        undefined -> install;
        _ -> {upgrade, Current + 1}
    end,
    NewVersion = case Current of
        undefined -> Target;
        _ -> Current + 1
    end,
    case z_db:transaction(fun(Ctx) -> Module:manage_schema(Step, Ctx) end, Context) of
        {rollback, Reason} ->
            {error, {manage_schema, Module, Reason}};
        _ ->
            _ = z_db:q("insert into module (name, is_active, schema_version) values ($1, true, $2)
                        on conflict (name) do update set schema_version = excluded.schema_version, is_active = true",
                       [atom_to_binary(Module, utf8), NewVersion], Context),
            manage_schema(Module, NewVersion, Target, Context)
    end.
