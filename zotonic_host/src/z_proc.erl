%% @doc zotonic_host: Zotonic's z_proc -- spawn keeping the logger metadata.
%% @end

-module(z_proc).

-export([spawn_md/1, spawn_link_md/1]).

-spec spawn_md(fun(() -> term())) -> pid().
spawn_md(Fun) ->
    MD = logger:get_process_metadata(),
    proc_lib:spawn(fun() -> set_md(MD), Fun() end).

-spec spawn_link_md(fun(() -> term())) -> pid().
spawn_link_md(Fun) ->
    MD = logger:get_process_metadata(),
    proc_lib:spawn_link(fun() -> set_md(MD), Fun() end).

set_md(undefined) -> ok;
set_md(MD) -> logger:set_process_metadata(MD).
