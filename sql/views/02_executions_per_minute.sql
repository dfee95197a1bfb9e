-- How many trader runs finished per minute over the last hour?
--
-- 60 rows, one per UTC minute, oldest first; the last row is the current, partial
-- minute. `runs` = ok + errors. With N enabled 1m traders you expect about N runs every
-- minute plus N/5 on each 5-minute boundary, etc.; a dip to zero means the scheduler or
-- the workers stopped (check ops.alerts), a steady climb in `errors` a bad deploy or a
-- market-data problem. `avg_duration_ms` is the filter time, not the queue wait.
select minute, runs, ok, errors, signals, avg_duration_ms
from ops.executions_per_minute
order by minute;
