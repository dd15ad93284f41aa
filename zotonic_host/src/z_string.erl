%% @doc zotonic_host: the string helpers of Zotonic's z_string that modules use.
%% @end

-module(z_string).

-export([truncatechars/2, to_lower/1, trim/1]).

% Zotonic's API as Zotonic exports it (or called by name: supervisors, observers); nothing
% here calls it directly.
-ignore_xref([to_lower/1, trim/1]).

%% @doc At most N characters, with an ellipsis when cut.
-spec truncatechars(binary() | string() | undefined, non_neg_integer()) -> binary().
truncatechars(undefined, _N) -> <<>>;
truncatechars(S, N) ->
    B = z_convert:to_binary(S),
    case string:length(B) > N of
        true -> unicode:characters_to_binary([string:slice(B, 0, max(0, N - 1)), <<"…"/utf8>>]);
        false -> B
    end.

-spec to_lower(iodata()) -> binary().
to_lower(S) -> string:lowercase(iolist_to_binary(S)).

-spec trim(iodata()) -> binary().
trim(S) -> string:trim(iolist_to_binary(S)).
