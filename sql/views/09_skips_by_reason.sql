-- Which due runs did the scheduler skip, and why (last 15 minutes / last hour)?
--
-- backlog      the trader's previous job was still waiting: the workers are behind
-- hourly_cap   the owner's tier reached max_executions_per_hour (free 60, pro 720)
-- invalid_interval  enabled traders with an unknown refreshInterval (schedule_problem);
--              recounted on every tick, so `latest` is the number of traders and the
--              sums are trader-minutes. Find them: traderctl traders list (problem column)
-- `latest` is the count at the newest tick; last_skip_slot the last minute with a skip.
-- Only rows with skips, for reading:
select reason, interval, skipped_15m, skipped_1h, latest, last_skip_slot
from ops.skips_by_reason
where skipped_1h > 0 or latest > 0
order by reason, interval;
