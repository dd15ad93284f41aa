%% @doc Cross-checks of the Z1 encrypted-file format between the Rust implementation (NIF and
%% the zbackup CLI) and an independent Erlang reference written here from the contract text
%% (ZOTONIC_CONTRACT.md section 9) with OTP's crypto. Zotonic itself cannot run here, so the
%% reference decrypts the way Zotonic's backup_file_crypto does: read the 22-byte header, refuse
%% iteration counts of 20,000,000 or more, derive IV and key with PBKDF2, decrypt and compare
%% the 32-byte password check, then stream-decrypt the rest with one CFB8 state in blocks of
%% 100000 bytes.
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

-module(backup_file_crypto_tests).

-include_lib("eunit/include/eunit.hrl").

%% The reference vector; the same bytes are checked in native/backup_core/src/crypto/tests.rs.
%% Made by a third implementation (Python hashlib/hmac + `openssl enc -aes-256-cfb8').
-define(VECTOR_PASSWORD, <<"correct horse battery staple">>).
-define(VECTOR_ITERATIONS, 1000).
-define(VECTOR_PLAIN_LINE, <<"Zotonic backup Z1 test vector.\n">>).
-define(VECTOR_FILE_HEX, <<"5a31e8030000000102030405060708090a0b0c0d0e0f296e5166b4ffab32698afbb487c4a3bb1e82a9c8c1373ca1018a2d86dd769f1805046d74fe0a7093c7e32988fcc3fa62c7537167b16e368b61441fb097214d774f35be6963068e60dd1bd439fb90b64b077147dedea842b22c5f3d60ffd590b9e00082ff376e45e2415a7d4cfd9a71d1d156e8169d42771df839396f4a">>).
-define(VECTOR_FILE_SHA256, <<"2c69adf4e36fe541c2f976373a4d075f43ae907982c67c9756f48b62fcb4a71e">>).

-define(MAX_ITER, 20000000).

%% ---------------------------------------------------------------------------------------------
%% The reference implementation, from the contract text.

ref_encrypt(Plain, Password, Salt, Iter) when byte_size(Salt) =:= 16 ->
    {IV, Key} = ref_derive(Password, Salt, Iter),
    Check = crypto:mac(hmac, sha256, Password, <<Salt/binary, Password/binary>>),
    Body = crypto:crypto_one_time(aes_256_cfb8, Key, IV, <<Check/binary, Plain/binary>>, true),
    <<"Z1", Iter:32/little-unsigned, Salt/binary, Body/binary>>.

ref_derive(Password, Salt, Iter) ->
    <<IV:16/binary, Key:32/binary>> = crypto:pbkdf2_hmac(sha256, Password, Salt, Iter, 48),
    {IV, Key}.

%% Decrypts the way Zotonic's password_decrypt does, on a file.
ref_decrypt_file(File, Password) ->
    {ok, In} = file:open(File, [read, binary, raw]),
    try
        case file:read(In, 22) of
            {ok, <<"Z1", Iter:32/little-unsigned, Salt:16/binary>>} when Iter < ?MAX_ITER ->
                {IV, Key} = ref_derive(Password, Salt, Iter),
                State = crypto:crypto_init(aes_256_cfb8, Key, IV, [{encrypt, false}]),
                Check = crypto:mac(hmac, sha256, Password, <<Salt/binary, Password/binary>>),
                case file:read(In, 32) of
                    {ok, Enc} ->
                        case crypto:crypto_update(State, Enc) of
                            Check -> {ok, ref_stream(In, State, [])};
                            _ -> {error, wrong_password}
                        end;
                    eof ->
                        {error, eof}
                end;
            _ ->
                {error, bad_prefix}
        end
    after
        file:close(In)
    end.

ref_stream(In, State, Acc) ->
    case file:read(In, 100000) of
        {ok, Data} -> ref_stream(In, State, [crypto:crypto_update(State, Data) | Acc]);
        eof -> iolist_to_binary(lists:reverse([crypto:crypto_final(State) | Acc]))
    end.

%% ---------------------------------------------------------------------------------------------
%% Fixtures

tmpdir() ->
    Dir = filename:join(["/tmp", "backup_crypto_tests-" ++ integer_to_list(erlang:unique_integer([positive]))]),
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    Dir.

rm_rf(Dir) ->
    ok = file:del_dir_r(Dir).

with_dir(Fun) ->
    Dir = tmpdir(),
    try Fun(Dir) after rm_rf(Dir) end.

%% A test of up to Seconds that runs Fun(Dir) in a fresh directory.
in_dir(Seconds, Fun) ->
    {timeout, Seconds, fun() -> with_dir(Fun) end}.

%% Bytes written as Dir/x.enc and decrypted by the NIF into Dir/x with Password: its result.
nif_decrypt(Dir, Bytes, Password) ->
    Enc = filename:join(Dir, "x.enc"),
    ok = file:write_file(Enc, Bytes),
    backup_file_crypto:decrypt_file(Enc, filename:join(Dir, "x"), Password).

%% A file of Size random bytes encrypted by the Erlang reference (random password and salt,
%% Zotonic's iteration count) as Dir/Name.enc: {Password, Data, Enc, Out}, Out the plain file's
%% name Dir/Name.
ref_encrypted_file(Dir, Name, Size) ->
    Password = random_password(),
    Data = plain(Size),
    Enc = filename:join(Dir, Name ++ ".enc"),
    Salt = crypto:strong_rand_bytes(16),
    ok = file:write_file(Enc, ref_encrypt(Data, Password, Salt, zotonic_like_iterations())),
    {Password, Data, Enc, filename:join(Dir, Name)}.

plain(Size) ->
    crypto:strong_rand_bytes(Size).

hex(Bin) ->
    % binary:encode_hex/2 (lowercase) is OTP 26+; we support OTP 25.
    << <<(hex_digit(N))>> || <<N:4>> <= Bin >>.

hex_digit(N) when N < 10 -> $0 + N;
hex_digit(N) -> $a + N - 10.

zotonic_like_iterations() ->
    600000 + rand:uniform(65535).

vector_salt() ->
    list_to_binary(lists:seq(0, 15)).

vector_plain() ->
    binary:copy(?VECTOR_PLAIN_LINE, 3).

zbackup() ->
    Ebin = filename:dirname(code:which(backup_nif)),
    Candidates = [
        filename:join([code:priv_dir(zotonic_mod_backup), "native", "zbackup"]),
        filename:join([filename:dirname(Ebin), "priv", "native", "zbackup"])
    ],
    hd([C || C <- Candidates, filelib:is_regular(C)] ++ [missing_zbackup]).

run_zbackup(Args, Password) ->
    Port = open_port({spawn_executable, zbackup()},
                     [{args, Args}, {env, [{"ZBACKUP_PASSWORD", binary_to_list(Password)}]},
                      exit_status, stderr_to_stdout, binary, use_stdio]),
    collect(Port, <<>>).

collect(Port, Acc) ->
    receive
        {Port, {data, D}} -> collect(Port, <<Acc/binary, D/binary>>);
        {Port, {exit_status, S}} -> {S, Acc}
    after 120000 -> {timeout, Acc}
    end.

%% ---------------------------------------------------------------------------------------------
%% Tests

erlang_reference_reproduces_the_fixed_vector_test() ->
    Enc = ref_encrypt(vector_plain(), ?VECTOR_PASSWORD, vector_salt(), ?VECTOR_ITERATIONS),
    ?assertEqual(?VECTOR_FILE_HEX, hex(Enc)),
    ?assertEqual(?VECTOR_FILE_SHA256, hex(crypto:hash(sha256, Enc))).

fixed_vector_decrypts_with_the_nif_and_the_reference_test() ->
    with_dir(fun(Dir) ->
        Enc = filename:join(Dir, "vector.enc"),
        Out = filename:join(Dir, "vector"),
        ok = file:write_file(Enc, binary:decode_hex(?VECTOR_FILE_HEX)),
        ?assertEqual({ok, vector_plain()}, ref_decrypt_file(Enc, ?VECTOR_PASSWORD)),
        {ok, #{sha256 := Sha, size := Size}} = backup_file_crypto:decrypt_file(Enc, Out, ?VECTOR_PASSWORD),
        ?assertEqual({ok, vector_plain()}, file:read_file(Out)),
        ?assertEqual(hex(crypto:hash(sha256, vector_plain())), Sha),
        ?assertEqual(byte_size(vector_plain()), Size)
    end).

rust_encrypted_files_decrypt_with_the_erlang_reference_test_() ->
    in_dir(120, fun(Dir) ->
        Password = random_password(),
        lists:foreach(
            fun(Size) ->
                In = filename:join(Dir, "plain-" ++ integer_to_list(Size)),
                Enc = In ++ ".enc",
                Data = plain(Size),
                ok = file:write_file(In, Data),
                {ok, #{sha256 := Sha, size := EncSize}} = backup_file_crypto:encrypt_file(In, Enc, Password),
                {ok, EncBytes} = file:read_file(Enc),
                ?assertEqual(hex(crypto:hash(sha256, EncBytes)), Sha),
                ?assertEqual(byte_size(EncBytes), EncSize),
                ?assertEqual(22 + 32 + Size, EncSize),
                <<"Z1", Iter:32/little-unsigned, _/binary>> = EncBytes,
                ?assert(Iter > 600000 andalso Iter =< 665535),
                ?assertEqual({ok, Data}, ref_decrypt_file(Enc, Password)),
                ?assertEqual({error, wrong_password}, ref_decrypt_file(Enc, <<Password/binary, "x">>)),
                ?assertEqual(false, filelib:is_file(Enc ++ ".tmp"))
            end,
            [0, 1, 31, 32, 33, 100001, 3000000])
    end).

erlang_encrypted_file_decrypts_with_the_nif_test_() ->
    in_dir(60, fun(Dir) ->
        {Password, Data, Enc, Out} = ref_encrypted_file(Dir, "site-1.sql.gz", 1234567),
        {ok, #{sha256 := Sha, size := Size}} = backup_file_crypto:decrypt_file(Enc, Out, Password),
        ?assertEqual({ok, Data}, file:read_file(Out)),
        ?assertEqual(hex(crypto:hash(sha256, Data)), Sha),
        ?assertEqual(byte_size(Data), Size)
    end).

erlang_encrypted_file_decrypts_with_zbackup_cli_test_() ->
    in_dir(60, fun(Dir) ->
        {Password, Data, Enc, Out} = ref_encrypted_file(Dir, "config-site-1.tar.gz", 777777),
        {Status, Output} = run_zbackup(["decrypt", Enc], Password),
        ?assertEqual({0, true}, {Status, binary:match(Output, <<"sha256">>) =/= nomatch}),
        ?assertEqual(nomatch, binary:match(Output, Password)),
        ?assertEqual({ok, Data}, file:read_file(Out)),
        {Status2, Output2} = run_zbackup(["decrypt", Enc, Out ++ "-2"], <<"wrong">>),
        ?assertEqual(1, Status2),
        ?assertNotEqual(nomatch, binary:match(Output2, <<"wrong_password">>))
    end).

zbackup_encrypted_file_decrypts_with_the_erlang_reference_test_() ->
    in_dir(60, fun(Dir) ->
        Password = random_password(),
        Data = plain(54321),
        In = filename:join(Dir, "a.tar.gz"),
        Enc = In ++ ".enc",
        ok = file:write_file(In, Data),
        ?assertMatch({0, _}, run_zbackup(["encrypt", In, Enc], Password)),
        ?assertEqual({ok, Data}, ref_decrypt_file(Enc, Password))
    end).

wrong_password_is_refused_by_the_nif_without_output_test() ->
    with_dir(fun(Dir) ->
        Enc = ref_encrypt(<<"data">>, <<"right">>, vector_salt(), 1000),
        ?assertMatch({error, {wrong_password, #{message := _}}}, nif_decrypt(Dir, Enc, <<"wrong">>)),
        Out = filename:join(Dir, "x"),
        ?assertEqual(false, filelib:is_file(Out)),
        ?assertEqual(false, filelib:is_file(Out ++ ".tmp"))
    end).

flipped_password_check_byte_reads_as_wrong_password_test() ->
    with_dir(fun(Dir) ->
        <<Head:30/binary, B, Rest/binary>> = ref_encrypt(<<"data">>, <<"pw">>, vector_salt(), 1000),
        ?assertMatch({error, {wrong_password, _}},
                     nif_decrypt(Dir, <<Head/binary, (B bxor 1), Rest/binary>>, <<"pw">>))
    end).

iteration_count_of_twenty_million_is_refused_by_both_test() ->
    with_dir(fun(Dir) ->
        Salt = vector_salt(),
        ?assertMatch({error, {bad_encrypted_file, #{message := _}}},
                     nif_decrypt(Dir, <<"Z1", ?MAX_ITER:32/little-unsigned, Salt/binary, 0:256>>, <<"pw">>)),
        ?assertEqual({error, bad_prefix}, ref_decrypt_file(filename:join(Dir, "x.enc"), <<"pw">>))
    end).

truncated_header_is_a_bad_encrypted_file_test() ->
    with_dir(fun(Dir) ->
        ?assertMatch({error, {bad_encrypted_file, _}}, nif_decrypt(Dir, <<"Z1", 1, 2, 3>>, <<"pw">>))
    end).

missing_input_is_enoent_with_path_test() ->
    with_dir(fun(Dir) ->
        In = filename:join(Dir, "missing"),
        {error, {enoent, #{path := Path}}} = backup_file_crypto:encrypt_file(In, In ++ ".enc", <<"pw">>),
        ?assertEqual(unicode:characters_to_binary(In), Path)
    end).

empty_or_undefined_password_is_refused_test() ->
    ?assertMatch({error, {no_password, _}}, backup_file_crypto:encrypt_file("/nonexistent", "/nonexistent.enc", <<>>)),
    ?assertMatch({error, {no_password, _}}, backup_file_crypto:encrypt_file("/nonexistent", "/nonexistent.enc", undefined)),
    ?assertMatch({error, {no_password, _}}, backup_file_crypto:decrypt_file("/nonexistent.enc", "/nonexistent", "")).

%% Two key derivations at Zotonic's iteration count: over eunit's 5 s default on a busy machine.
string_password_equals_its_utf8_binary_test_() ->
    in_dir(60, fun(Dir) ->
        In = filename:join(Dir, "a"),
        ok = file:write_file(In, <<"hello">>),
        {ok, _} = backup_file_crypto:encrypt_file(In, In ++ ".enc", "p\x{e4}ss"),
        ?assertEqual({ok, <<"hello">>}, ref_decrypt_file(In ++ ".enc", <<"p", 16#c3, 16#a4, "ss">>))
    end).

%% The stock module's functions, as Zotonic's `zotonic decrypt' and sites call them: same
%% arities, `{ok, OutFile}' and the stock error terms.
stock_password_encrypt_and_decrypt_round_trip_with_stock_results_test_() ->
    in_dir(60, fun(Dir) ->
        In = iolist_to_binary(filename:join(Dir, "site-1.sql.gz")),
        Enc = <<In/binary, ".enc">>,
        Data = plain(300001),
        ok = file:write_file(In, Data),
        Password = random_password(),
        ?assertEqual({ok, Enc}, backup_file_crypto:password_encrypt(In, Password)),
        ?assertEqual({ok, Data}, ref_decrypt_file(Enc, Password)),
        ok = file:delete(In),
        ?assertEqual({error, wrong_password}, backup_file_crypto:password_decrypt(Enc, <<"nope">>)),
        ?assertEqual({error, enoent}, file:read_file_info(In)),
        ?assertEqual({ok, In}, backup_file_crypto:password_decrypt(Enc, Password)),
        ?assertEqual({ok, Data}, file:read_file(In)),
        Out = filename:join(Dir, "other"),
        ?assertEqual({ok, Out}, backup_file_crypto:password_decrypt(Enc, Out, binary_to_list(Password))),
        ?assertEqual({ok, Data}, file:read_file(Out)),
        Enc2 = filename:join(Dir, "explicit.enc"),
        ?assertEqual({ok, Enc2}, backup_file_crypto:password_encrypt(In, Enc2, Password)),
        ?assertEqual({ok, Data}, ref_decrypt_file(Enc2, Password))
    end).

stock_errors_are_the_stock_terms_test_() ->
    in_dir(60, fun(Dir) ->
        In = filename:join(Dir, "a.sql.gz"),
        ok = file:write_file(In, <<"x">>),
        ?assertEqual({error, no_password}, backup_file_crypto:password_encrypt(In, In ++ ".enc", undefined)),
        ?assertEqual({error, no_password}, backup_file_crypto:password_encrypt(In, In ++ ".enc", <<>>)),
        ?assertEqual({error, no_password}, backup_file_crypto:password_decrypt(In ++ ".enc", In, "")),
        ?assertEqual({error, no_outfile}, backup_file_crypto:password_decrypt(In, <<"pw">>)),
        ?assertEqual({error, {infile, enoent}},
                     backup_file_crypto:password_decrypt(filename:join(Dir, "missing.enc"), <<"pw">>)),
        NotZ1 = filename:join(Dir, "b.enc"),
        ok = file:write_file(NotZ1, binary:copy(<<"x">>, 100)),
        ?assertEqual({error, bad_prefix}, backup_file_crypto:password_decrypt(NotZ1, <<"pw">>)),
        {ok, _} = backup_file_crypto:password_encrypt(In, In ++ ".enc", <<"pw">>),
        ?assertMatch({error, {outfile, _}},
                     backup_file_crypto:password_decrypt(In ++ ".enc", filename:join([Dir, "no", "dir"]), <<"pw">>))
    end).

%% `bin/zotonic decrypt PASSWORD FILE [OUT]' runs Zotonic's launcher command in a VM of its
%% own, outside the node, with the apps' ebin dirs on the code path: the host's
%% zotonic_cmd_decrypt does what Zotonic's does (backup_file_crypto:password_decrypt/2,3 with a
%% binary password) in a fresh `erl'.
zotonic_decrypt_command_in_a_fresh_vm_writes_the_plain_file_test_() ->
    in_dir(120, fun(Dir) ->
        In = filename:join(Dir, "site-2.tar.gz"),
        Data = plain(200000),
        ok = file:write_file(In, Data),
        Password = random_password(),
        {ok, _} = backup_file_crypto:encrypt_file(In, In ++ ".enc", Password),
        ok = file:delete(In),
        Paths = lists:usort([ filename:dirname(code:which(M)) || M <- [backup_file_crypto, zotonic_cmd_decrypt, z_convert] ]),
        Run = fun(Args) ->
            Eval = io_lib:format("zotonic_cmd_decrypt:run(~p), halt().", [Args]),
            os:cmd(lists:flatten(["erl -noshell -noinput",
                                  [ [" -pa ", P] || P <- Paths ],
                                  " -eval '", Eval, "' 2>&1"]))
        end,
        Wrong = Run(["wrong-password", In ++ ".enc"]),
        ?assertNotEqual(nomatch, string:find(Wrong, "Wrong password")),
        ?assertEqual({error, enoent}, file:read_file_info(In)),
        Ok = Run([binary_to_list(Password), In ++ ".enc"]),
        ?assertEqual(nomatch, string:find(Ok, "ERROR")),
        ?assertEqual({ok, Data}, file:read_file(In)),
        Out = filename:join(Dir, "chosen-name"),
        _ = Run([binary_to_list(Password), In ++ ".enc", Out]),
        ?assertEqual({ok, Data}, file:read_file(Out))
    end).

is_encrypted_follows_the_enc_extension_test() ->
    ?assert(backup_file_crypto:is_encrypted(<<"site-1.sql.gz.enc">>)),
    ?assert(backup_file_crypto:is_encrypted("site-1.tar.gz.enc")),
    ?assertNot(backup_file_crypto:is_encrypted(<<"site-1.sql.gz">>)).

%% A password like the ones mod_backup generates (letters, digits and punctuation).
random_password() ->
    Chars = <<"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789-!#%">>,
    << <<(binary:at(Chars, B rem byte_size(Chars)))>> || <<B>> <= crypto:strong_rand_bytes(24) >>.
