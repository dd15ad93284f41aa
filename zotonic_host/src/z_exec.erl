%% @doc zotonic_host: Zotonic's z_exec:run/1,2 -- run a shell command, `{ok, Output}' on exit
%% status 0, else `{error, {exit_status, Status, Output}}' (or `{error, timeout}').
%% @end

-module(z_exec).

-export([run/1, run/2]).

-define(TIMEOUT, 3600000).

-spec run(iodata()) -> {ok, binary()} | {error, term()}.
run(Command) ->
    run(Command, #{}).

-spec run(iodata(), map()) -> {ok, binary()} | {error, term()}.
run(Command, Options) ->
    Timeout = maps:get(timeout, Options, ?TIMEOUT),
    Cmd = unicode:characters_to_list(iolist_to_binary(Command)),
    Port = open_port({spawn_executable, "/bin/sh"},
                     [{args, ["-c", Cmd]}, exit_status, binary, stderr_to_stdout, use_stdio, hide]),
    collect(Port, [], erlang:monotonic_time(millisecond) + Timeout).

collect(Port, Acc, Deadline) ->
    Left = max(0, Deadline - erlang:monotonic_time(millisecond)),
    receive
        {Port, {data, Data}} -> collect(Port, [Data | Acc], Deadline);
        {Port, {exit_status, 0}} -> {ok, iolist_to_binary(lists:reverse(Acc))};
        {Port, {exit_status, Status}} -> {error, {exit_status, Status, iolist_to_binary(lists:reverse(Acc))}}
    after Left ->
        catch port_close(Port),
        {error, timeout}
    end.
