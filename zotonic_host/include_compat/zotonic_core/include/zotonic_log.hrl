%% @doc zotonic_host compatibility header: logging macros of Zotonic 1.0's zotonic_log.hrl.
%% ?LOG_* come from OTP's logger; ?DEBUG/?PRINT log a notice here (Zotonic's z:debug_msg).
%% @end


-include_lib("kernel/include/logger.hrl").

-define(LOG_LEVEL_FATAL, 0).
-define(LOG_LEVEL_ERROR, 1).
-define(LOG_LEVEL_WARNING, 2).
-define(LOG_LEVEL_NOTICE, 3).
-define(LOG_LEVEL_INFO, 4).
-define(LOG_LEVEL_DEBUG, 5).

-define(zLoc, #{mfa=>{?MODULE,?FUNCTION_NAME,?FUNCTION_ARITY}, line=>?LINE, file=>?FILE}).

-define(PRINT(Var), ?LOG_NOTICE(#{ var => ??Var, value => Var })).
-define(DEBUG(Msg), z:debug_msg(Msg, ?zLoc)).

