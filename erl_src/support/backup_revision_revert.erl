%% @doc Reverting a resource to one of its revisions, as Zotonic's mod_backup does: the props
%% (as an import, so a deleted resource comes back with its id), its "gone" entry dropped, its
%% edges as they were then (the edge log replayed backwards, deleted dependent resources
%% recovered when asked) and the medium record of that time (from the medium log).
%% @end

%% Copyright 2026 The zotonic_mod_backup authors
%%
%% Licensed under the Apache License, Version 2.0 (the "License");
%% you may not use this file except in compliance with the License.
%% You may obtain a copy of the License at
%%
%%     http://www.apache.org/licenses/LICENSE-2.0
%%
%% Unless required by applicable law or agreed to in writing, software
%% distributed under the License is distributed on an "AS IS" BASIS,
%% WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
%% See the License for the specific language governing permissions and
%% limitations under the License.

-module(backup_revision_revert).

-export([
    revert_resource/4
]).

-include_lib("zotonic_core/include/zotonic.hrl").

%% Edge-log entries this many seconds older than a revision still belong to it (the revision
%% row is written after the edges of the same save).
-define(EDGE_REVERT_SLACK, 2).

%% A medium record deleted up to MIN seconds before a revision belongs to it; when none
%% matches, one deleted up to MAX seconds before is taken.
-define(MEDIUM_REVERT_MIN, 2).
-define(MEDIUM_REVERT_MAX, 15).

%% @doc Revert a resource to a revision: its props (as an import, so a deleted resource comes
%% back with its id), its "gone" entry dropped, the edges as they were then (replaying the edge
%% log backwards) and the medium record of that time.
-spec revert_resource(RscId, RevisionId, Options, Context) -> ok | {error, Reason} when
    RscId :: m_rsc:resource_id(),
    RevisionId :: integer() | binary(),
    Options :: [ m_backup_revision:revert_option() ],
    Context :: z:context(),
    Reason :: invalid | enoent | badarg | eacces | term().
revert_resource(RscId, RevId, Options, Context) ->
    case backup_revision_read:get_revision(RevId, Context) of
        {ok, #{ <<"rsc_id">> := RscId, <<"data">> := Props, <<"created">> := Created }} when is_map(Props) ->
            case m_rsc_update:update(RscId, Props, [ is_import ], Context) of
                {ok, _} ->
                    _ = m_rsc_gone:delete(RscId, Context),
                    ok = revert_edges(RscId, Options, Created, Context),
                    _ = revert_medium(RscId, Created, Context),
                    z_depcache:flush(RscId, Context),
                    ok;
                {error, _} = Error ->
                    Error
            end;
        {ok, _} ->
            {error, invalid};
        {error, _} = Error ->
            Error
    end.

%% The edges of the resource as they were at Created: every logged change since then undone,
%% newest first, so the oldest change of an edge decides its state.
revert_edges(RscId, Options, Created, Context) ->
    Since = z_datetime:prev_second(Created, ?EDGE_REVERT_SLACK),
    Outgoing = case lists:member(outgoing_edges, Options) of
        true -> edge_log("subject_id", RscId, Since, Context);
        false -> []
    end,
    Incoming = case lists:member(incoming_edges, Options) of
        true -> edge_log("object_id", RscId, Since, Context);
        false -> []
    end,
    Undo = lists:foldl(
        fun({_Id, S, P, O, true}, Acc) -> Acc#{ {S, P, O} => delete };
           ({_Id, S, P, O, false}, Acc) -> Acc#{ {S, P, O} => insert }
        end,
        #{},
        lists:reverse(lists:keysort(1, Outgoing ++ Incoming))),
    IsDependent = lists:member(dependent, Options),
    maps:foreach(
        fun({S, P, O}, delete) ->
                _ = m_edge:delete(S, P, O, Context);
           ({S, P, O}, insert) ->
                _ = revert_edge_insert(S, P, O, IsDependent, Options, Context)
        end,
        Undo),
    ok.

edge_log(Column, RscId, Since, Context) ->
    z_db:q(["
        select id, subject_id, predicate, object_id, is_insert
        from backup_edge_log
        where ", Column, " = $1
          and timestamp >= $2
        order by id desc"],
        [ RscId, Since ], Context).

revert_edge_insert(S, P, O, IsDependent, Options, Context) ->
    case {m_rsc:exists(S, Context), m_rsc:exists(O, Context)} of
        {true, true} ->
            m_edge:insert(S, P, O, Context);
        {true, false} when IsDependent ->
            case revert_if_dependent(O, Options, Context) of
                ok -> m_edge:insert(S, P, O, Context);
                {error, _} = Error -> Error
            end;
        _ ->
            {error, enoent}
    end.

%% A deleted object comes back (at its newest revision) only when it was a dependent
%% resource, one that lives by the edges to it.
revert_if_dependent(RscId, Options, Context) ->
    case backup_revision_read:newest_revision(RscId, Context) of
        {ok, RevId, Props} ->
            case is_dependent(Props) of
                true ->
                    Options1 = [ Opt || Opt <- Options, Opt =/= dependent ],
                    revert_resource(RscId, RevId, Options1, Context);
                false ->
                    {error, not_dependent}
            end;
        undefined ->
            {error, enoent};
        {error, _} = Error ->
            Error
    end.

is_dependent(#{ <<"is_dependent">> := IsDependent }) -> z_convert:to_bool(IsDependent);
is_dependent(Props) when is_list(Props) -> z_convert:to_bool(proplists:get_value(is_dependent, Props, false));
is_dependent(_) -> false.

%% The medium record that best matches the time of the revision: the oldest one not deleted
%% before it, else one deleted shortly before it.
revert_medium(RscId, Created, Context) ->
    Sql = "
        select *
        from backup_medium_log
        where rsc_id = $1
          and (medium_deleted is null or medium_deleted >= $2)
        order by medium_created
        limit 1",
    case z_db:qmap_row(Sql, [ RscId, z_datetime:prev_second(Created, ?MEDIUM_REVERT_MIN) ], Context) of
        {ok, Log} ->
            restore_medium(Log, Context);
        {error, _} ->
            case z_db:qmap_row(Sql, [ RscId, z_datetime:prev_second(Created, ?MEDIUM_REVERT_MAX) ], Context) of
                {ok, Log} -> restore_medium(Log, Context);
                {error, _} = Error -> Error
            end
    end.

restore_medium(#{ <<"rsc_id">> := RscId, <<"props">> := Medium, <<"medium_deleted">> := Deleted }, Context)
    when is_map(Medium) ->
    case m_media:get(RscId, Context) of
        Current when Current =:= Medium, Deleted =:= undefined ->
            ok;
        undefined ->
            m_media:recover_medium(Medium, Context);
        _Other ->
            _ = m_media:delete(RscId, Context),
            m_media:recover_medium(Medium, Context)
    end;
restore_medium(_Log, _Context) ->
    {error, badarg}.
