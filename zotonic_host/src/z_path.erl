%% @doc zotonic_host: Zotonic's z_path for a host site: the site dir, and the files dir
%% `<root>/data/sites/<site>/files' (Zotonic's data_dir layout) with `archive' for media.
%% @end

-module(z_path).

-export([
    site_dir/1,
    files_subdir_ensure/2,
    media_archive/1
]).

-include_lib("zotonic_core/include/zotonic.hrl").

-spec site_dir(z:context() | atom()) -> file:filename_all() | {error, bad_name}.
site_dir(#context{ site = Site }) -> site_dir(Site);
site_dir(Site) when is_atom(Site) ->
    case ets:lookup(zotonic_host_sites, Site) of
        [{_, #{ dirs := #{ site := Dir } }}] -> Dir;
        [] -> {error, bad_name}
    end.

-spec files_subdir(file:filename_all(), z:context()) -> file:filename_all() | {error, bad_name}.
files_subdir(SubDir, #context{ site = Site }) ->
    case ets:lookup(zotonic_host_sites, Site) of
        [{_, #{ dirs := #{ files := Dir } }}] -> filename:join(Dir, SubDir);
        [] -> {error, bad_name}
    end.

-spec files_subdir_ensure(file:filename_all(), z:context()) -> file:filename_all() | {error, term()}.
files_subdir_ensure(SubDir, Context) ->
    case files_subdir(SubDir, Context) of
        {error, _} = Error -> Error;
        Dir ->
            case z_filelib:ensure_dir(filename:join(Dir, ".empty")) of
                ok -> Dir;
                {error, _} = Error -> Error
            end
    end.

-spec media_archive(z:context()) -> file:filename_all() | {error, bad_name}.
media_archive(Context) -> files_subdir("archive", Context).
