%% @doc Tests of mod_backup's pure parts: set names, the config tar's entry names, the
%% backup.json index and the removal of temporary files. No site, no database.
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

-module(mod_backup_unit_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, init_per_testcase/2, end_per_testcase/2]).
-export([
    names_weekdays/1,
    names_sundays_rotate_over_five/1,
    config_entry_names/1,
    index_roundtrip_tmp_and_rename/1,
    index_missing_and_corrupt/1,
    index_update_and_find_file/1,
    cleanup_tmp_files_only_tmp/1,
    delete_set_files_keeps_and_refuses_paths/1,
    terminate_accepts_the_stock_modules_state/1
]).

all() ->
    [
        names_weekdays,
        names_sundays_rotate_over_five,
        config_entry_names,
        index_roundtrip_tmp_and_rename,
        index_missing_and_corrupt,
        index_update_and_find_file,
        cleanup_tmp_files_only_tmp,
        delete_set_files_keeps_and_refuses_paths,
        terminate_accepts_the_stock_modules_state
    ].

init_per_testcase(Case, Config) ->
    Dir = filename:join(?config(priv_dir, Config), atom_to_list(Case)),
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    [ {dir, unicode:characters_to_binary(Dir)} | Config ].

end_per_testcase(_Case, _Config) ->
    ok.

%% 2024-01-01 is a Monday.
names_weekdays(_Config) ->
    Names = [ backup_create:name(mysite, {2024, 1, D}) || D <- lists:seq(1, 6) ],
    ?assertEqual([ <<"mysite-1">>, <<"mysite-2">>, <<"mysite-3">>,
                   <<"mysite-4">>, <<"mysite-5">>, <<"mysite-6">> ], Names),
    ?assertEqual(<<"other-3">>, backup_create:name(<<"other">>, {2024, 1, 3})).

names_sundays_rotate_over_five(_Config) ->
    Sundays = [ calendar:gregorian_days_to_date(calendar:date_to_gregorian_days({2024, 1, 7}) + 7 * N)
                || N <- lists:seq(0, 9) ],
    Names = [ backup_create:name(mysite, D) || D <- Sundays ],
    Expected = [ <<"mysite-w", (integer_to_binary((calendar:date_to_gregorian_days(D) div 7) rem 5))/binary>>
                 || D <- Sundays ],
    ?assertEqual(Expected, Names),
    % Five weekly names, each used twice over ten weeks, consecutive Sundays differ.
    ?assertEqual(5, length(lists:usort(Names))),
    ?assertEqual(lists:sublist(Names, 5), lists:nthtail(5, Names)),
    ct:pal("Sundays from 2024-01-07: ~p", [Names]).

config_entry_names(Config) ->
    Dir = ?config(dir, Config),
    Priv = filename:join([Dir, "mysite", "priv"]),
    ConfigD = filename:join(Priv, "config.d"),
    Security = filename:join([Dir, "security", "mysite"]),
    Files = [
        filename:join(Priv, "zotonic_site.config"),
        filename:join(ConfigD, "extra.config"),
        filename:join([Security, "ca", "cert.pem"]),
        filename:join(Security, ".hidden_key"),
        filename:join(Security, "key.pem")
    ],
    lists:foreach(fun(F) -> ok = filelib:ensure_dir(F), ok = file:write_file(F, F) end, Files),
    ok = file:make_symlink("/etc/passwd", filename:join(Security, "link")),
    List = backup_create:config_file_list(mysite, lists:sublist(Files, 2), Security),
    ?assertEqual([
        <<"config-mysite/config/priv/zotonic_site.config">>,
        <<"config-mysite/config/config.d/extra.config">>,
        <<"config-mysite/security/.hidden_key">>,
        <<"config-mysite/security/ca/cert.pem">>,
        <<"config-mysite/security/key.pem">>
    ], [ N || {N, _} <- List ]),
    lists:foreach(fun({_, P}) -> ?assert(filelib:is_regular(P)) end, List),
    ?assertEqual(2, length(backup_create:config_file_list(mysite, lists:sublist(Files, 2), undefined))).

index_roundtrip_tmp_and_rename(Config) ->
    Dir = ?config(dir, Config),
    Index = #{
        <<"mysite-1">> => entry(1700000000, <<"mysite-1">>),
        <<"mysite-w3">> => (entry(1700086400, <<"mysite-w3">>))#{ <<"files">> => undefined,
                                                                  <<"files_hash">> => undefined }
    },
    ok = backup_json_index:write(Dir, Index),
    ?assertNot(filelib:is_file(filename:join(Dir, "backup.json.tmp"))),
    ?assertEqual(Index, backup_json_index:read(Dir)),
    {ok, Bin} = file:read_file(filename:join(Dir, "backup.json")),
    % JSON nulls for missing files, as stock Zotonic writes them.
    ?assertMatch({match, _}, re:run(Bin, <<"\"files\":\\s*null">>)).

