%% @doc Guards for dropping this app into a Zotonic checkout: Zotonic compiles every app's test/
%% dir and its file watcher loads changed .erl files under test/ and src/, so no module of ours
%% outside zotonic_host/ may carry a name Zotonic also has (it would replace Zotonic's own in a
%% running site); and the default rebar3 profile must not compile the host at all.
%% @end

%% Copyright 2026 The zotonic_mod_backup authors
%%
%% Licensed under the Apache License, Version 2.0 (the "License");
%% you may not use this file except in compliance with the License.
%% You may obtain a copy of the License at
%%
%%     http://www.apache.org/licenses/LICENSE-2.0
%%
%% Unless required by applicable law or agreed to in writing, software
%% distributed under the License is distributed on an "AS IS" BASIS,
%% WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
%% See the License for the specific language governing permissions and
%% limitations under the License.

-module(zotonic_names_guard_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0]).
-export([
    no_module_outside_the_host_has_a_zotonic_name/1,
    default_profile_config_leaves_the_host_out/1,
    default_profile_compiles_nothing_from_the_host/1
]).

%% Where a fetched Zotonic source may be found (optional: adds its module names to the list).
-define(ZOTONIC_MIRROR, "/work/.mirror/zotonic+zotonic/repo").

all() ->
    [
        no_module_outside_the_host_has_a_zotonic_name,
        default_profile_config_leaves_the_host_out,
        default_profile_compiles_nothing_from_the_host
    ].

no_module_outside_the_host_has_a_zotonic_name(_Config) ->
    Root = root(),
    Files = lists:flatmap(
        fun(Dir) -> filelib:wildcard(filename:join([Root, Dir, "**", "*.erl"])) end,
        ["test", "erl_src", "priv"]),
    ?assert(length(Files) > 0),
    Zotonic = zotonic_module_names(Root),
    Clashes = [ {File, M} || File <- Files,
                            M <- lists:usort([declared_module(File), list_to_atom(filename:basename(File, ".erl"))]),
                            M =/= undefined,
                            is_zotonic_name(M, Zotonic) ],
    ?assertEqual([], Clashes).

default_profile_config_leaves_the_host_out(_Config) ->
    {ok, Terms} = file:consult(filename:join(root(), "rebar.config")),
    Top = lists:keydelete(profiles, 1, Terms),
    Text = lists:flatten(io_lib:format("~p", [Top])),
    ?assertEqual(nomatch, string:find(Text, "zotonic_host")),
    {profiles, Profiles} = lists:keyfind(profiles, 1, Terms),
    Default = proplists:get_value(default, Profiles, []),
    ?assertEqual(nomatch, string:find(lists:flatten(io_lib:format("~p", [Default])), "zotonic_host")).

%% Inside Zotonic the headers and the zotonic_model behaviour come from the zotonic_core and
%% zotonic_mod_admin applications; here ERL_LIBS points at stand-in applications whose include
%% dirs are the host's compat headers and whose ebin holds the host's zotonic_model, so the
%% default profile sees exactly what a Zotonic checkout gives it.
default_profile_compiles_nothing_from_the_host(Config) ->
    Root = root(),
    Libs = filename:join(?config(priv_dir, Config), "zotonic_libs"),
    lists:foreach(
        fun(App) ->
            ok = filelib:ensure_path(filename:join([Libs, App, "ebin"])),
            ok = file:make_symlink(filename:join([Root, "zotonic_host", "include_compat", App, "include"]),
                                   filename:join([Libs, App, "include"]))
        end,
        ["zotonic_core", "zotonic_mod_admin"]),
    {ok, zotonic_model} = compile:file(filename:join([Root, "zotonic_host", "src", "zotonic_model.erl"]),
                                       [{outdir, filename:join([Libs, "zotonic_core", "ebin"])}, report]),
    Cmd = "cd " ++ Root ++ " && env -u REBAR_PROFILE ERL_LIBS=" ++ Libs ++ " rebar3 compile 2>&1; echo \"exit=$?\"",
    Out = os:cmd(Cmd),
    ct:log("~s", [Out]),
    ?assertNotEqual(nomatch, string:find(Out, "exit=0")),
    AppDir = filename:join([Root, "_build", "default", "lib", "zotonic_mod_backup"]),
    Beams = [ list_to_atom(filename:basename(B, ".beam")) || B <- filelib:wildcard(filename:join([AppDir, "ebin", "*.beam"])) ],
    ?assert(lists:member(mod_backup, Beams)),
    HostModules = [ list_to_atom(filename:basename(F, ".erl"))
                    || F <- filelib:wildcard(filename:join([Root, "zotonic_host", "src", "**", "*.erl"])) ],
    ?assert(length(HostModules) > 0),
    ?assertEqual([], [ M || M <- Beams, lists:member(M, HostModules) ]),
    ?assertNot(filelib:is_dir(filename:join(AppDir, "zotonic_host"))).

%% ---------------------------------------------------------------------------------------------

root() ->
    Source = proplists:get_value(source, ?MODULE:module_info(compile)),
    filename:dirname(filename:dirname(Source)).

declared_module(File) ->
    {ok, Bin} = file:read_file(File),
    case re:run(Bin, "^-module\\(\\s*'?([a-zA-Z0-9_@]+)'?\\s*\\)", [multiline, {capture, all_but_first, list}]) of
        {match, [Name]} -> list_to_atom(Name);
        nomatch -> undefined
    end.

%% Zotonic's names: what the host emulates (every module in zotonic_host/src that is not the
%% host's own zotonic_host*), plus, when Zotonic's source is at hand, every module of its apps
%% except the stock mod_backup's (whose names we share on purpose, being its drop-in).
zotonic_module_names(Root) ->
    Host = [ list_to_atom(filename:basename(F, ".erl"))
             || F <- filelib:wildcard(filename:join([Root, "zotonic_host", "src", "**", "*.erl"])),
                not lists:prefix("zotonic_host", filename:basename(F)) ],
    Mirror = case filelib:is_dir(?ZOTONIC_MIRROR) of
        true ->
            Listing = os:cmd("git -C " ++ ?ZOTONIC_MIRROR ++ " ls-tree -r --name-only HEAD apps"),
            [ list_to_atom(filename:basename(P, ".erl"))
              || P <- string:lexemes(Listing, "\n"),
                 filename:extension(P) =:= ".erl",
                 not lists:prefix("apps/zotonic_mod_backup/", P) ];
        false ->
            []
    end,
    lists:usort(Host ++ Mirror).

is_zotonic_name(M, Zotonic) ->
    Name = atom_to_list(M),
    lists:member(M, Zotonic)
        orelse lists:prefix("z_", Name)
        orelse lists:prefix("m_rsc", Name)
        orelse lists:member(M, [z, jobs, m_edge, m_media, m_config, m_site, m_identity, m_category,
                                m_predicate, m_hierarchy, m_acl, m_modules, m_search]).
