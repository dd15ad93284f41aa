%% @doc zotonic_host: the render entries z_render / z_template recorded in a context.
%% @end

-module(zotonic_host_render).

-export([add/2, entries/1]).

% Zotonic's API as Zotonic exports it (or called by name: supervisors, observers); nothing
% here calls it directly.
-ignore_xref([entries/1]).

-define(KEY, zotonic_host_render).

-spec add(term(), z:context()) -> z:context().
add(Entry, Context) ->
    z_context:set(?KEY, z_context:get(?KEY, Context, []) ++ [Entry], Context).

%% @doc What was rendered into this context, oldest first.
-spec entries(z:context()) -> [term()].
entries(Context) ->
    z_context:get(?KEY, Context, []).
