%% @doc zotonic_host: the helpers of Zotonic's z_utils that modules use.
%% @end

-module(z_utils).

-export([
    name_for_site/2,
    assert/2,
    group_proplists/2
]).

% Zotonic's API as Zotonic exports it (or called by name: supervisors, observers); nothing
% here calls it directly.
-ignore_xref([assert/2]).

-include_lib("zotonic_core/include/zotonic.hrl").

%% @doc The registered name of a per-site process: `Name$Site'.
-spec name_for_site(atom(), atom() | z:context()) -> atom().
name_for_site(Name, #context{ site = Site }) -> name_for_site(Name, Site);
name_for_site(Name, Site) when is_atom(Site) ->
    list_to_atom(atom_to_list(Name) ++ [$$ | atom_to_list(Site)]).

-spec assert(boolean(), term()) -> ok.
assert(true, _) -> ok;
assert(false, Error) -> erlang:error(Error).

%% @doc Group proplists on the value of a key, keeping the order of first appearance.
-spec group_proplists(atom(), [proplists:proplist()]) -> [{term(), [proplists:proplist()]}].
group_proplists(Key, Rows) ->
    Keys = lists:foldl(
        fun(R, Acc) ->
            K = proplists:get_value(Key, R),
            case lists:member(K, Acc) of true -> Acc; false -> Acc ++ [K] end
        end, [], Rows),
    [ {K, [ R || R <- Rows, proplists:get_value(Key, R) =:= K ]} || K <- Keys ].
