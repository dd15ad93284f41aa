%% @doc What pg_dump (backup) and psql (restore) share: the connection arguments from the site's
%% database options, and the one-use 0600 passfile that carries the password.
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

-module(backup_pg).

-export([
    opt/3,
    connection_args/1,
    write_passfile/2,
    with_passfile/3,
    pg_dump_command/0,
    pg_dump_executable/0,
    psql_executable/0
]).

%% @doc A database option as a binary; Default when it is missing or empty.
-spec opt(Key, DbOpts, Default) -> binary() when
    Key :: atom(),
    DbOpts :: proplists:proplist(),
    Default :: binary() | integer().
opt(Key, Opts, Default) ->
    V = case proplists:get_value(Key, Opts) of
        undefined -> Default;
        <<>> -> Default;
        "" -> Default;
        Value -> Value
    end,
    unicode:characters_to_binary(z_convert:to_binary(V)).

%% @doc `-h Host -p Port -U User' for pg_dump and psql, with Zotonic's defaults.
-spec connection_args(DbOpts) -> [binary()] when
    DbOpts :: proplists:proplist().
connection_args(DbOpts) ->
    [
        <<"-h">>, opt(dbhost, DbOpts, <<"localhost">>),
        <<"-p">>, opt(dbport, DbOpts, 5432),
        <<"-U">>, opt(dbuser, DbOpts, <<"zotonic">>)
    ].

%% @doc Writes a passfile for one run of pg_dump or psql, matching any host, port and database.
%% It is created exclusively and made 0600 before the password is written into it; the caller
%% deletes it.
-spec write_passfile(PassFile, DbOpts) -> ok | {error, term()} when
    PassFile :: file:filename_all(),
    DbOpts :: proplists:proplist().
write_passfile(PassFile, DbOpts) ->
    User = escape(opt(dbuser, DbOpts, <<"zotonic">>)),
    Password = escape(opt(dbpassword, DbOpts, <<>>)),
    case file:open(PassFile, [write, exclusive, raw, binary]) of
        {ok, Fd} ->
            Result = case file:change_mode(PassFile, 8#00600) of
                ok -> file:write(Fd, [<<"*:*:*:">>, User, $:, Password, $\n]);
                {error, _} = Error -> Error
            end,
            _ = file:close(Fd),
            Result;
        {error, _} = Error ->
            Error
    end.

%% @doc Runs Fun with the environment for one pg_dump or psql run: a fresh passfile in Dir
%% (removed afterwards, whatever happens) as PGPASSFILE, an empty PGPASSWORD so a password in
%% the VM's environment cannot take the place of the site's, and an empty PGOPTIONS so the VM's
%% session options (a statement_timeout, a search_path) do not reach the session.
-spec with_passfile(Dir, DbOpts, Fun) -> Result | {error, term()} when
    Dir :: file:filename_all(),
    DbOpts :: proplists:proplist(),
    Fun :: fun(([{binary(), binary()}]) -> Result),
    Result :: term().
with_passfile(Dir, DbOpts, Fun) ->
    Unique = integer_to_binary(erlang:unique_integer([positive])),
    PassFile = filename:join(z_convert:to_binary(Dir), <<".pgpass-", Unique/binary, ".tmp">>),
    try
        case write_passfile(PassFile, DbOpts) of
            ok ->
                Fun([ {<<"PGPASSFILE">>, PassFile}, {<<"PGPASSWORD">>, <<>>}, {<<"PGOPTIONS">>, <<>>} ]);
            {error, _} = Error ->
                Error
        end
    after
        _ = file:delete(PassFile)
    end.

%% @doc pg_dump as configured: Zotonic's config key `pg_dump', default "pg_dump".
-spec pg_dump_command() -> string().
pg_dump_command() ->
    unicode:characters_to_list(z_convert:to_binary(z_config:get(pg_dump, "pg_dump"))).

%% @doc The pg_dump to run: the configured path when it is absolute and a file, else the
%% configured name looked up on the PATH; false when there is none.
-spec pg_dump_executable() -> file:filename() | false.
pg_dump_executable() ->
    Cmd = pg_dump_command(),
    case filename:pathtype(Cmd) of
        absolute ->
            case filelib:is_regular(Cmd) of
                true -> Cmd;
                false -> false
            end;
        _ ->
            os:find_executable(Cmd)
    end.

%% @doc psql: beside the configured pg_dump when that is a path, else from the PATH.
-spec psql_executable() -> file:filename() | false.
psql_executable() ->
    PgDump = pg_dump_command(),
    case filename:pathtype(PgDump) of
        absolute ->
            Psql = filename:join(filename:dirname(PgDump), "psql"),
            case filelib:is_regular(Psql) of
                true -> Psql;
                false -> os:find_executable("psql")
            end;
        _ ->
            os:find_executable("psql")
    end.

%% The passfile format escapes `\' and `:'.
escape(B) ->
    binary:replace(binary:replace(B, <<"\\">>, <<"\\\\">>, [global]), <<":">>, <<"\\:">>, [global]).
