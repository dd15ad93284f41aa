%% @doc Zotonic's `bin/zotonic decrypt PASSWORD FILE [OUT]' launcher command, as Zotonic 1.0's
%% zotonic_launcher runs it: in a VM of its own (not the node), with the apps' ebin dirs on the
%% code path, calling the backup module's `backup_file_crypto:password_decrypt/2,3' by name
%% with the password as a binary, and printing the outcome the way the launcher does.
%% @end
-module(zotonic_cmd_decrypt).

-export([run/1]).

% Called by the suites (or the demo) only, as Zotonic's own API would be.
-ignore_xref([run/1]).

-spec run([string()]) -> ok.
run([Password, InFile]) ->
    report(backup_file_crypto:password_decrypt(InFile, z_convert:to_binary(Password)));
run([Password, InFile, OutFile]) ->
    report(backup_file_crypto:password_decrypt(InFile, OutFile, z_convert:to_binary(Password)));
run(_) ->
    io:format("USAGE: decrypt password in_filename [out_filename]~n"),
    halt(1).

report({ok, _OutFile}) ->
    ok;
report({error, wrong_password}) ->
    io:format("ERROR: Wrong password.~n~nNote: The backup encryption password can be found in Admin -> System -> Config.");
report({error, Error}) ->
    io:format("ERROR: Sorry, something went wrong.~n~nDescription: ~p.", [Error]).
