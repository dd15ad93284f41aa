%% @doc zotonic_host: the hashing helpers of Zotonic's z_crypto.
%% @end

-module(z_crypto).

-export([hex_sha2/1, hex_sha2_file/1]).

-spec hex_sha2(iodata()) -> binary().
hex_sha2(Value) ->
    string:lowercase(binary:encode_hex(crypto:hash(sha256, Value))).

%% @doc Lowercase hex sha256 of a file, read incrementally.
-spec hex_sha2_file(file:filename_all()) -> {ok, binary()} | {error, term()}.
hex_sha2_file(File) ->
    case file:open(File, [read, binary, raw, read_ahead]) of
        {ok, Fd} ->
            try {ok, string:lowercase(binary:encode_hex(hash_loop(Fd, crypto:hash_init(sha256))))}
            after file:close(Fd)
            end;
        {error, _} = Error ->
            Error
    end.

hash_loop(Fd, State) ->
    case file:read(Fd, 1048576) of
        {ok, Data} -> hash_loop(Fd, crypto:hash_update(State, Data));
        eof -> crypto:hash_final(State)
    end.
