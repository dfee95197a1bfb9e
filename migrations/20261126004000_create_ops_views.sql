-- Observability views for operators: schema `ops`.
--
-- Why a separate schema: views run with their owner's rights and so bypass RLS. In
-- `public` the Data API would expose every user's runs and the whole queue through them.
-- `ops` is not in supabase/config.toml's api.schemas, PUBLIC/anon/authenticated get
-- nothing on it, and only service_role (the workers, `traderctl`, the SQL editor as
-- postgres) may read it. The views are the stable interface; the tables under them may
-- change. sql/views/*.sql are the runbook queries over these views, and
-- docs/operations.md explains how to read each one.
--
-- Every view is computed on read from the tables the scheduler, the workers and the
-- market-data process already write; nothing here writes. Windows are relative to now():
-- "last hour" is (now() - 1 hour, now()], "last 15 minutes" likewise.
--
-- Interval list: backend.schedule_intervals (1m … 1d), so a new interval shows up here
-- without touching these views.

create schema if not exists ops;
revoke all on schema ops from public;
comment on schema ops is
    'Read-only observability views for operators (traderctl stats, runbook queries in sql/views). '
    'Not exposed to the Data API; service_role only.';


-- Executions per minute, last hour: one row per minute (60 rows, zero-filled), by the
-- minute the run finished. Served by trader_runs_finished_at_idx.
create view ops.executions_per_minute as
with runs as (
    select
        date_trunc('minute', r.finished_at, 'UTC') as minute,
        count(*) as runs,
        count(*) filter (where r.status = 'ok') as ok,
        count(*) filter (where r.status = 'error') as errors,
        sum(r.signals) as signals,
        avg(r.duration_ms) as avg_duration_ms
    from public.trader_runs r
    where r.finished_at >= date_trunc('minute', now(), 'UTC') - interval '59 minutes'
    group by 1
)
select
    m.minute,
    coalesce(r.runs, 0)::bigint as runs,
    coalesce(r.ok, 0)::bigint as ok,
    coalesce(r.errors, 0)::bigint as errors,
    coalesce(r.signals, 0)::bigint as signals,
    round(r.avg_duration_ms::numeric, 1) as avg_duration_ms
from generate_series(
    date_trunc('minute', now(), 'UTC') - interval '59 minutes',
    date_trunc('minute', now(), 'UTC'),
    interval '1 minute'
) as m(minute)
left join runs r on r.minute = m.minute;
comment on view ops.executions_per_minute is
    'Runs finished per UTC minute over the last hour (60 rows, the current minute last and '
    'partial): runs, ok, errors, signals, avg_duration_ms.';


-- Average and p95 execution time per interval, last hour. duration_ms is the worker's
-- measure of one trader evaluated over all its symbols (not queue wait).
create view ops.execution_time_by_interval as
select
    i.name as interval,
    count(r.id)::bigint as runs,
    round(avg(r.duration_ms)::numeric, 1) as avg_ms,
    round((percentile_cont(0.5) within group (order by r.duration_ms))::numeric, 1) as p50_ms,
    round((percentile_cont(0.95) within group (order by r.duration_ms))::numeric, 1) as p95_ms,
    round(max(r.duration_ms)::numeric, 1) as max_ms
from backend.schedule_intervals i
left join public.trader_runs r
    on r.interval = i.name and r.finished_at > now() - interval '1 hour'
group by i.name, i.minutes
order by i.minutes;
comment on view ops.execution_time_by_interval is
    'Per refresh interval, runs finished in the last hour: count, avg/p50/p95/max duration_ms.';


-- Queue depth and the age of the oldest waiting job, per queue. Every traders.<interval>
-- queue appears (zeros when empty) so autoscalers and dashboards see an explicit 0.
--   waiting  todo and due now (scheduled_at NULL or past): what a worker would claim next
--   delayed  todo with scheduled_at in the future (retries backing off)
--   running  doing
-- A job waits since it became claimable: its scheduled_at if it has one, else the latest
-- event that put it in todo (deferred, deferred_for_retry, retried). Served by
-- procrastinate_jobs_priority_idx_v1 (todo) and procrastinate_events_job_id_fkey_v1.
create view ops.queue_depth as
with jobs as (
    select
        j.queue_name::text as queue_name,
        j.status,
        j.scheduled_at,
        case when j.status = 'todo' then coalesce(
            j.scheduled_at,
            (select max(e.at) from procrastinate.procrastinate_events e
             where e.job_id = j.id and e.type in ('deferred', 'deferred_for_retry', 'retried'))
        ) end as waiting_since
    from procrastinate.procrastinate_jobs j
    where j.status in ('todo', 'doing')
),
queues as (
    select 'traders.' || i.name as queue_name, i.minutes as sort_key
    from backend.schedule_intervals i
    union
    select distinct j.queue_name, null::integer from jobs j
    where not exists (
        select from backend.schedule_intervals i where 'traders.' || i.name = j.queue_name
    )
)
select
    q.queue_name,
    count(j.status) filter (
        where j.status = 'todo' and (j.scheduled_at is null or j.scheduled_at <= now())
    )::bigint as waiting,
    count(j.status) filter (where j.status = 'todo' and j.scheduled_at > now())::bigint as delayed,
    count(j.status) filter (where j.status = 'doing')::bigint as running,
    min(j.waiting_since) filter (
        where j.status = 'todo' and (j.scheduled_at is null or j.scheduled_at <= now())
    ) as oldest_waiting_since,
    round(extract(epoch from now() - min(j.waiting_since) filter (
        where j.status = 'todo' and (j.scheduled_at is null or j.scheduled_at <= now())
    ))::numeric, 1) as oldest_waiting_age_s
from queues q
left join jobs j on j.queue_name = q.queue_name
group by q.queue_name, q.sort_key
order by q.sort_key nulls last, q.queue_name;
comment on view ops.queue_depth is
    'Per queue: waiting (todo, due), delayed (todo, scheduled later), running (doing), and '
    'the oldest waiting job''s waiting_since / age in seconds.';


-- Failure rate per interval over the last 15 minutes and the last hour. A failure is a
-- run with status 'error' (the filter threw, timed out, ran out of memory) or a queue job
-- of that interval that ended 'failed' (infrastructure: retries exhausted). The rate is
-- failures / (runs + failed jobs), NULL when nothing ran.
create view ops.failure_rate_by_interval as
with runs as (
    select
        r.interval,
        count(*) filter (where r.finished_at > now() - interval '15 minutes') as runs_15m,
        count(*) filter (where r.finished_at > now() - interval '15 minutes'
                         and r.status = 'error') as errors_15m,
        count(*) as runs_1h,
        count(*) filter (where r.status = 'error') as errors_1h
    from public.trader_runs r
    where r.finished_at > now() - interval '1 hour'
    group by r.interval
),
failed_jobs as (
    select
        j.queue_name::text as queue_name,
        count(*) filter (where e.at > now() - interval '15 minutes') as failed_15m,
        count(*) as failed_1h
    from procrastinate.procrastinate_events e
    join procrastinate.procrastinate_jobs j on j.id = e.job_id
    where e.type = 'failed' and e.at > now() - interval '1 hour'
    group by j.queue_name
)
select
    i.name as interval,
    coalesce(r.runs_15m, 0)::bigint as runs_15m,
    coalesce(r.errors_15m, 0)::bigint as errors_15m,
    coalesce(f.failed_15m, 0)::bigint as failed_jobs_15m,
    round((coalesce(r.errors_15m, 0) + coalesce(f.failed_15m, 0))::numeric
          / nullif(coalesce(r.runs_15m, 0) + coalesce(f.failed_15m, 0), 0), 4) as failure_rate_15m,
    coalesce(r.runs_1h, 0)::bigint as runs_1h,
    coalesce(r.errors_1h, 0)::bigint as errors_1h,
    coalesce(f.failed_1h, 0)::bigint as failed_jobs_1h,
    round((coalesce(r.errors_1h, 0) + coalesce(f.failed_1h, 0))::numeric
          / nullif(coalesce(r.runs_1h, 0) + coalesce(f.failed_1h, 0), 0), 4) as failure_rate_1h
from backend.schedule_intervals i
left join runs r on r.interval = i.name
left join failed_jobs f on f.queue_name = 'traders.' || i.name
order by i.minutes;
comment on view ops.failure_rate_by_interval is
    'Per interval, last 15 minutes and last hour: runs, filter errors, failed jobs and '
    'failure_rate = (errors + failed jobs) / (runs + failed jobs), a fraction (0.05 = 5%).';


-- Schedule lag per interval, last hour, in milliseconds (p50 and p99):
--   start_lag   slot -> the worker started evaluating (trader_runs.started_at - slot)
--   commit_lag  slot -> run committed (finished_at - slot; finished_at defaults to the
--               commit transaction's now(), the same transaction that wrote the signals)
--   signal_lag  slot -> each signal committed (signals.created_at - slot), signals only
-- Immediate first runs use the current minute as their slot, so they count too.
create view ops.schedule_lag as
with runs as (
    select
        r.interval,
        count(*) as runs,
        percentile_cont(0.5) within group (
            order by extract(epoch from r.started_at - r.slot) * 1000) as start_p50,
        percentile_cont(0.99) within group (
            order by extract(epoch from r.started_at - r.slot) * 1000) as start_p99,
        percentile_cont(0.5) within group (
            order by extract(epoch from r.finished_at - r.slot) * 1000) as commit_p50,
        percentile_cont(0.99) within group (
            order by extract(epoch from r.finished_at - r.slot) * 1000) as commit_p99
    from public.trader_runs r
    where r.finished_at > now() - interval '1 hour'
    group by r.interval
),
sigs as (
    select
        s.interval,
        count(*) as signals,
        percentile_cont(0.5) within group (
            order by extract(epoch from s.created_at - s.slot) * 1000) as signal_p50,
        percentile_cont(0.99) within group (
            order by extract(epoch from s.created_at - s.slot) * 1000) as signal_p99
    from public.signals s
    where s.created_at > now() - interval '1 hour'
    group by s.interval
)
select
    i.name as interval,
    coalesce(r.runs, 0)::bigint as runs,
    round(r.start_p50::numeric, 1) as start_lag_p50_ms,
    round(r.start_p99::numeric, 1) as start_lag_p99_ms,
    round(r.commit_p50::numeric, 1) as commit_lag_p50_ms,
    round(r.commit_p99::numeric, 1) as commit_lag_p99_ms,
    coalesce(s.signals, 0)::bigint as signals,
    round(s.signal_p50::numeric, 1) as signal_lag_p50_ms,
    round(s.signal_p99::numeric, 1) as signal_lag_p99_ms
from backend.schedule_intervals i
left join runs r on r.interval = i.name
left join sigs s on s.interval = i.name
order by i.minutes;
comment on view ops.schedule_lag is
    'Per interval, last hour: p50/p99 of slot->start, slot->run committed and '
    'slot->signal committed, in milliseconds.';


-- Which market data the enabled traders use: their own interval (refreshInterval) and
-- every requiredTimeframes entry, plus the tickers (every trader needs them).
create view ops.market_data_in_use as
with used as (
    select coalesce(nullif(t.filter ->> 'refreshInterval', ''), '1m') as interval, t.id
    from public.traders t
    where t.enabled
    union
    select tf.value, t.id
    from public.traders t
    cross join lateral jsonb_array_elements_text(
        case when jsonb_typeof(t.filter -> 'requiredTimeframes') = 'array'
             then t.filter -> 'requiredTimeframes' else '[]'::jsonb end
    ) as tf(value)
    where t.enabled
)
select 'ticker'::text as interval, count(*)::bigint as traders
from public.traders t where t.enabled
union all
select i.name, count(u.id)::bigint
from backend.schedule_intervals i
left join used u on u.interval = i.name
group by i.name;
comment on view ops.market_data_in_use is
    'Per market_snapshots interval (ticker, 1m … 1d): how many enabled traders use it.';


-- Snapshot freshness per interval. For klines the data for slot M is complete once
-- closed_through >= M (see 20261126000400); expected_closed_through is the latest
-- boundary of the interval at or before now(). A kline snapshot is stale when it is
-- behind that boundary for more than 2 minutes (the market-data worker needs a few
-- seconds after each close); the tickers, refreshed once a minute, are stale when not
-- refreshed for 3 minutes.
-- An interval never published is stale too. `traders` says how many enabled traders use
-- the interval: the alerts fire only for intervals in use.
create view ops.snapshot_freshness as
with expected as (
    select 'ticker'::text as interval, 0 as sort_key, null::timestamptz as expected
    union all
    select i.name, i.minutes, to_timestamp(
        floor(extract(epoch from now()) / (i.minutes * 60)) * (i.minutes * 60))
    from backend.schedule_intervals i
),
joined as (
    select
        x.interval,
        x.sort_key,
        s.version,
        s.refreshed_at,
        s.closed_through,
        x.expected,
        coalesce(s.symbols, 0) as symbols,
        coalesce(s.stale_symbols, 0) as stale_symbols,
        coalesce(u.traders, 0) as traders
    from expected x
    left join public.market_snapshots s on s.interval = x.interval
    left join ops.market_data_in_use u on u.interval = x.interval
),
judged as (
    select
        j.*,
        case
            when j.refreshed_at is null then 'never published'
            when j.interval = 'ticker' and j.refreshed_at < now() - interval '3 minutes' then
                format('tickers not refreshed for %s s',
                       round(extract(epoch from now() - j.refreshed_at)))
            when j.interval <> 'ticker'
                and (j.closed_through is null or j.closed_through < j.expected)
                and now() - j.expected > interval '2 minutes' then
                format('candle closed at %s not loaded after %s s',
                       to_char(j.expected at time zone 'UTC', 'YYYY-MM-DD HH24:MI "UTC"'),
                       round(extract(epoch from now() - j.expected)))
        end as stale_reason
    from joined j
)
select
    interval,
    version,
    refreshed_at,
    round(extract(epoch from now() - refreshed_at)::numeric, 1) as refresh_age_s,
    closed_through,
    expected as expected_closed_through,
    round(greatest(extract(epoch from expected - closed_through), 0)::numeric, 1) as behind_s,
    symbols,
    stale_symbols,
    stale_reason is not null as stale,
    stale_reason,
    traders
from judged
order by sort_key;
comment on view ops.snapshot_freshness is
    'Per market_snapshots interval: version, refresh age, closed_through vs the expected '
    'boundary (behind_s), stale symbols, stale flag and reason, traders using it.';


-- Snapshot reuse (cache hit rate), last hour, per interval. Workers keep each snapshot
-- version in memory and reload an interval only when its version moved
-- (worker/snapshot_cache.py); they do not record loads in the database, so this view
-- derives them: each distinct (worker, data_as_of) among the interval's runs is one load,
-- every other run reused a loaded snapshot. The exact per-process counts are Prometheus:
-- traderctl_snapshot_loads_total{interval} against traderctl_runs_total
-- (worker/worker_metrics.py).
create view ops.snapshot_reuse as
select
    i.name as interval,
    count(r.id)::bigint as runs,
    count(distinct r.data_as_of)::bigint as snapshot_versions,
    count(distinct (r.worker, r.data_as_of))
        filter (where r.data_as_of is not null)::bigint as loads,
    round(1 - count(distinct (r.worker, r.data_as_of))
                  filter (where r.data_as_of is not null)::numeric
              / nullif(count(r.id) filter (where r.data_as_of is not null), 0), 4) as reuse_rate
from backend.schedule_intervals i
left join public.trader_runs r
    on r.interval = i.name and r.finished_at > now() - interval '1 hour'
group by i.name, i.minutes
order by i.minutes;
comment on view ops.snapshot_reuse is
    'Per interval, last hour: runs, distinct snapshot versions (data_as_of), estimated loads '
    '(distinct worker x data_as_of) and reuse_rate = 1 - loads / runs.';


-- Skips by reason, from the scheduler's tick log (backend.scheduler_ticks): every
-- interval x (backlog, hourly_cap), plus invalid_interval (not per interval: those
-- traders have no valid interval). backlog and hourly_cap count trader-slots not
-- enqueued; invalid_interval is recounted on every tick, so `latest` (the count at the
-- newest tick) is the number of traders affected, and the sums are trader-minutes.
-- Immediate first runs skipped by the hourly cap are in
-- backend.user_hourly_executions.skipped_hourly_cap (with the tick's), not here.
create view ops.skips_by_reason as
with ticks as (
    select k.slot, k.by_interval, k.skipped_invalid_interval
    from backend.scheduler_ticks k
    where k.slot > now() - interval '1 hour'
),
latest as (
    select k.slot, k.by_interval, k.skipped_invalid_interval
    from backend.scheduler_ticks k
    order by k.slot desc
    limit 1
),
per_interval as (
    select
        reason.name as reason,
        i.name as interval,
        i.minutes as sort_key,
        coalesce(sum((t.by_interval -> i.name ->> reason.outcome)::integer)
                 filter (where t.slot > now() - interval '15 minutes'), 0) as skipped_15m,
        coalesce(sum((t.by_interval -> i.name ->> reason.outcome)::integer), 0) as skipped_1h,
        max(t.slot) filter (where (t.by_interval -> i.name ->> reason.outcome)::integer > 0)
            as last_skip_slot,
        reason.sort_key as reason_key
    from (values ('backlog', 'skipped_backlog', 1), ('hourly_cap', 'skipped_hourly_cap', 2))
        as reason(name, outcome, sort_key)
    cross join backend.schedule_intervals i
    left join ticks t on true
    group by reason.name, reason.outcome, reason.sort_key, i.name, i.minutes
)
select
    p.reason,
    p.interval,
    p.skipped_15m::bigint as skipped_15m,
    p.skipped_1h::bigint as skipped_1h,
    coalesce((select (l.by_interval -> p.interval ->> (
        case p.reason when 'backlog' then 'skipped_backlog' else 'skipped_hourly_cap' end
    ))::integer from latest l), 0)::bigint as latest,
    p.last_skip_slot
from per_interval p
union all
select
    'invalid_interval',
    null,
    coalesce(sum(t.skipped_invalid_interval)
             filter (where t.slot > now() - interval '15 minutes'), 0)::bigint,
    coalesce(sum(t.skipped_invalid_interval), 0)::bigint,
    coalesce((select l.skipped_invalid_interval from latest l), 0)::bigint,
    max(t.slot) filter (where t.skipped_invalid_interval > 0)
from ticks t;
comment on view ops.skips_by_reason is
    'Scheduler skips from backend.scheduler_ticks: per reason (backlog, hourly_cap per '
    'interval; invalid_interval overall) the sums over 15 minutes and 1 hour, the count at '
    'the latest tick, and the last slot with a skip.';


-- Stalled jobs: 'doing' jobs whose worker has no heartbeat for 60 s (or is gone). The
-- workers' own recovery (backend.recover_stalled_jobs, every TRADER_RECOVERY_SECONDS)
-- requeues them after TRADER_STALLED_SECONDS; `traderctl requeue --stalled` does it now.
create view ops.stalled_jobs as
select
    j.id as job_id,
    j.queue_name::text as queue_name,
    j.task_name::text as task_name,
    j.args,
    j.attempts,
    j.worker_id,
    w.last_heartbeat,
    round(extract(epoch from now() - w.last_heartbeat)::numeric, 1) as heartbeat_age_s
from procrastinate.procrastinate_jobs j
left join procrastinate.procrastinate_workers w on w.id = j.worker_id
where j.status = 'doing'
  and (w.id is null or w.last_heartbeat < now() - interval '60 seconds')
order by j.id;
comment on view ops.stalled_jobs is
    'Doing jobs whose worker is gone or silent for 60 s (candidates for requeue --stalled).';


revoke all on all tables in schema ops from public, anon, authenticated;
do $$
begin
    if exists (select from pg_roles where rolname = 'service_role') then
        grant usage on schema ops to service_role;
        grant select on all tables in schema ops to service_role;
    end if;
end
$$;
