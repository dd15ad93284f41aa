%% @doc Encrypted backup files (`.enc', format "Z1"): the module of Zotonic's own mod_backup,
%% with the same name and functions (`zotonic decrypt' and sites call it), and the same format,
%% so each side reads what the other wrote.
%%
%% The format: `"Z1"', the PBKDF2 iteration count (u32 little-endian), 16 bytes of salt, then
%% AES-256-CFB8 over a 32-byte password check followed by the content. The work runs in Rust
%% (a backup_nif job on its own thread, never a scheduler); output goes to `Out ++ ".tmp"' and
%% is renamed into place when complete, so a failed call leaves no partial file behind.
%%
%% Z1 has no MAC. So encrypt_file/3 also returns an HMAC-SHA256 of the written file (keyed by
%% HKDF-SHA256 from the Z1 key material, so only the password holder can make one), which
%% backup.json keeps under `<part>_hmac'; decrypt_file/4 checks it over the whole stored file
%% before decrypting anything.
%%
%% `password_encrypt/2,3', `password_decrypt/2,3' and `is_encrypted/1' have the stock
%% signatures and results (`{ok, OutFile}', `{error, wrong_password | no_password | bad_prefix
%% | eof | no_outfile | {infile, Posix} | {outfile, Posix}}'); `encrypt_file/3' and
%% `decrypt_file/3' are the module's own, returning the sha256 and size of what they wrote and
%% errors with a message.
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

-module(backup_file_crypto).

-export([
    is_encrypted/1,
    password_encrypt/2,
    password_encrypt/3,
    password_decrypt/2,
    password_decrypt/3,
    encrypt_file/3,
    decrypt_file/3,
    decrypt_file/4,
    file_hmac/2
]).

%% The stock module's API, for sites and Zotonic's launcher.
-ignore_xref([password_encrypt/2, password_encrypt/3]).
%% The module's own API beside it, for operators on the node (decrypt a file, show its HMAC).
-ignore_xref([decrypt_file/3, file_hmac/2]).

-export_type([password/0, result/0, error_reason/0, stock_error/0]).

-type password() :: binary() | string().
-type result() :: {ok, #{sha256 := binary(), size := non_neg_integer(), hmac => binary()}}
                | {error, {error_reason(), #{message := binary(), path => binary()}}}.
%% `wrong_password', `bad_encrypted_file' (not Z1, truncated header, iteration count of
%% 20,000,000 or more), `hmac_mismatch' (the stored file is not the one its HMAC was made of),
%% `no_password', or a POSIX reason such as `enoent' or `enospc'.
-type error_reason() :: wrong_password | bad_encrypted_file | hmac_mismatch | no_password | atom().

%% The errors of the stock functions, as Zotonic's `zotonic decrypt' reports them.
-type stock_error() :: no_password | no_outfile | wrong_password | bad_prefix | eof
                     | {infile, file:posix() | atom()} | {outfile, file:posix() | atom()}.

%% @doc Encrypt File into File ++ ".enc" (stock API).
-spec password_encrypt(File, Password) -> {ok, OutFile} | {error, stock_error()} when
    File :: file:filename_all(),
    Password :: password() | undefined,
    OutFile :: file:filename_all().
password_encrypt(File, Password) ->
    password_encrypt(File, append(File, ".enc"), Password).

%% @doc Encrypt InFile into OutFile (stock API). Returns OutFile as given.
-spec password_encrypt(InFile, OutFile, Password) -> {ok, OutFile} | {error, stock_error()} when
    InFile :: file:filename_all(),
    OutFile :: file:filename_all(),
    Password :: password() | undefined.
password_encrypt(InFile, OutFile, Password) ->
    stock_result(encrypt_file(InFile, OutFile, Password), InFile, OutFile).

%% @doc Decrypt a ".enc" file into the same name without ".enc" (stock API);
%% `{error, no_outfile}' for other names.
-spec password_decrypt(File, Password) -> {ok, OutFile} | {error, stock_error()} when
    File :: file:filename_all(),
    Password :: password() | undefined,
    OutFile :: file:filename_all().
password_decrypt(File, Password) ->
    case is_encrypted(File) of
        true -> password_decrypt(File, filename:rootname(File), Password);
        false -> {error, no_outfile}
    end.

%% @doc Decrypt InFile into OutFile (stock API). A wrong password gives
%% `{error, wrong_password}' and no OutFile.
-spec password_decrypt(InFile, OutFile, Password) -> {ok, OutFile} | {error, stock_error()} when
    InFile :: file:filename_all(),
    OutFile :: file:filename_all(),
    Password :: password() | undefined.
password_decrypt(InFile, OutFile, Password) ->
    stock_result(decrypt_file(InFile, OutFile, Password), InFile, OutFile).

