%% @doc zotonic_host: the decisions Zotonic 1.0's controller_file (zotonic_mod_base) takes for a
%% GET, without HTTP: the dispatch rule's options are set in the request context, the file is
%% looked up with z_file_request in a context that has `path' set (service_available), then
%% `forbidden' asks z_controller_helper:is_authorized/2 and z_file_request:is_visible/2 with the
%% request context itself. `get/3' answers what the client would get.
%% @end
-module(controller_file).

-export([get/3]).

% Called by the suites (or the demo) only, as Zotonic's own API would be.
-ignore_xref([get/3]).

-include_lib("zotonic_core/include/zotonic.hrl").
-include_lib("zotonic_core/include/zotonic_file.hrl").

%% @doc GET of DispPath (the part of the URL the dispatch rule's `*' matched) with the options
%% of the dispatch rule: `{200, File}' (the file served), `{403, forbidden}' or
%% `{404, not_found}'.
-spec get(DispatchOptions, DispPath, Context) -> {200, file:filename_all()} | {403, forbidden} | {404, not_found} when
    DispatchOptions :: list(),
    DispPath :: binary(),
    Context :: z:context().
get(DispatchOptions, DispPath, Context0) ->
    Context = z_context:set([ Opt || {_, _} = Opt <- DispatchOptions ], Context0),
    case get_file_info(DispPath, Context) of
        {ok, Info} ->
            {IsAuthorized, Context1} = z_controller_helper:is_authorized(undefined, Context),
            case IsAuthorized andalso z_file_request:is_visible(Info, Context1) of
                true ->
                    {ok, File} = z_file_request:content_file(Info, Context1),
                    {200, File};
                false ->
                    {403, forbidden}
            end;
        {error, _} ->
            {404, not_found}
    end.

get_file_info(DispPath, Context) ->
    Path = case z_context:get(path, Context) of
        undefined -> rootless(DispPath);
        Configured -> rootless(z_convert:to_binary(Configured))
    end,
    z_file_request:lookup_file(Path, z_context:get(root, Context), undefined,
                               z_context:set(path, Path, Context)).

rootless(<<"/", Rest/binary>>) -> rootless(Rest);
rootless(B) -> B.
