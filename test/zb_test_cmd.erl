%% @doc Running external commands (psql, gunzip, tar, zbackup) from the test suites, without a
%% shell, with the environment of this VM (PGHOST etc. from tools/pg_env.sh).
%% @end
-module(zb_test_cmd).

-export([cmd/1, psql/2, zbackup/0, to_list/1]).

%% @doc Runs [Exe | Args]; Exe is looked up on PATH unless absolute. Returns the exit status
%% and stdout + stderr.
-spec cmd([iodata() | integer()]) -> {non_neg_integer(), binary()}.
cmd([Exe | Args]) ->
    Path = case filename:pathtype(Exe) of
        absolute -> Exe;
        _ -> os:find_executable(to_list(Exe))
    end,
    Port = open_port({spawn_executable, Path},
                     [{args, [ to_list(A) || A <- Args ]}, exit_status, binary, stderr_to_stdout, use_stdio]),
    collect(Port, []).

%% @doc psql on database Db, stopping at the first error.
-spec psql(iodata(), [iodata()]) -> {non_neg_integer(), binary()}.
psql(Db, Args) ->
    cmd(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", Db | Args]).

%% @doc The zbackup CLI that the build installed beside the NIF.
-spec zbackup() -> file:filename().
zbackup() ->
    Ebin = filename:dirname(code:which(backup_nif)),
    Priv = case code:priv_dir(zotonic_mod_backup) of
        {error, bad_name} -> filename:join(filename:dirname(Ebin), "priv");
        Dir -> Dir
    end,
    Exe = filename:join([Priv, "native", "zbackup"]),
    case filelib:is_regular(Exe) of
        true -> Exe;
        false -> error({zbackup_not_built, Exe})
    end.

-spec to_list(binary() | integer() | string()) -> string().
to_list(B) when is_binary(B) -> unicode:characters_to_list(B);
to_list(I) when is_integer(I) -> integer_to_list(I);
to_list(L) -> unicode:characters_to_list(L).

collect(Port, Acc) ->
    receive
        {Port, {data, D}} -> collect(Port, [D | Acc]);
        {Port, {exit_status, S}} -> {S, iolist_to_binary(lists:reverse(Acc))}
    end.
