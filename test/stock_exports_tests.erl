%% @doc Every function that Zotonic 1.0's own mod_backup app exports (zotonic/zotonic master
%% 5823092f7, apps/zotonic_mod_backup, read from its compiled beams) exists here with the same
%% module, name and arity: sites, Zotonic's launcher (`zotonic decrypt') and other modules call
%% them by name. What they return is checked by the suites of each module.
%% @end
-module(stock_exports_tests).

-include_lib("eunit/include/eunit.hrl").

-define(STOCK_EXPORTS, [
    {action_backup_backup_start, [{event, 2}, {render_action, 4}]},
    {backup_config, [{admin_panel, 1}, {allow_backup_download, 1}, {allow_manual_backup, 1},
                     {daily_dump, 1}, {deleted_user_retention_days, 1}, {encrypt_backups, 1},
                     {encrypt_password, 1}, {is_config_locked, 0}, {is_filestore_enabled, 1},
                     {retention_months, 1}, {user_retention_days, 1}]},
    {backup_create, [{command_configuration, 0}, {dir, 1}, {make_backup, 4}, {pg_passfile, 2},
                     {read_admin_file, 1}, {read_json_file, 1}, {update_admin_file, 2}]},
    {backup_file_crypto, [{is_encrypted, 1}, {password_decrypt, 2}, {password_decrypt, 3},
                          {password_encrypt, 2}, {password_encrypt, 3}]},
    {backup_restore, [{default_options, 0}, {is_file_missing, 2}, {restore_backup, 2},
                      {restore_backup, 3}, {restore_newest_backup, 1}, {restore_newest_backup, 2}]},
    {backup_rsc_upload, [{rsc_upload, 2}]},
    {controller_admin_backup, [{event, 2}, {is_authorized, 1}, {process, 4}, {service_available, 1}]},
    {controller_admin_backup_revision, [{event, 2}, {is_authorized, 1}, {process, 4},
                                        {service_available, 1}]},
    {m_backup, [{m_get, 3}]},
    {m_backup_revision, [{edge_delete, 4}, {edge_insert, 4}, {get_revision, 2},
                         {insert_deleted_revisions, 1}, {install, 1}, {list_deleted, 2},
                         {list_revisions, 2}, {list_revisions_assoc, 2}, {m_get, 3},
                         {medium_delete, 3}, {medium_delete_check, 2}, {medium_insert, 3},
                         {medium_update, 3}, {periodic_cleanup, 1}, {revert_resource, 4},
                         {revision_title, 2}, {save_deleted, 3}, {save_revision, 3}]},
    {mod_backup, [{backup_in_progress, 1}, {code_change, 3}, {download_backup, 1},
                  {file_exists, 2}, {file_forbidden, 2}, {handle_call, 3}, {handle_cast, 2},
                  {handle_info, 2}, {init, 1}, {is_uploading, 1}, {list_backups, 1},
                  {manage_schema, 2}, {observe_admin_menu, 3}, {observe_backup_download, 2},
                  {observe_backup_list, 2}, {observe_backup_restore, 2}, {observe_backup_start, 2},
                  {observe_edge_delete, 2}, {observe_edge_insert, 2}, {observe_m_config_update, 2},
                  {observe_media_update_done, 2}, {observe_rsc_delete, 2},
                  {observe_rsc_update_done, 2}, {observe_rsc_upload, 2}, {observe_search_query, 2},
                  {observe_tick_24h, 2}, {restore_backup, 1}, {restore_backup, 3},
                  {start_backup, 1}, {start_backup, 2}, {start_link, 1}, {terminate, 2}]}
]).

every_stock_export_exists_with_its_arity_test() ->
    Missing = [ {M, F, A} || {M, Fs} <- ?STOCK_EXPORTS,
                             {F, A} <- Fs,
                             not is_exported(M, F, A) ],
    ?assertEqual([], Missing).

is_exported(M, F, A) ->
    case code:ensure_loaded(M) of
        {module, M} -> erlang:function_exported(M, F, A);
        {error, _} -> false
    end.
