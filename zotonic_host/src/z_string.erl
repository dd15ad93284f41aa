%% @doc zotonic_host: the string helpers of Zotonic's z_string that modules use.
%% @end

-module(z_string).

-export([truncatechars/2]).

%% @doc At most N characters, with an ellipsis when cut.
-spec truncatechars(binary() | string() | undefined, non_neg_integer()) -> binary().
truncatechars(undefined, _N) -> <<>>;
truncatechars(S, N) ->
    B = z_convert:to_binary(S),
    case string:length(B) > N of
        true -> unicode:characters_to_binary([string:slice(B, 0, max(0, N - 1)), <<"…"/utf8>>]);
        false -> B
    end.
