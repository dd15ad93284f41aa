%% @doc Retention of the revision log, as Zotonic's mod_backup: revisions, edge log and medium
%% log older than revision_retention_months; revisions of users older than
%% user_revision_retention_days; all revisions of deleted personal-data resources gone longer
%% than user_deletion_retention_days.
%%
%% Whenever rows are removed (here, and when a deleted-revision replaces an earlier one), a
%% surviving delta whose predecessor goes is first rewritten as a keyframe in the same
%% transaction, so no delta is ever left without its base.
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

-module(backup_revision_prune).

-export([
    periodic_cleanup/1,
    prune_resource_rows/4
]).

-include_lib("zotonic_core/include/zotonic.hrl").

%% @doc Remove what is older than the retention settings: revisions, edge log and medium log
%% older than revision_retention_months; revisions of users older than
%% user_revision_retention_days; all revisions of deleted personal-data resources gone longer
%% than user_deletion_retention_days. Chains are kept whole (see prune_resource_rows/4), and
%% the dictionaries no row names any more are deleted (backup_revision_dict:gc/1).
-spec periodic_cleanup(Context) -> ok when
    Context :: z:context().
periodic_cleanup(Context) ->
    Now = calendar:universal_time(),
    Threshold = z_datetime:prev_month(Now, backup_config:retention_months(Context)),
    N1 = prune("created < $1", [ Threshold ], Context),
    _ = z_db:q("delete from backup_medium_log where medium_deleted < $1", [ Threshold ], Context),
    _ = z_db:q("delete from backup_edge_log where timestamp < $1", [ Threshold ], Context),
    UserThreshold = z_datetime:prev_day(Now, backup_config:user_retention_days(Context)),
    UserTypes = [ z_convert:to_binary(T) || T <- lists:usort(m_identity:user_types(Context)) ],
    N2 = prune(
        "created < $1 and rsc_id in (select rsc_id from identity where type = any($2))",
        [ UserThreshold, UserTypes ], Context),
    GoneThreshold = z_datetime:prev_day(Now, backup_config:deleted_user_retention_days(Context)),
    N3 = prune(
        "rsc_id in (select id from rsc_gone where is_personal_data = true and modified < $1)",
        [ GoneThreshold ], Context),
    ?LOG_INFO(#{
        in => zotonic_mod_backup,
        text => <<"Pruned revisions">>,
        retention => N1,
        user_retention => N2,
        deleted_user_retention => N3
    }),
    % Dictionaries only pruned rows named can go now.
    _ = backup_revision_dict:gc(Context),
    ok.

%% Remove the rows matching Cond (an SQL condition on backup_revision with Params), resource by
%% resource; returns the number of rows removed.
prune(Cond, Params, Context) ->
    RscIds = z_db:q(["select distinct rsc_id from backup_revision where ", Cond], Params, Context),
    lists:foldl(
        fun({RscId}, Acc) ->
            F = fun(Ctx) ->
                ok = backup_revision_save:lock_resource(RscId, Ctx),
                prune_resource_rows(RscId, Cond, Params, Ctx)
            end,
            case z_db:transaction(F, Context) of
                N when is_integer(N) ->
                    Acc + N;
                Error ->
                    ?LOG_ERROR(#{
                        in => zotonic_mod_backup,
                        text => <<"Could not prune revisions">>,
                        rsc_id => RscId,
                        result => error,
                        reason => Error
                    }),
                    Acc
            end
        end,
        0,
        RscIds).

%% @doc Delete the rows of one resource that match Cond (an SQL condition on backup_revision
%% with Params); a surviving delta whose predecessor is deleted is first rewritten as a
%% keyframe of the revision it makes. Call inside a transaction holding the resource's lock.
%% Returns the number of rows deleted.
-spec prune_resource_rows(RscId, Cond, Params, Context) -> non_neg_integer() when
    RscId :: m_rsc:resource_id(),
    Cond :: iodata(),
    Params :: list(),
    Context :: z:context().
prune_resource_rows(RscId, Cond, Params, Context) ->
    Select = fun(Cols) ->
        z_db:q(["
            select ", Cols, ", (", Cond, ") as is_delete
            from backup_revision
            where rsc_id = $", integer_to_list(length(Params) + 1), "
            order by id"],
            Params ++ [ RscId ], Context)
    end,
    % The data is read only when a surviving delta loses its predecessor: removing an earlier
    % deleted-revision row (always followed by a full row, the save after a deletion) reads none.
    Rows = Select("id, data_type"),
    Deleted = [ Id || {Id, _, true} <- Rows ],
    case Deleted of
        [] ->
            0;
        _ ->
            case strands_a_delta(Rows, false) of
                true ->
                    Codec = backup_revision_dict:codec(Context),
                    ok = rekey_survivors(Select("id, data_type, data"), [], false, Codec, Context);
                false -> ok
            end,
            z_db:q("delete from backup_revision where id = any($1)", [ Deleted ], Context)
    end.

strands_a_delta([], _PrevDeleted) ->
    false;
strands_a_delta([ {_Id, DataType, IsDelete} | Rest ], PrevDeleted) ->
    ((not IsDelete) andalso PrevDeleted andalso not backup_revision_codec:is_full(DataType))
        orelse strands_a_delta(Rest, IsDelete).

rekey_survivors([], _Chain, _PrevDeleted, _Codec, _Context) ->
    ok;
rekey_survivors([ {Id, DataType, Data, IsDelete} | Rest ], Chain, PrevDeleted, Codec, Context) ->
    Chain1 = case backup_revision_codec:is_full(DataType) of
        true -> [ {DataType, Data} ];
        false -> [ {DataType, Data} | Chain ]
    end,
    case (not IsDelete) andalso PrevDeleted andalso not backup_revision_codec:is_full(DataType) of
        true ->
            case backup_revision_codec:rekey(lists:reverse(Chain1), Codec) of
                {ok, {NewType, NewData}} ->
                    _ = z_db:q("update backup_revision set data_type = $2, data = $3 where id = $1",
                               [ Id, NewType, NewData ], Context),
                    rekey_survivors(Rest, [ {NewType, NewData} ], IsDelete, Codec, Context);
                {error, Reason} ->
                    ?LOG_ERROR(#{
                        in => zotonic_mod_backup,
                        text => <<"Revision can not be made a keyframe; it was unreadable already">>,
                        revision_id => Id,
                        result => error,
                        reason => Reason
                    }),
                    rekey_survivors(Rest, Chain1, IsDelete, Codec, Context)
            end;
        false ->
            rekey_survivors(Rest, Chain1, IsDelete, Codec, Context)
    end.
