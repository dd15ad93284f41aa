%% @doc zotonic_host: a recorder for Zotonic's z_render. Nothing is rendered: every call is
%% appended to the context (zotonic_host_render:entries/1) and to the site's render log
%% (zotonic_host:render_log/1), so tests can check what a controller or action asked for.
%% @end

-module(z_render).

-export([
    growl/2,
    growl/4,
    growl_error/2,
    update/3,
    replace/3,
    insert_top/3,
    wire/2,
    wire/3,
    dialog/4,
    dialog_close/1,
    add_script/2,
    make_postback/6
]).

% Called by the suites (or the demo) only, as Zotonic's own API would be.
-ignore_xref([growl/4, wire/3]).
% Zotonic's API as Zotonic exports it (or called by name: supervisors, observers); nothing
% here calls it directly.
-ignore_xref([add_script/2, dialog/4, dialog_close/1, insert_top/3, replace/3]).

-spec growl(term(), z:context()) -> z:context().
growl(Text, Context) -> record({growl, text(Text), notice, false}, Context).

-spec growl(term(), atom() | binary(), boolean(), z:context()) -> z:context().
growl(Text, Type, Stay, Context) -> record({growl, text(Text), z_convert:to_atom(Type), Stay}, Context).

-spec growl_error(term(), z:context()) -> z:context().
growl_error(Text, Context) -> record({growl, text(Text), error, true}, Context).

-spec update(binary() | string(), term(), z:context()) -> z:context().
update(TargetId, Content, Context) -> record({update, z_convert:to_binary(TargetId), Content}, Context).

-spec replace(binary() | string(), term(), z:context()) -> z:context().
replace(TargetId, Content, Context) -> record({replace, z_convert:to_binary(TargetId), Content}, Context).

-spec insert_top(binary() | string(), term(), z:context()) -> z:context().
insert_top(TargetId, Content, Context) -> record({insert_top, z_convert:to_binary(TargetId), Content}, Context).

-spec wire(list() | tuple(), z:context()) -> z:context().
wire(Actions, Context) -> record({wire, Actions}, Context).

-spec wire(binary() | string() | undefined, list() | tuple(), z:context()) -> z:context().
wire(TriggerId, Actions, Context) -> record({wire, TriggerId, Actions}, Context).

-spec dialog(term(), term(), list(), z:context()) -> z:context().
dialog(Title, Template, Vars, Context) -> record({dialog, text(Title), Template, Vars}, Context).

-spec dialog_close(z:context()) -> z:context().
dialog_close(Context) -> record(dialog_close, Context).

-spec add_script(iodata(), z:context()) -> z:context().
add_script(Script, Context) -> record({script, iolist_to_binary(Script)}, Context).

text(T) when is_binary(T) -> T;
text(T) -> try z_convert:to_binary(T) catch _:_ -> T end.

record(Entry, Context) ->
    ok = zotonic_host:log(Context, Entry),
    zotonic_host_render:add(Entry, Context).

%% @doc The JavaScript of a postback; the host encodes the postback as a readable term
%% (Zotonic pickles and signs it) so tests can decode it with binary_to_term/1 of the base64.
-spec make_postback(term(), term(), term(), term(), term(), z:context()) -> {iodata(), term()}.
make_postback(undefined, _EventType, _TriggerId, _TargetId, _Delegate, _Context) ->
    {[], []};
make_postback(Tag, EventType, TriggerId, TargetId, Delegate, _Context) ->
    Pickled = base64:encode(term_to_binary({Tag, EventType, TriggerId, TargetId, Delegate})),
    {[<<"z_queue_postback(">>, js_arg(TriggerId), <<", '">>, Pickled, <<"');">>], Pickled}.

js_arg(undefined) -> <<"undefined">>;
js_arg(Id) -> [$', z_convert:to_binary(Id), $'].
