%% @doc zotonic_host: the file helpers of Zotonic's z_filelib that modules use.
%% @end

-module(z_filelib).

-export([ensure_dir/1]).

-spec ensure_dir(file:filename_all()) -> ok | {error, term()}.
ensure_dir(Path) -> filelib:ensure_dir(Path).
