-- How late do runs start and signals land, relative to their slot (last hour)?
--
-- start_lag   slot -> a worker started evaluating (queue wait + data wait)
-- commit_lag  slot -> the run (and its signals) committed
-- signal_lag  slot -> each signal committed (what a user waits for)
-- p50 and p99 in milliseconds. On a healthy system start_lag p50 is a few seconds (the
-- market-data refresh after the candle close comes first, TRADERCTL_WORKER_DATA_WAIT_MS at most);
-- a p99 near a minute on 1m means the 1m workers are saturated (see ops.queue_depth).
select interval, runs, start_lag_p50_ms, start_lag_p99_ms, commit_lag_p50_ms,
       commit_lag_p99_ms, signals, signal_lag_p50_ms, signal_lag_p99_ms
from ops.schedule_lag;
