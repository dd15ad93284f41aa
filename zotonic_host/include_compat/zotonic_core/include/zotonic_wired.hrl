%% @doc zotonic_host compatibility header: browser event records of Zotonic 1.0's zotonic_wired.hrl.
%% @end


-record(postback, {
    message :: term(),
    trigger :: binary() | undefined,
    target :: binary() | undefined
}).

-record(submit, {
    message :: term(),
    form :: binary() | undefined,
    target :: binary() | undefined
}).

