%% @doc zotonic_host: the file helpers of Zotonic's z_filelib that modules use.
%% @end

-module(z_filelib).

-export([ensure_dir/1, os_filename/1, os_escape/1]).

% Zotonic's API as Zotonic exports it (or called by name: supervisors, observers); nothing
% here calls it directly.
-ignore_xref([os_escape/1, os_filename/1]).

-spec ensure_dir(file:filename_all()) -> ok | {error, term()}.
ensure_dir(Path) -> filelib:ensure_dir(Path).

%% @doc A filename quoted for the shell (single quotes), as Zotonic's os_filename/1.
-spec os_filename(file:filename_all() | undefined) -> string().
os_filename(undefined) -> "''";
os_filename(F) when is_binary(F) -> os_filename(unicode:characters_to_list(F));
os_filename(F) when is_atom(F) -> os_filename(atom_to_list(F));
os_filename(F) when is_list(F) -> [$' | lists:flatten(escape(F))] ++ "'".

-spec os_escape(iodata() | undefined) -> string().
os_escape(undefined) -> [];
os_escape(F) -> lists:flatten(escape(unicode:characters_to_list(iolist_to_binary(F)))).

escape([]) -> [];
escape([$' | Rest]) -> ["'\\''" | escape(Rest)];
escape([C | Rest]) -> [C | escape(Rest)].
