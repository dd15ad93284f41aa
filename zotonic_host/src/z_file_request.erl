%% @doc zotonic_host: the part of Zotonic's z_file_request that controller_file uses for files
%% served by a module (`{root, [{module, M}]}'): the lookup asks `M:file_exists(Path, Context)'
%% and records `{module, M}' in the file's acls; `is_visible/2' then asks
%% `M:file_forbidden(z_context:get(path, Context), Context)' -- with the context of the request,
%% in which `path' is only set when the dispatch rule has a `path' option (so usually
%% `undefined'), exactly as Zotonic does. Files are not cached, resized or re-encoded.
%% @end
-module(z_file_request).

-export([lookup_file/4, is_visible/2, content_file/2]).

-include_lib("zotonic_core/include/zotonic.hrl").
-include_lib("zotonic_core/include/zotonic_file.hrl").
-include_lib("kernel/include/file.hrl").

-spec lookup_file(Path, Root, OptFilters, Context) -> {ok, #z_file_info{}} | {error, enoent} when
    Path :: binary(),
    Root :: list(),
    OptFilters :: term(),
    Context :: z:context().
lookup_file(Path, Root, _OptFilters, Context) ->
    locate(Root, Path, Context).

-spec is_visible(#z_file_info{}, z:context()) -> boolean().
is_visible(#z_file_info{ acls = Acls }, Context) ->
    lists:all(
        fun(Id) when is_integer(Id) -> z_acl:rsc_visible(Id, Context);
           ({module, Module}) -> not Module:file_forbidden(z_context:get(path, Context), Context)
        end,
        Acls).

-spec content_file(#z_file_info{}, z:context()) -> {ok, file:filename_all()} | {error, enoent}.
content_file(#z_file_info{ encodings = [{identity, [File]}] }, _Context) ->
    {ok, File};
content_file(#z_file_info{}, _Context) ->
    {error, enoent}.

locate([], _Path, _Context) ->
    {error, enoent};
locate([{module, Module} = M | Roots], Path, Context) ->
    case Module:file_exists(Path, Context) of
        {true, File} ->
            case file:read_file_info(File, [{time, universal}]) of
                {ok, #file_info{ type = regular, size = Size, mtime = MTime }} ->
                    {ok, #z_file_info{
                        modifiedUTC = MTime,
                        mime = <<"application/octet-stream">>,
                        size = Size,
                        acls = [M],
                        encodings = [{identity, [File]}]
                    }};
                _ ->
                    locate(Roots, Path, Context)
            end;
        false ->
            locate(Roots, Path, Context)
    end;
locate([_ | Roots], Path, Context) ->
    locate(Roots, Path, Context).
