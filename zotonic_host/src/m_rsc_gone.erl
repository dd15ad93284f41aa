%% @doc zotonic_host: Zotonic's m_rsc_gone -- the register of deleted resources.
%% @end

-module(m_rsc_gone).

-export([gone/2, gone/3, is_gone/2, delete/2]).

% Called by the suites (or the demo) only, as Zotonic's own API would be.
-ignore_xref([gone/2, is_gone/2]).

-spec is_gone(m_rsc:resource_id() | undefined, z:context()) -> boolean().
is_gone(Id, Context) when is_integer(Id) ->
    z_db:q1("select count(*) from rsc_gone where id = $1", [Id], Context) =:= 1;
is_gone(_, _Context) ->
    false.

-spec gone(m_rsc:resource_id(), z:context()) -> {ok, integer()} | {error, term()}.
gone(Id, Context) ->
    gone(Id, undefined, Context).

%% @doc Copy a resource to rsc_gone, with the current user as the deleter.
-spec gone(m_rsc:resource_id(), m_rsc:resource_id() | undefined, z:context()) -> {ok, integer()} | {error, term()}.
gone(Id, NewId, Context) when is_integer(Id) ->
    case z_db:q_row("select is_authoritative, name, version, uri, creator_id, created from rsc where id = $1", [Id], Context) of
        undefined ->
            {error, notfound};
        {IsAuth, Name, Version, Uri, CreatorId, Created} ->
            IsPersonal = m_identity:is_user(Id, Context),
            _ = z_db:q("insert into rsc_gone (id, new_id, version, uri, name, is_authoritative, creator_id,
                                              modifier_id, created, modified, is_personal_data)
                        values ($1, $2, $3, $4, $5, $6, $7, $8, $9, now(), $10)
                        on conflict (id) do update set new_id = excluded.new_id, version = excluded.version,
                            modifier_id = excluded.modifier_id, modified = now(),
                            is_personal_data = excluded.is_personal_data",
                       [Id, NewId, Version, Uri, Name, IsAuth, CreatorId, z_acl:user(Context), Created, IsPersonal],
                       Context),
            {ok, Id}
    end.

-spec delete(m_rsc:resource_id(), z:context()) -> ok | {error, enoent}.
delete(Id, Context) ->
    case z_db:q("delete from rsc_gone where id = $1", [Id], Context) of
        1 -> ok;
        0 -> {error, enoent}
    end.
