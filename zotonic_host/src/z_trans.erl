%% @doc zotonic_host: Zotonic's z_trans for #trans{} values (no translation tables: ?__ returns
%% the text itself).
%% @end

-module(z_trans).

-export([trans/2, translations/2, lookup_fallback/2, lookup_fallback/3]).

% Called by the suites (or the demo) only, as Zotonic's own API would be.
-ignore_xref([lookup_fallback/3]).
% Zotonic's API as Zotonic exports it (or called by name: supervisors, observers); nothing
% here calls it directly.
-ignore_xref([translations/2]).

-include_lib("zotonic_core/include/zotonic.hrl").

-spec trans(term(), z:context()) -> term().
trans(#trans{} = T, Context) -> lookup_fallback(T, Context);
trans(Text, _Context) -> Text.

-spec translations(term(), z:context()) -> #trans{} | term().
translations(#trans{} = T, _Context) -> T;
translations(Text, _Context) -> #trans{ tr = [{en, z_convert:to_binary(Text)}] }.

%% @doc The text in the context's language, else English, else the first one.
-spec lookup_fallback(term(), z:context()) -> term().
lookup_fallback(#trans{ tr = Tr }, Context) ->
    Lang = z_context:language(Context),
    case lists:keyfind(Lang, 1, Tr) of
        {_, T} -> T;
        false ->
            case lists:keyfind(en, 1, Tr) of
                {_, T} -> T;
                false -> case Tr of [{_, T} | _] -> T; [] -> undefined end
            end
    end;
lookup_fallback(Text, _Context) -> Text.

-spec lookup_fallback(term(), atom(), z:context()) -> term().
lookup_fallback(T, Lang, Context) -> lookup_fallback(T, Context#context{ language = [Lang] }).
