%% @doc zotonic_host: a recorder for Zotonic's z_template. render/3 logs the template and its
%% variables to the site's render log and returns a placeholder `<!-- template: Name -->'.
%% @end

-module(z_template).

-export([render/3]).

-spec render(term(), list() | map(), z:context()) -> iodata().
render(Template, Vars, Context) ->
    ok = zotonic_host:log(Context, {template, Template, Vars}),
    [<<"<!-- template: ">>, name(Template), <<" -->">>].

name({cat, T}) -> name(T);
name(T) when is_binary(T) -> T;
name(T) when is_list(T) -> unicode:characters_to_binary(T);
name(T) -> z_convert:to_binary(T).
