%% @doc zotonic_host: Zotonic's m_edge. Inserting or deleting an edge writes `edge' (whose trigger
%% fills `edge_log') and asks the edge log server to send the #edge_insert{} / #edge_delete{}
%% notifications, as Zotonic does. ACL: #acl_edge{} with the predicate name.
%% @end

-module(m_edge).

-export([
    insert/4,
    insert/5,
    delete/2,
    delete/4,
    delete/5,
    get_edges/2,
    objects/2,
    objects/3,
    subjects/2,
    subjects/3
]).

% Called by the suites (or the demo) only, as Zotonic's own API would be.
-ignore_xref([delete/2, delete/5, get_edges/2, insert/5, objects/2, objects/3, subjects/2, subjects/3]).

-include_lib("zotonic_core/include/zotonic.hrl").

-spec insert(m_rsc:resource(), m_rsc:resource(), m_rsc:resource(), z:context()) -> {ok, pos_integer()} | {error, term()}.
insert(Subject, Predicate, Object, Context) ->
    insert(Subject, Predicate, Object, [], Context).

%% @doc Insert an edge (or return the existing one). Options: seq, creator_id, created.
-spec insert(m_rsc:resource(), m_rsc:resource(), m_rsc:resource(), list(), z:context()) -> {ok, pos_integer()} | {error, term()}.
insert(Subject, Predicate, Object, Options, Context) ->
    case {m_rsc:rid(Subject, Context), m_predicate:name_to_id(Predicate, Context), m_rsc:rid(Object, Context)} of
        {undefined, _, _} -> {error, subject};
        {_, _, undefined} -> {error, object};
        {_, {error, _}, _} -> {error, {unknown_predicate, Predicate}};
        {SubjectId, {ok, PredId}, ObjectId} ->
            case z_db:q1("select id from edge where subject_id = $1 and object_id = $2 and predicate_id = $3",
                         [SubjectId, ObjectId, PredId], Context) of
                undefined ->
                    {ok, PredName} = m_predicate:id_to_name(PredId, Context),
                    case z_acl:is_allowed(insert, #acl_edge{ subject_id = SubjectId, predicate = PredName, object_id = ObjectId }, Context) of
                        true ->
                            CreatorId = proplists:get_value(creator_id, Options, z_acl:user(Context)),
                            Seq = proplists:get_value(seq, Options, 1000000),
                            Created = proplists:get_value(created, Options, calendar:universal_time()),
                            Result = z_db:equery("insert into edge (subject_id, object_id, predicate_id, seq, creator_id, created)
                                                  values ($1, $2, $3, $4, $5, $6) on conflict do nothing returning id",
                                                 [SubjectId, ObjectId, PredId, Seq, CreatorId, Created], Context),
                            z_edge_log_server:check(Context),
                            case Result of
                                {ok, 1, _, [{EdgeId}]} -> {ok, EdgeId};
                                {ok, 0, _, []} ->
                                    {ok, z_db:q1("select id from edge where subject_id = $1 and object_id = $2 and predicate_id = $3",
                                                 [SubjectId, ObjectId, PredId], Context)};
                                {error, _} = Error -> Error
                            end;
                        false ->
                            {error, eacces}
                    end;
                EdgeId ->
                    {ok, EdgeId}
            end
    end.

%% @doc Delete an edge by id.
-spec delete(pos_integer(), z:context()) -> ok | {error, term()}.
delete(EdgeId, Context) ->
    case get_triple(EdgeId, Context) of
        undefined -> ok;
        {SubjectId, PredName, ObjectId} -> delete(SubjectId, PredName, ObjectId, Context)
    end.

-spec delete(m_rsc:resource(), m_rsc:resource(), m_rsc:resource(), z:context()) -> ok | {error, term()}.
delete(Subject, Predicate, Object, Context) ->
    delete(Subject, Predicate, Object, [], Context).

-spec delete(m_rsc:resource(), m_rsc:resource(), m_rsc:resource(), list(), z:context()) -> ok | {error, term()}.
delete(Subject, Predicate, Object, _Options, Context) ->
    case {m_rsc:rid(Subject, Context), m_predicate:name_to_id(Predicate, Context), m_rsc:rid(Object, Context)} of
        {undefined, _, _} -> {error, subject};
        {_, _, undefined} -> {error, object};
        {_, {error, _}, _} -> {error, predicate};
        {SubjectId, {ok, PredId}, ObjectId} ->
            {ok, PredName} = m_predicate:id_to_name(PredId, Context),
            case z_acl:is_allowed(delete, #acl_edge{ subject_id = SubjectId, predicate = PredName, object_id = ObjectId }, Context) of
                true ->
                    _ = z_db:q("delete from edge where subject_id = $1 and object_id = $2 and predicate_id = $3",
                               [SubjectId, ObjectId, PredId], Context),
                    z_edge_log_server:check(Context),
                    ok;
                false ->
                    {error, eacces}
            end
    end.

-spec get_triple(pos_integer(), z:context()) -> {m_rsc:resource_id(), atom(), m_rsc:resource_id()} | undefined.
get_triple(EdgeId, Context) ->
    case z_db:q_row("select e.subject_id, r.name, e.object_id from edge e join rsc r on e.predicate_id = r.id
                     where e.id = $1", [EdgeId], Context) of
        {S, P, O} -> {S, binary_to_atom(P, utf8), O};
        undefined -> undefined
    end.

%% @doc All outgoing edges of a resource, grouped by predicate name.
-spec get_edges(m_rsc:resource(), z:context()) -> [{atom(), [proplists:proplist()]}].
get_edges(Subject, Context) ->
    case m_rsc:rid(Subject, Context) of
        undefined -> [];
        SubjectId ->
            Edges = z_db:assoc("select e.id, e.subject_id, e.predicate_id, p.name, e.object_id,
                                       e.seq, e.created, e.creator_id
                                from edge e join rsc p on p.id = e.predicate_id
                                where e.subject_id = $1
                                order by e.predicate_id, e.seq, e.id", [SubjectId], Context),
            [ {binary_to_atom(P, utf8), Es} || {P, Es} <- z_utils:group_proplists(name, Edges) ]
    end.

-spec objects(m_rsc:resource(), z:context()) -> [m_rsc:resource_id()].
objects(Subject, Context) ->
    [ Id || {Id} <- z_db:q("select distinct object_id from edge where subject_id = $1 order by object_id",
                           [m_rsc:rid(Subject, Context)], Context) ].

-spec objects(m_rsc:resource(), m_rsc:resource(), z:context()) -> [m_rsc:resource_id()].
objects(Subject, Predicate, Context) ->
    case m_predicate:name_to_id(Predicate, Context) of
        {ok, P} ->
            [ Id || {Id} <- z_db:q("select object_id from edge where subject_id = $1 and predicate_id = $2 order by seq, id",
                                   [m_rsc:rid(Subject, Context), P], Context) ];
        {error, _} -> []
    end.

-spec subjects(m_rsc:resource(), z:context()) -> [m_rsc:resource_id()].
subjects(Object, Context) ->
    [ Id || {Id} <- z_db:q("select distinct subject_id from edge where object_id = $1 order by subject_id",
                           [m_rsc:rid(Object, Context)], Context) ].

-spec subjects(m_rsc:resource(), m_rsc:resource(), z:context()) -> [m_rsc:resource_id()].
subjects(Object, Predicate, Context) ->
    case m_predicate:name_to_id(Predicate, Context) of
        {ok, P} ->
            [ Id || {Id} <- z_db:q("select subject_id from edge where object_id = $1 and predicate_id = $2 order by id",
                                   [m_rsc:rid(Object, Context), P], Context) ];
        {error, _} -> []
    end.
