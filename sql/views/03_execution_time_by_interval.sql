-- How long do filters take, per refresh interval (last hour)?
--
-- avg/p50/p95/max of trader_runs.duration_ms: one trader evaluated over all its symbols.
-- p95 close to TRADERCTL_FILTER_TIMEOUT_MS (250 ms by default) means some filters run into
-- the CPU budget: find them with
--   select trader_id, avg(duration_ms) from public.trader_runs
--   where finished_at > now() - interval '1 hour' group by 1 order by 2 desc limit 20;
-- Intervals with no runs show runs = 0 and NULL times.
select interval, runs, avg_ms, p50_ms, p95_ms, max_ms
from ops.execution_time_by_interval;