%% @doc Encrypt InFile into OutFile (conventionally `InFile ++ ".enc"') with fresh salt and
%% iteration count. Returns the sha256 (lower-case hex), size and HMAC-SHA256 (hex) of the
%% encrypted file, as backup.json records them. InFile is left in place.
-spec encrypt_file(InFile, OutFile, Password) -> result() when
    InFile :: file:filename_all(),
    OutFile :: file:filename_all(),
    Password :: password() | undefined.
encrypt_file(InFile, OutFile, Password) ->
    with_password(Password, fun(Pw) -> run(fun(Ref) -> backup_nif:encrypt_file_start(name(InFile), name(OutFile), Pw, Ref, undefined) end) end).

%% @doc Decrypt InFile into OutFile. The password is checked before OutFile is created:
%% a wrong one gives `{error, {wrong_password, _}}' and no output. Returns the sha256 and size
%% of the decrypted file.
-spec decrypt_file(InFile, OutFile, Password) -> result() when
    InFile :: file:filename_all(),
    OutFile :: file:filename_all(),
    Password :: password() | undefined.
decrypt_file(InFile, OutFile, Password) ->
    with_password(Password, fun(Pw) -> run(fun(Ref) -> backup_nif:decrypt_file_start(name(InFile), name(OutFile), Pw, Ref, undefined) end) end).

%% @doc decrypt_file/3 that, given `#{hmac => Hex}' (the HMAC backup.json recorded), first
%% checks the password and then reads the whole stored file to verify the HMAC: on a mismatch
%% `{error, {hmac_mismatch, _}}' and nothing is decrypted. Without `hmac' it is decrypt_file/3.
-spec decrypt_file(InFile, OutFile, Password, Options) -> result() when
    InFile :: file:filename_all(),
    OutFile :: file:filename_all(),
    Password :: password() | undefined,
    Options :: #{hmac => binary()}.
decrypt_file(InFile, OutFile, Password, #{hmac := Hmac}) when is_binary(Hmac) ->
    with_password(Password, fun(Pw) -> run(fun(Ref) -> backup_nif:decrypt_verified_start(name(InFile), name(OutFile), Pw, Hmac, Ref, undefined) end) end);
decrypt_file(InFile, OutFile, Password, #{}) ->
    decrypt_file(InFile, OutFile, Password).

%% @doc The HMAC-SHA256 (hex) of a stored `.enc' file, as encrypt_file/3 returned it when the
%% file was written; the password is checked first.
-spec file_hmac(File, Password) -> {ok, binary()} | {error, {error_reason(), map()}} when
    File :: file:filename_all(),
    Password :: password() | undefined.
file_hmac(File, Password) ->
    with_password(Password, fun(Pw) ->
        case run(fun(Ref) -> backup_nif:file_hmac_start(name(File), Pw, Ref, undefined) end) of
            {ok, #{hmac := Hmac}} -> {ok, Hmac};
            {error, _} = Error -> Error
        end
    end).

%% @doc True when the file name has the `.enc' extension of encrypted backup files.
-spec is_encrypted(Filename) -> boolean() when
    Filename :: file:filename_all().
is_encrypted(Filename) ->
    case filename:extension(Filename) of
        <<".enc">> -> true;
        ".enc" -> true;
        _ -> false
    end.

%% ---------------------------------------------------------------------------------------------

with_password(undefined, _Fun) ->
    no_password();
with_password(<<>>, _Fun) ->
    no_password();
with_password([], _Fun) ->
    no_password();
with_password(Password, Fun) when is_binary(Password) ->
    Fun(Password);
with_password(Password, Fun) when is_list(Password) ->
    case unicode:characters_to_binary(Password) of
        Bin when is_binary(Bin) -> Fun(Bin);
        _ -> {error, {einval, #{message => <<"password is not valid unicode">>}}}
    end.

%% Encryption runs at about 45 MB/s: a job on a Rust thread, never a scheduler.
run(StartFun) ->
    backup_job:run(StartFun, infinity).

name(Name) when is_binary(Name) -> Name;
name(Name) -> unicode:characters_to_binary(Name).

no_password() ->
    {error, {no_password, #{message => <<"no backup encryption password is set">>}}}.

%% The stock functions' results: the output name, or the reasons Zotonic's module gives.
stock_result({ok, _}, _InFile, OutFile) ->
    {ok, OutFile};
stock_result({error, {Reason, Info}}, InFile, _OutFile) ->
    {error, stock_reason(Reason, Info, InFile)}.

stock_reason(no_password, _Info, _InFile) -> no_password;
stock_reason(wrong_password, _Info, _InFile) -> wrong_password;
stock_reason(bad_encrypted_file, #{ message := <<"truncated", _/binary>> }, _InFile) -> eof;
stock_reason(bad_encrypted_file, _Info, _InFile) -> bad_prefix;
stock_reason(Reason, Info, InFile) ->
    case maps:get(path, Info, undefined) =:= name(InFile) of
        true -> {infile, Reason};
        false -> {outfile, Reason}
    end.

append(File, Ext) when is_binary(File) -> <<File/binary, (list_to_binary(Ext))/binary>>;
append(File, Ext) -> File ++ Ext.
