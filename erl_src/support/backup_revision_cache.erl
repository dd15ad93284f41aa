%% @doc The props of the newest saved revision of recently edited resources, so the next save
%% can make its delta from them instead of reading and rebuilding the resource's chain.
%%
%% One ETS table per site, owned by the site's mod_backup server. An entry is
%% `{RscId, RevId, PropsEtf}': the props (as term_to_binary/1) of revision RevId, written after
%% the transaction that inserted RevId committed. A save uses an entry only when RevId is still
%% the resource's newest row, and the NIF checks the props against the checksum that row
%% carries, so a stale entry (a restored database, a rewritten row) costs a chain read, never a
%% wrong delta. The table is emptied when it reaches ?MAX_ENTRIES: editors work on a few pages
%% at a time, and memory stays bounded whatever the props weigh.
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

-module(backup_revision_cache).

-export([
    new/1,
    lookup/2,
    store/4
]).

% Checked directly by the suites.
-ifdef(TEST).
-export([flush/1]).
-ignore_xref([flush/1]).
-endif.

-define(MAX_ENTRIES, 256).

%% @doc Create the site's table, owned by the calling process (the site's mod_backup server).
-spec new(Context) -> ok when
    Context :: z:context().
new(Context) ->
    _ = ets:new(table(Context), [set, public, named_table, {read_concurrency, true}]),
    ok.

%% @doc The props (term_to_binary/1) of the newest revision saved of RscId, and its id.
-spec lookup(RscId, Context) -> {ok, RevId, PropsEtf} | undefined when
    RscId :: m_rsc:resource_id(),
    Context :: z:context(),
    RevId :: integer(),
    PropsEtf :: binary().
lookup(RscId, Context) ->
    try ets:lookup(table(Context), RscId) of
        [{RscId, RevId, Etf}] -> {ok, RevId, Etf};
        [] -> undefined
    catch
        error:badarg -> undefined   % mod_backup's server is not running
    end.

%% @doc Remember Props as revision RevId of RscId (after its insert committed).
-spec store(RscId, RevId, Props, Context) -> ok when
    RscId :: m_rsc:resource_id(),
    RevId :: integer(),
    Props :: m_rsc:props(),
    Context :: z:context().
store(RscId, RevId, Props, Context) ->
    Table = table(Context),
    try
        case ets:info(Table, size) >= ?MAX_ENTRIES of
            true -> ets:delete_all_objects(Table);
            false -> ok
        end,
        ets:insert(Table, {RscId, RevId, term_to_binary(Props)}),
        ok
    catch
        error:badarg -> ok
    end.

-ifdef(TEST).
%% @doc Forget everything (tests, and whoever rewrites revision rows wholesale).
-spec flush(Context) -> ok when
    Context :: z:context().
flush(Context) ->
    try
        ets:delete_all_objects(table(Context)),
        ok
    catch
        error:badarg -> ok
    end.
-endif.

table(Context) ->
    z_utils:name_for_site(?MODULE, z_context:site(Context)).
