%% @doc zotonic_host: a recorder for Zotonic's z_render. Nothing is rendered: every call is
%% appended to the site's render log (zotonic_host:render_log/1), so tests can check what a
%% controller or action asked for; the context comes back as it was.
%% @end

-module(z_render).

-export([
    growl/2,
    growl/4,
    growl_error/2,
    update/3,
    wire/2,
    wire/3,
    make_postback/6
]).

% Called by the suites (or the demo) only, as Zotonic's own API would be.
-ignore_xref([growl/4, wire/3]).

-spec growl(term(), z:context()) -> z:context().
growl(Text, Context) -> record({growl, text(Text), notice, false}, Context).

-spec growl(term(), atom() | binary(), boolean(), z:context()) -> z:context().
growl(Text, Type, Stay, Context) -> record({growl, text(Text), z_convert:to_atom(Type), Stay}, Context).

-spec growl_error(term(), z:context()) -> z:context().
growl_error(Text, Context) -> record({growl, text(Text), error, true}, Context).

-spec update(binary() | string(), term(), z:context()) -> z:context().
update(TargetId, Content, Context) -> record({update, z_convert:to_binary(TargetId), Content}, Context).

-spec wire(list() | tuple(), z:context()) -> z:context().
wire(Actions, Context) -> record({wire, Actions}, Context).

-spec wire(binary() | string() | undefined, list() | tuple(), z:context()) -> z:context().
wire(TriggerId, Actions, Context) -> record({wire, TriggerId, Actions}, Context).

text(T) when is_binary(T) -> T;
text(T) -> try z_convert:to_binary(T) catch _:_ -> T end.

record(Entry, Context) ->
    ok = zotonic_host:log(Context, Entry),
    Context.

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