index_missing_and_corrupt(Config) ->
    Dir = ?config(dir, Config),
    ?assertEqual(#{}, backup_json_index:read(Dir)),
    ok = file:write_file(filename:join(Dir, "backup.json"), <<"{\"mysite-1\": {\"timest">>),
    ?assertEqual(#{}, backup_json_index:read(Dir)),
    ok = file:write_file(filename:join(Dir, "backup.json"),
                         <<"{\"a\": {\"timestamp\": 12}, \"b\": 3, \"c\": {\"timestamp\": \"x\"}}">>),
    ?assertEqual(#{ <<"a">> => #{ <<"timestamp">> => 12 } }, backup_json_index:read(Dir)).

index_update_and_find_file(Config) ->
    Dir = ?config(dir, Config),
    {ok, _} = backup_json_index:update(Dir, fun(I) -> I#{ <<"mysite-2">> => entry(1, <<"mysite-2">>) } end),
    {ok, _} = backup_json_index:update(Dir, fun(I) -> I#{ <<"mysite-3">> => entry(2, <<"mysite-3">>) } end),
    Index = backup_json_index:read(Dir),
    ?assertEqual([<<"mysite-2">>, <<"mysite-3">>], lists:sort(maps:keys(Index))),
    ?assertEqual({ok, <<"mysite-3">>}, backup_json_index:find_file(<<"config-mysite-3.tar.gz">>, Index)),
    ?assertEqual({ok, <<"mysite-2">>}, backup_json_index:find_file(<<"mysite-2.sql.gz">>, Index)),
    ?assertEqual(error, backup_json_index:find_file(<<"mysite-4.sql.gz">>, Index)),
    ?assertEqual(error, backup_json_index:find_file(<<"backup.json">>, Index)),
    ?assertEqual(9, length(backup_json_index:file_names(Index#{ <<"x">> => entry(3, <<"x">>) }))).

cleanup_tmp_files_only_tmp(Config) ->
    Dir = ?config(dir, Config),
    Names = [ "a.sql.gz.tmp", ".pgpass-12.tmp", "backup.json.tmp", "a.sql.gz", "backup.json", "tmp", "x.tmpx" ],
    [ ok = file:write_file(filename:join(Dir, N), <<"x">>) || N <- Names ],
    ok = file:make_dir(filename:join(Dir, "dir.tmp")),
    Removed = lists:sort(backup_create:cleanup_tmp_files(Dir)),
    ?assertEqual([<<".pgpass-12.tmp">>, <<"a.sql.gz.tmp">>, <<"backup.json.tmp">>], Removed),
    {ok, Left} = file:list_dir(Dir),
    ?assertEqual(["a.sql.gz", "backup.json", "dir.tmp", "tmp", "x.tmpx"], lists:sort(Left)).

delete_set_files_keeps_and_refuses_paths(Config) ->
    Dir = ?config(dir, Config),
    Outside = filename:join(filename:dirname(Dir), "outside.txt"),
    ok = file:write_file(Outside, <<"keep me">>),
    [ ok = file:write_file(filename:join(Dir, N), <<"x">>) || N <- ["s.sql.gz", "config-s.tar.gz", "s.tar.gz"] ],
    Entry = #{ <<"timestamp">> => 1, <<"database">> => <<"s.sql.gz">>,
               <<"config_files">> => <<"config-s.tar.gz">>, <<"files">> => <<"../outside.txt">> },
    ok = backup_create:delete_set_files({Entry, [<<"config-s.tar.gz">>]}, Dir),
    ?assertNot(filelib:is_file(filename:join(Dir, "s.sql.gz"))),
    ?assert(filelib:is_file(filename:join(Dir, "config-s.tar.gz"))),
    ?assert(filelib:is_file(Outside)).

entry(Ts, Name) ->
    #{
        <<"timestamp">> => Ts,
        <<"database">> => <<Name/binary, ".sql.gz">>,
        <<"database_hash">> => <<"aa">>,
        <<"config_files">> => <<"config-", Name/binary, ".tar.gz">>,
        <<"config_files_hash">> => <<"bb">>,
        <<"files">> => <<Name/binary, ".tar.gz">>,
        <<"files_hash">> => <<"cc">>,
        <<"is_filestore_uploaded">> => false,
        <<"is_encrypted">> => false
    }.

%% A swap that restarts the running stock module instead of deactivating it first runs this
%% module's terminate/2 on the stock module's state (its #state{}: 10 fields, timer_ref last):
%% the process ends cleanly, no function_clause logged as "Module failed".
terminate_accepts_the_stock_modules_state(_Config) ->
    {ok, TRef} = timer:send_interval(3600000, periodic_backup),
    StockState = {state, false, z_context:new(zotonic_host_test), undefined, undefined, undefined,
                  undefined, undefined, undefined, undefined, TRef},
    ?assertEqual(ok, mod_backup:terminate(shutdown, StockState)),
    {ok, cancel} = timer:cancel(TRef).
