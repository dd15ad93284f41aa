%% @doc zotonic_host: Zotonic's zotonic_model behaviour, so models (m_*) compile with their
%% -behaviour(zotonic_model) attribute as in Zotonic. The callbacks and exported types are
%% Zotonic 1.0's; the MQTT packet of opt_msg() is a plain map here.
%% @end

-module(zotonic_model).

-type opt_msg() :: map() | undefined.
-type return() :: {ok, {term(), list()}} | {error, unknown_path | term()}.
-type post_return() :: ok | {ok, term()} | {error, unknown_path | term()}.
-type delete_return() :: ok | {ok, term()} | {error, unknown_path | term()}.

-export_type([opt_msg/0, return/0, post_return/0, delete_return/0]).

%% Templates, MQTT and the API read a model through m_get/3.
-callback m_get(list(), opt_msg(), z:context()) -> return().

%% MQTT and the API write through m_post/3 and m_delete/3, which a model may leave out.
-callback m_post(list(binary()), opt_msg(), z:context()) -> {ok, term()} | ok | {error, term()}.
-callback m_delete(list(binary()), opt_msg(), z:context()) -> {ok, term()} | ok | {error, term()}.

-optional_callbacks([m_post/3, m_delete/3]).
