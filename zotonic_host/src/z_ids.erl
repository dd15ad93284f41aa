%% @doc zotonic_host: random ids and passwords as Zotonic's z_ids makes them.
%% @end

-module(z_ids).

-export([password/0]).

-define(CHARS, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789").
-define(SPECIAL, "!@#$%^&*()_+-=").

%% @doc A random alphanumeric id of the given length.
-spec id(pos_integer()) -> binary().
id(Len) -> random_chars(?CHARS, Len).

%% @doc Readable random password: three groups of 5, one of 4 characters and 2 special ones.
-spec password() -> binary().
password() ->
    iolist_to_binary([id(5), $-, id(5), $-, id(5), $-, id(4), random_chars(?SPECIAL, 2)]).

random_chars(Chars, Len) ->
    N = length(Chars),
    list_to_binary([ lists:nth(B rem N + 1, Chars) || <<B>> <= crypto:strong_rand_bytes(Len) ]).
