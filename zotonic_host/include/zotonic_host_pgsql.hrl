%% @doc Result records of zotonic_host_pgsql, shaped like epgsql's #column{} and #error{}
%% (same names, fields and order) so code matching on epgsql results works unchanged.
%% @end

-record(column, {
    name :: binary(),
    type :: atom() | tuple(),
    oid :: non_neg_integer(),
    size :: integer(),
    modifier :: integer(),
    format :: text | binary,
    table_oid :: non_neg_integer(),
    table_attr_number :: integer()
}).

-record(error, {
    severity :: error | fatal | panic | warning | notice | binary(),
    code :: binary(),
    codename :: atom() | binary(),
    message :: binary(),
    extra :: [{atom(), binary()}]
}).
