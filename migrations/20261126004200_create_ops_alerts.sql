-- ops.alerts: one row per condition that needs an operator now; empty means healthy.
--
-- Each row: alert (a stable code), severity (critical | warning), subject (the interval,
-- queue, job or snapshot concerned), value and threshold (numbers an alert rule can
-- compare), detail (a sentence saying what happened and where to look). `traderctl stats`
-- prints them and `traderctl stats --check` exits 1 while any is present, so a cron job,
-- CI step or monitoring probe can rely on the exit code.
--
--   failure_rate       critical  an interval's failure rate over the last 15 minutes > 5%
--                                (ops.failure_rate_by_interval)
--   queue_backlog      critical  a queue's oldest waiting job has waited > 2 minutes
--                                (ops.queue_depth)
--   stale_market_data  critical  a snapshot used by enabled traders is stale
--                                (ops.snapshot_freshness)
--   stale_symbols      warning   a snapshot in use has stale symbols (kept at their last
--                                good data by the market-data worker)
--   cron_failing       critical  a pg_cron job failed in the last 15 minutes
--   cron_missing       critical  an every-N-minutes pg_cron job has not started on time
--                                (ops.cron_job_health; empty where pg_cron is absent)
--   scheduler_behind   critical  the scheduler's watermark (backend.scheduler_state) is
--                                more than 2 minutes behind: neither pg_cron nor
--                                `traderctl scheduler` is ticking this database
--   exchange_banned    critical  the exchange answered 418 (IP ban) in the last hour
--   exchange_rate_limited warning the exchange answered 429 in the last 15 minutes
--                                (both from backend.market_data_events, kinds banned and
--                                rate_limited, written by the market-data worker)
--   stalled_jobs       warning   jobs held by a worker silent for 60 s (ops.stalled_jobs)
--
-- The thresholds are literals here on purpose: they are the product's alerting contract
-- (the product rule: alert when failures exceed 5%). Changing one is a new migration that
-- replaces this view.

create view ops.alerts as
select
    'failure_rate'::text as alert,
    'critical'::text as severity,
    f.interval as subject,
    f.failure_rate_15m::double precision as value,
    0.05::double precision as threshold,
    format('%s%% of %s runs of %s traders failed in the last 15 minutes (%s filter errors, '
           '%s failed jobs); see `traderctl traders list --failing --interval %s`',
           round(f.failure_rate_15m * 100, 1), f.runs_15m + f.failed_jobs_15m, f.interval,
           f.errors_15m, f.failed_jobs_15m, f.interval) as detail
from ops.failure_rate_by_interval f
where f.failure_rate_15m > 0.05

union all
select
    'queue_backlog', 'critical', q.queue_name, q.oldest_waiting_age_s::double precision, 120,
    format('oldest waiting job of %s has waited %s s (%s waiting, %s running): add workers '
           'for this queue or check they are alive (`traderctl stats`)',
           q.queue_name, round(q.oldest_waiting_age_s), q.waiting, q.running)
from ops.queue_depth q
where q.oldest_waiting_age_s > 120

union all
select
    'stale_market_data', 'critical', s.interval, s.behind_s::double precision, null,
    format('%s market data is stale: %s; %s enabled traders use it. Check the market-data '
           'worker and backend.market_data_events', s.interval, s.stale_reason, s.traders)
from ops.snapshot_freshness s
where s.stale and s.traders > 0

union all
select
    'stale_symbols', 'warning', s.interval, s.stale_symbols::double precision, 0,
    format('%s of %s symbols of %s klines are stale (serving their last good data); see '
           'market_klines.stale_reason', s.stale_symbols, s.symbols, s.interval)
from ops.snapshot_freshness s
where s.stale_symbols > 0 and s.traders > 0

union all
select
    'cron_failing', 'critical', coalesce(c.jobname, c.jobid::text), c.failures_15m, 0,
    format('pg_cron job %s failed %s time(s) in the last 15 minutes; last message: %s',
           coalesce(c.jobname, c.jobid::text), c.failures_15m,
           coalesce(c.last_message, '(none)'))
from ops.cron_job_health c
where c.failures_15m > 0

union all
select
    'cron_missing', 'critical', coalesce(c.jobname, c.jobid::text),
    extract(epoch from now() - c.last_start)::double precision,
    (c.period_minutes * 60 + 90)::double precision,
    format('pg_cron job %s (%s) has not started since %s; check that pg_cron''s background '
           'worker runs (cron.database_name, shared_preload_libraries) and cron.log_run = on',
           coalesce(c.jobname, c.jobid::text), c.schedule,
           coalesce(to_char(c.last_start at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS "UTC"'),
                    'it was scheduled'))
from ops.cron_job_health c
where c.missing

union all
select
    'scheduler_behind', 'critical', 'scheduler',
    extract(epoch from now() - s.last_slot)::double precision, 120,
    format('the scheduler last scheduled the minute %s: nothing is enqueueing due traders. '
           'Check the pg_cron job traderctl-schedule-due-traders or run `traderctl scheduler`',
           coalesce(to_char(s.last_slot at time zone 'UTC', 'YYYY-MM-DD HH24:MI "UTC"'),
                    '(never)'))
from backend.scheduler_state s
where s.last_slot is null or s.last_slot < now() - interval '2 minutes'

union all
select
    'exchange_banned', 'critical', 'exchange', count(*)::double precision, 0,
    format('the exchange answered 418 (IP banned) %s time(s) in the last hour, last at %s: %s',
           count(*), to_char(max(e.at) at time zone 'UTC', 'HH24:MI:SS "UTC"'),
           (array_agg(e.message order by e.at desc))[1])
from backend.market_data_events e
where e.kind = 'banned' and e.at > now() - interval '1 hour'
having count(*) > 0

union all
select
    'exchange_rate_limited', 'warning', 'exchange', count(*)::double precision, 0,
    format('the exchange answered 429 (rate limited) %s time(s) in the last 15 minutes, last '
           'at %s; lower MARKET_WEIGHT_BUDGET or MARKET_CONCURRENCY', count(*),
           to_char(max(e.at) at time zone 'UTC', 'HH24:MI:SS "UTC"'))
from backend.market_data_events e
where e.kind = 'rate_limited' and e.at > now() - interval '15 minutes'
having count(*) > 0

union all
select
    'stalled_jobs', 'warning', j.queue_name, count(*)::double precision, 0,
    format('%s job(s) of %s are held by a worker silent for over 60 s; the workers'' '
           'recovery requeues them, or run `traderctl requeue --stalled`',
           count(*), j.queue_name)
from ops.stalled_jobs j
group by j.queue_name;

comment on view ops.alerts is
    'Conditions needing an operator now (empty = healthy): alert, severity, subject, value, '
    'threshold, detail. See the migration header or docs/operations.md for each alert.';

revoke all on ops.alerts from public, anon, authenticated;
do $$
begin
    if exists (select from pg_roles where rolname = 'service_role') then
        grant select on ops.alerts to service_role;
    end if;
end
$$;
