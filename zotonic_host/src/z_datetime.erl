%% @doc zotonic_host: the date helpers of Zotonic's z_datetime that modules use (UTC datetimes).
%% @end

-module(z_datetime).

-export([
    prev_second/2,
    prev_day/1,
    prev_day/2,
    prev_month/1,
    prev_month/2,
    next_second/2
]).

% Called by the suites (or the demo) only, as Zotonic's own API would be.
-ignore_xref([prev_day/1, prev_month/1]).

-define(UNIX_EPOCH, 62167219200).

-spec prev_second(calendar:datetime(), integer()) -> calendar:datetime().
prev_second(DT, N) -> calendar:gregorian_seconds_to_datetime(calendar:datetime_to_gregorian_seconds(DT) - N).

-spec next_second(calendar:datetime(), integer()) -> calendar:datetime().
next_second(DT, N) -> prev_second(DT, -N).

-spec prev_day(calendar:datetime()) -> calendar:datetime().
prev_day(DT) -> prev_day(DT, 1).

-spec prev_day(calendar:datetime(), integer()) -> calendar:datetime().
prev_day({Date, Time}, N) -> {calendar:gregorian_days_to_date(calendar:date_to_gregorian_days(Date) - N), Time}.

-spec prev_month(calendar:datetime()) -> calendar:datetime().
prev_month(DT) -> prev_month(DT, 1).

%% @doc N months back; the day is clipped to the length of the month.
-spec prev_month(calendar:datetime(), integer()) -> calendar:datetime().
prev_month({{Y, M, D}, Time}, N) ->
    Months = Y * 12 + (M - 1) - N,
    Y1 = Months div 12,
    M1 = Months rem 12 + 1,
    {{Y1, M1, min(D, calendar:last_day_of_the_month(Y1, M1))}, Time}.
