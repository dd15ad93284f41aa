%% @doc The NIF library end to end from the BEAM: loading, file_digest, errors, and the
%% behaviour when the library is missing.
-module(backup_nif_tests).

-include_lib("eunit/include/eunit.hrl").

library_is_loaded_test() ->
    ?assert(backup_nif:is_loaded()).

file_digest_matches_sha256sum_and_size_test() ->
    File = tmp_file(<<"digest">>, crypto:strong_rand_bytes(1000003)),
    {ok, #{sha256 := Hex, crc32 := Crc, size := Size}} = backup_nif:file_digest(File),
    [SumHex | _] = string:split(os:cmd("sha256sum " ++ File), " "),
    ?assertEqual(list_to_binary(SumHex), Hex),
    {ok, Bin} = file:read_file(File),
    ?assertEqual(erlang:crc32(Bin), Crc),
    ?assertEqual(1000003, Size).

file_digest_accepts_binary_and_unicode_names_test() ->
    Dir = tmp_dir(),
    Name = filename:join(Dir, <<"répertoire-✓.bin"/utf8>>),
    ok = file:write_file(Name, <<"abc">>),
    Expected = <<"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad">>,
    ?assertMatch({ok, #{sha256 := Expected, size := 3}}, backup_nif:file_digest(Name)),
    ?assertMatch({ok, #{sha256 := Expected}}, backup_nif:file_digest(unicode:characters_to_list(Name))).

file_digest_of_missing_file_is_enoent_with_path_test() ->
    ?assertMatch({error, {enoent, #{message := _, path := <<"/nonexistent/zb-file">>}}},
                 backup_nif:file_digest(<<"/nonexistent/zb-file">>)).

file_digest_of_directory_is_eisdir_test() ->
    ?assertMatch({error, {eisdir, #{}}}, backup_nif:file_digest(tmp_dir())).

file_digest_of_non_path_is_badarg_test() ->
    ?assertError(badarg, backup_nif:file_digest(42)),
    ?assertError(badarg, backup_nif:file_digest(#{})),
    ?assertError(badarg, backup_nif:file_digest([-1])).

%% A VM whose priv/native has no library keeps running, and every call raises an error naming
%% the missing file and the build command.
missing_library_gives_clear_error_not_crash_test() ->
    Dir = tmp_dir(),
    Ebin = filename:join(Dir, "ebin"),
    ok = filelib:ensure_dir(filename:join([Dir, "priv", "native", "x"])),
    ok = filelib:ensure_dir(filename:join(Ebin, "x")),
    Beam = code:which(backup_nif),
    {ok, _} = file:copy(Beam, filename:join(Ebin, "backup_nif.beam")),
    Eval = "R = (catch backup_nif:file_digest(\"/etc/hostname\")), "
           "io:format(\"~p~n\", [R]), halt().",
    Out = os:cmd("erl -noshell -noinput -pa " ++ Ebin ++ " -eval '" ++ Eval ++ "' 2>&1"),
    ?assertNotEqual(nomatch, string:find(Out, "nif_not_loaded")),
    ?assertNotEqual(nomatch, string:find(Out, filename:join([Dir, "priv", "native", "backup_nif_"]))),
    ?assertNotEqual(nomatch, string:find(Out, "rebar3 compile")).

%% ---------------------------------------------------------------------------------------------

tmp_dir() ->
    Dir = filename:join(["/tmp", "zb-eunit-" ++ integer_to_list(erlang:unique_integer([positive]))]),
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    Dir.

tmp_file(Name, Data) ->
    File = filename:join(tmp_dir(), binary_to_list(Name)),
    ok = file:write_file(File, Data),
    File.
