%% @doc zotonic_host compatibility header: the filestore records of Zotonic 1.0's zotonic_file.hrl.
%% @end


-record(z_file_info, {
    modifiedUTC :: calendar:datetime(),
    mime :: binary(),
    size :: integer(),
    acls :: list(integer() | {module, atom()}),
    encodings :: list()
}).

-record(filestore, {
    action = upload :: lookup | upload | delete,
    path :: file:filename_all() | {prefix, file:filename_all()},
    local_path :: file:filename_all() | undefined,
    filename :: file:filename_all() | undefined,
    mime :: binary() | string() | undefined
}).

-record(filestore_request, {
    action = upload :: upload | download | delete,
    remote :: file:filename_all(),
    local :: file:filename_all(),
    mime :: binary() | string() | undefined,
    handler_pid :: pid() | undefined
}).

-record(filestore_credentials_lookup, {
    id :: undefined | integer(),
    path :: binary()
}).

-record(filestore_credentials_revlookup, {
    service :: binary(),
    location :: binary()
}).

-record(filestore_credentials, {
    service :: binary(),
    service_url :: binary(),
    location :: binary(),
    credentials :: any()
}).

