-- Which intervals' runs are failing (last 15 minutes and last hour)?
--
-- A failure is a run with status 'error' (the filter threw, timed out or ran out of
-- memory: errors_*) or a job that ended 'failed' after exhausting its retries
-- (infrastructure: failed_jobs_*). failure_rate = failures / (runs + failed jobs), a
-- fraction: 0.05 = 5%, the alert threshold over 15 minutes. NULL = nothing ran.
-- Filter errors concentrated on a few traders: `traderctl traders list --failing`;
-- failed jobs: `traderctl requeue --failed --dry-run`.
select interval, runs_15m, errors_15m, failed_jobs_15m, failure_rate_15m,
       runs_1h, errors_1h, failed_jobs_1h, failure_rate_1h
from ops.failure_rate_by_interval;
