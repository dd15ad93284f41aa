%% @doc Issue 14 inside the VM: the bomb archives through the NIF leave the BEAM alive with its
%% memory bounded and every job slot free; a job given a timeout returns within a second of
%% it, deep inside an entry that would take minutes; backup_job:await/2 keeps its deadline
%% even when no result ever comes; encrypted files carry an HMAC that refuses a forgery.
-module(backup_hostile_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("eunit/include/eunit.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1]).
-export([
    bomb_archives_through_the_nif_leave_the_beam_alive_bounded_and_no_job_slot_taken/1,
    extract_with_a_timeout_returns_within_a_second_of_its_deadline/1,
    await_keeps_its_deadline_when_no_result_ever_comes/1,
    encrypt_returns_an_hmac_that_refuses_a_forged_file_before_decrypting/1
]).

suite() ->
    [ {timetrap, {minutes, 5}} ].

all() ->
    [
        bomb_archives_through_the_nif_leave_the_beam_alive_bounded_and_no_job_slot_taken,
        extract_with_a_timeout_returns_within_a_second_of_its_deadline,
        await_keeps_its_deadline_when_no_result_ever_comes,
        encrypt_returns_an_hmac_that_refuses_a_forged_file_before_decrypting
    ].

init_per_suite(Config) ->
    true = backup_nif:is_loaded(),
    Dir = filename:join(?config(priv_dir, Config), "bombs"),
    % The bombs of issue 14, made by the same code as the fuzz harness's.
    {0, Out} = zb_test_cmd:cmd([zbackup(), "fuzz", "--write-bombs", Dir]),
    % one {"bomb":"<path>"} line each
    {match, Paths} = re:run(Out, <<"\"bomb\":\"([^\"]+)\"">>, [global, {capture, all_but_first, list}]),
    Bombs = [ P || [P] <- Paths ],
    ct:pal("bombs: ~p", [Bombs]),
    [ {bombs, Bombs} | Config ].

end_per_suite(_Config) ->
    ok.

%% ---------------------------------------------------------------------------------------------

bomb_archives_through_the_nif_leave_the_beam_alive_bounded_and_no_job_slot_taken(Config) ->
    Bombs = [ B || B <- ?config(bombs, Config), filename:basename(B) =/= "zeros_256gib.tar.zst" ],
    ?assert(length(Bombs) >= 8),
    RssBefore = rss_kib(),
    Peak = lists:foldl(
        fun(Bomb, PeakAcc) ->
            Dest = filename:join(?config(priv_dir, Config), "bomb-dest"),
            Results = [ backup_archive:extract(Bomb, Dest, #{ timeout => 20000 }) ],
            ct:pal("~s: ~p", [filename:basename(Bomb), [element(1, R) || {error, R} <- Results]]),
            lists:foreach(
                fun(R) -> ?assertMatch({error, {Reason, #{ message := _ }}} when Reason =:= limit_exceeded;
                                                                               Reason =:= bad_archive, R)
                end,
                Results),
            ?assertNot(filelib:is_dir(Dest)),
            max(PeakAcc, rss_kib())
        end,
        RssBefore,
        Bombs),
    ct:pal("BEAM RSS before ~p KiB, highest after a bomb ~p KiB", [RssBefore, Peak]),
    ?assert(Peak - RssBefore < 256 * 1024),
    ok = wait_until(fun() -> backup_archive:running_jobs() =:= 0 end, 100),
    ?assertEqual(0, backup_archive:running_jobs()).

extract_with_a_timeout_returns_within_a_second_of_its_deadline(Config) ->
    [Zeros] = [ B || B <- ?config(bombs, Config), filename:basename(B) =:= "zeros_256gib.tar.zst" ],
    Parent = filename:join(?config(priv_dir, Config), "deadline"),
    ok = filelib:ensure_path(Parent),
    Dest = filename:join(Parent, "dest"),
    Timeout = 1500,
    T0 = erlang:monotonic_time(millisecond),
    Result = backup_archive:extract(Zeros, Dest, #{ timeout => Timeout }),
    Elapsed = erlang:monotonic_time(millisecond) - T0,
    ct:pal("extract returned ~p after ~p ms (timeout ~p ms)", [Result, Elapsed, Timeout]),
    ?assertMatch({error, {timeout, _}}, Result),
    ?assert(Elapsed < Timeout + 1000),
    % the staging dir is gone and the slot is free
    ?assertEqual({ok, []}, file:list_dir(Parent)),
    ok = wait_until(fun() -> backup_archive:running_jobs() =:= 0 end, 100),
    % and an extract without a timeout of its own, cancelled by its caller's await, ends as fast
    {ok, Job} = backup_job:start(fun(Ref) ->
        backup_nif:extract_start(list_to_binary(Zeros), list_to_binary(Dest), #{}, Ref, undefined)
    end),
    T1 = erlang:monotonic_time(millisecond),
    ?assertMatch({error, {timeout, _}}, backup_job:await(Job, 500)),
    ?assert(erlang:monotonic_time(millisecond) - T1 < 1500),
    ok = wait_until(fun() -> backup_archive:running_jobs() =:= 0 end, 100),
    ?assertEqual({ok, []}, file:list_dir(Parent)).

%% Before the fix, await/2 waited without a limit after its own cancel: a caller (and the VM's
%% shutdown) hung on a job that never confirmed. Here no result will ever come (it was taken
%% already), so await/2 must give up on its own.
await_keeps_its_deadline_when_no_result_ever_comes(Config) ->
    Src = filename:join(?config(priv_dir, Config), "await-src"),
    ok = filelib:ensure_path(Src),
    ok = file:write_file(filename:join(Src, "f"), <<"x">>),
    Out = filename:join(?config(priv_dir, Config), "await.tar.gz"),
    {ok, Job} = backup_archive:start(Src, Out, #{}),
    {ok, _} = backup_archive:await(Job, 30000),
    T0 = erlang:monotonic_time(millisecond),
    ?assertMatch({error, {timeout, _}}, backup_job:await(Job, 100)),
    Elapsed = erlang:monotonic_time(millisecond) - T0,
    ct:pal("await returned after ~p ms", [Elapsed]),
    ?assert(Elapsed < 100 + 1000).

encrypt_returns_an_hmac_that_refuses_a_forged_file_before_decrypting(Config) ->
    Priv = ?config(priv_dir, Config),
    Plain = filename:join(Priv, "db.sql.gz"),
    Enc = filename:join(Priv, "db.sql.gz.enc"),
    Out = filename:join(Priv, "back.sql.gz"),
    Pw = <<"correct horse battery staple">>,
    ok = file:write_file(Plain, binary:copy(<<"genuine dump ">>, 10000)),
    {ok, #{ sha256 := _, hmac := Hmac }} = backup_file_crypto:encrypt_file(Plain, Enc, Pw),
    ?assertMatch(<<_:64/binary>>, Hmac),
    ?assertEqual({ok, Hmac}, backup_file_crypto:file_hmac(Enc, Pw)),
    {ok, _} = backup_file_crypto:decrypt_file(Enc, Out, Pw, #{ hmac => Hmac }),
    {ok, Back} = file:read_file(Out),
    {ok, Back} = file:read_file(Plain),
    ok = file:delete(Out),
    % A forgery: another file encrypted with the same password put in its place. Its sha256
    % could be rewritten in backup.json as well; its HMAC cannot be made without the key.
    Other = filename:join(Priv, "other.sql.gz"),
    ok = file:write_file(Other, <<"forged dump">>),
    {ok, _} = backup_file_crypto:encrypt_file(Other, Enc, Pw),
    ?assertMatch({error, {hmac_mismatch, _}}, backup_file_crypto:decrypt_file(Enc, Out, Pw, #{ hmac => Hmac })),
    ?assertNot(filelib:is_file(Out)),
    ?assertNot(filelib:is_file(Out ++ ".tmp")),
    ?assertMatch({error, {wrong_password, _}}, backup_file_crypto:decrypt_file(Enc, Out, <<"nope">>, #{ hmac => Hmac })),
    ok = wait_until(fun() -> backup_archive:running_jobs() =:= 0 end, 100).

%% ---------------------------------------------------------------------------------------------

zbackup() ->
    filename:join([code:priv_dir(zotonic_mod_backup), "native", "zbackup"]).

rss_kib() ->
    {ok, Status} = file:read_file("/proc/self/status"),
    [_, Rest] = binary:split(Status, <<"VmRSS:">>),
    [Num | _] = string:lexemes(Rest, " \t\nkB"),
    binary_to_integer(Num).

wait_until(Fun, Tries) when Tries > 0 ->
    case Fun() of
        true -> ok;
        false -> timer:sleep(10), wait_until(Fun, Tries - 1)
    end;
wait_until(_Fun, 0) ->
    {error, timeout}.
