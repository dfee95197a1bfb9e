-- Admin queries: what `traderctl traders|requeue|stats|signals` run.
-- Reads of metrics go through the ops.* views (migrations/2026112600400*); these queries
-- add the per-trader lookups and the few writes an operator may do.

-- name: admin_interval_names
-- Valid refresh intervals, shortest first.
select i.name from backend.schedule_intervals i order by i.minutes;

-- name: admin_user_by_email
-- The id of the user with this email (case-insensitive), if any.
select u.id from auth.users u where lower(u.email) = lower(%(email)s) limit 1;

-- name: admin_user_exists
-- Whether a user with this id exists.
select exists (select from auth.users u where u.id = %(user_id)s::uuid) as found;

-- name: admin_list_traders
-- Traders matching the filters (NULL/false = no filter), oldest first, with the total count before the limit.
select
    t.id,
    t.user_id,
    u.email,
    t.name,
    t.enabled,
    coalesce(nullif(t.filter ->> 'refreshInterval', ''), '1m') as interval,
    coalesce(ut.tier, 'free') as tier,
    st.last_run_at,
    st.last_run_status,
    coalesce(st.consecutive_errors, 0) as consecutive_errors,
    coalesce(st.run_count, 0) as run_count,
    coalesce(st.error_count, 0) as error_count,
    coalesce(st.signal_count, 0) as signal_count,
    st.last_error,
    t.schedule_problem,
    t.disabled_reason,
    count(*) over () as total
from public.traders t
left join public.trader_stats st on st.trader_id = t.id
left join auth.users u on u.id = t.user_id
left join public.user_tiers ut on ut.user_id = t.user_id
where (%(user_id)s::uuid is null or t.user_id = %(user_id)s::uuid)
  and (%(interval)s::text is null
       or coalesce(nullif(t.filter ->> 'refreshInterval', ''), '1m') = %(interval)s::text)
  and (not %(failing)s::boolean or st.last_run_status = 'error' or st.consecutive_errors > 0)
  and (not %(disabled)s::boolean or not t.enabled)
order by t.created_at, t.id
limit %(limit)s;

-- name: admin_trader_detail
-- One trader with its owner, tier limits, filter summary, scheduling state and next due slot.
select
    t.id,
    t.user_id,
    u.email,
    t.name,
    t.enabled,
    coalesce(nullif(t.filter ->> 'refreshInterval', ''), '1m') as interval,
    case when jsonb_typeof(t.filter -> 'requiredTimeframes') = 'array'
         then array(select jsonb_array_elements_text(t.filter -> 'requiredTimeframes'))
         else '{}'::text[] end as required_timeframes,
    length(coalesce(t.filter ->> 'code', '')) as code_chars,
    coalesce(array_length(regexp_split_to_array(coalesce(t.filter ->> 'code', ''), E'\n'), 1), 0)
        as code_lines,
    left(btrim(split_part(btrim(coalesce(t.filter ->> 'code', ''), E' \n\t'), E'\n', 1)), 120)
        as code_first_line,
    array(select jsonb_object_keys(t.filter) order by 1) as filter_keys,
    coalesce(ut.tier, 'free') as tier,
    tr.queue_priority,
    tr.max_enabled_traders,
    tr.max_executions_per_hour,
    tr.max_symbols,
    t.created_at,
    t.updated_at,
    st.last_slot,
    st.last_run_at,
    st.last_run_status,
    st.last_error,
    st.last_error_type,
    st.last_error_at,
    coalesce(st.consecutive_errors, 0) as consecutive_errors,
    coalesce(st.error_count, 0) as error_count,
    coalesce(st.run_count, 0) as run_count,
    coalesce(st.signal_count, 0) as signal_count,
    t.schedule_problem,
    t.disabled_reason,
    coalesce(cardinality(m.symbols), 0) as current_matches,
    -- First slot of the trader's interval the scheduler has not handled yet: at or after
    -- the current minute and after the watermark. NULL when it will not be scheduled.
    case when t.enabled and t.schedule_problem is null and i.minutes is not null
              and coalesce(t.filter ->> 'code', '') ~ '\S' then
        b.base + make_interval(mins => mod(i.minutes
            - mod(extract(epoch from b.base)::bigint / 60, i.minutes), i.minutes)::integer)
    end as next_due_slot
from public.traders t
left join public.trader_stats st on st.trader_id = t.id
left join auth.users u on u.id = t.user_id
left join public.user_tiers ut on ut.user_id = t.user_id
left join public.tiers tr on tr.name = coalesce(ut.tier, 'free')
left join public.trader_matches m on m.trader_id = t.id
left join backend.schedule_intervals i
    on i.name = coalesce(nullif(t.filter ->> 'refreshInterval', ''), '1m')
cross join lateral (
    select greatest(
        date_trunc('minute', now(), 'UTC'),
        (select s.last_slot + interval '1 minute' from backend.scheduler_state s where s.id)
    ) as base
) b
where t.id = %(trader_id)s::uuid;

-- name: admin_trader_runs
-- The trader's latest runs, newest slot first.
select
    r.id,
    r.slot,
    r.status,
    r.started_at,
    r.finished_at,
    round(r.duration_ms::numeric, 1) as duration_ms,
    r.symbols_evaluated,
    r.matches,
    r.signals,
    r.error_type,
    r.error_message,
    r.worker
from public.trader_runs r
where r.trader_id = %(trader_id)s::uuid
order by r.slot desc
limit %(limit)s;

-- name: admin_trader_jobs
-- The trader's queue jobs still in the table (retention keeps finished ones about an hour), newest first.
select
    j.id,
    j.queue_name,
    j.status::text as status,
    j.priority,
    j.attempts,
    j.args ->> 'slot' as slot,
    j.scheduled_at,
    j.worker_id
from procrastinate.procrastinate_jobs j
where j.lock = 'trader:' || %(trader_id)s::text
order by j.id desc
limit %(limit)s;

-- name: admin_trader_state
-- Lock one trader row for an admin change and return what the change depends on.
select
    t.id,
    t.enabled,
    t.disabled_reason,
    t.schedule_problem,
    coalesce(t.filter ->> 'code', '') ~ '\S' as has_code,
    coalesce(nullif(t.filter ->> 'refreshInterval', ''), '1m') as interval
from public.traders t
where t.id = %(trader_id)s::uuid
for update;

-- name: admin_set_trader_enabled
-- Enable or disable a trader; disabling records the operator's reason for the user to read (enabling clears it, by trigger).
update public.traders t
set enabled = %(enabled)s::boolean,
    disabled_reason = case when %(enabled)s::boolean then t.disabled_reason
                           else %(reason)s::text end
where t.id = %(trader_id)s::uuid
returning t.id, t.enabled, t.disabled_reason;

-- name: admin_waiting_job
-- The trader's waiting (todo) job, if any.
select j.id, j.queue_name, j.args ->> 'slot' as slot
from procrastinate.procrastinate_jobs j
where j.queueing_lock = backend.trader_lock(%(trader_id)s::uuid) and j.status = 'todo';

-- name: admin_run_for_current_slot
-- The trader's run for the current UTC minute, if it already has one.
select r.id, r.slot
from public.trader_runs r
where r.trader_id = %(trader_id)s::uuid and r.slot = date_trunc('minute', now(), 'UTC');

-- name: admin_enqueue_trader_run
-- Enqueue an immediate run of one trader for the current UTC minute, at top priority (100), through backend.enqueue_trader_runs (the scheduler's job format); no row if a job is already waiting.
select e.job_id as id, e.queue_name, e.task_name, e.args, 0 as attempts
from public.traders t
cross join lateral backend.enqueue_trader_runs(
    array[t.id],
    array[coalesce(nullif(t.filter ->> 'refreshInterval', ''), '1m')],
    array[date_trunc('minute', now(), 'UTC')],
    array[100]
) e
where t.id = %(trader_id)s::uuid;

-- name: admin_failed_jobs
-- Failed jobs (optionally of one queue), oldest first: what `requeue --failed --dry-run` would requeue.
select j.id, j.queue_name::text as queue_name, j.task_name::text as task_name, j.args, j.attempts
from procrastinate.procrastinate_jobs j
where j.status = 'failed' and (%(queue)s::text is null or j.queue_name = %(queue)s::text)
order by j.id
limit %(limit)s;

-- name: admin_requeue_failed_jobs
-- Put failed jobs back to todo (attempts reset, due now); a job whose queueing_lock is already taken by a waiting job drops it, like backend.requeue_job.
with locked as (
    select j.id, j.queueing_lock
    from procrastinate.procrastinate_jobs j
    where j.status = 'failed' and (%(queue)s::text is null or j.queue_name = %(queue)s::text)
    order by j.id
    limit %(limit)s
    for update of j skip locked
),
ranked as (
    -- Two failed jobs of one trader: only the oldest may keep the queueing_lock.
    select l.id, row_number() over (partition by l.queueing_lock order by l.id) as rn
    from locked l
)
update procrastinate.procrastinate_jobs j
set status = 'todo',
    scheduled_at = null,
    worker_id = null,
    attempts = 0,
    abort_requested = false,
    queueing_lock = case
        when j.queueing_lock is null then null
        when r.rn > 1 then null
        when exists (
            select 1 from procrastinate.procrastinate_jobs o
            where o.queueing_lock = j.queueing_lock and o.status = 'todo'
        ) then null
        else j.queueing_lock
    end
from ranked r
where j.id = r.id
returning j.id, j.queue_name::text as queue_name, j.task_name::text as task_name, j.args,
          j.attempts;

-- name: admin_stalled_jobs
-- Doing jobs without a live worker (no heartbeat for %(stalled_seconds)s s): what `requeue --stalled --dry-run` would requeue.
select j.id, j.queue_name::text as queue_name, j.task_name::text as task_name, j.args, j.attempts
from procrastinate.procrastinate_jobs j
where j.status = 'doing'
  and (
      j.worker_id is null
      or not exists (
          select 1 from procrastinate.procrastinate_workers w
          where w.id = j.worker_id
            and w.last_heartbeat >= now() - make_interval(secs => %(stalled_seconds)s)
      )
  )
order by j.id;

-- name: admin_signals_after
-- Signals with id above %(after_id)s (optionally of one user / trader), oldest first, with the database's now().
select
    s.id,
    s.created_at,
    s.slot,
    s.trader_id,
    t.name as trader_name,
    s.user_id,
    s.symbol,
    s.interval,
    s.price,
    s.change_percent,
    s.quote_volume,
    now() as db_now
from public.signals s
left join public.traders t on t.id = s.trader_id
where s.id > %(after_id)s
  and (%(user_id)s::uuid is null or s.user_id = %(user_id)s::uuid)
  and (%(trader_id)s::uuid is null or s.trader_id = %(trader_id)s::uuid)
order by s.id
limit %(limit)s;

-- name: admin_signals_latest_id
-- The id below which the last %(last)s matching signals start (0 when there are fewer).
select coalesce(min(x.id) - 1, (select coalesce(max(id), 0) from public.signals)) as after_id
from (
    select s.id
    from public.signals s
    where (%(user_id)s::uuid is null or s.user_id = %(user_id)s::uuid)
      and (%(trader_id)s::uuid is null or s.trader_id = %(trader_id)s::uuid)
    order by s.id desc
    limit %(last)s
) x;

-- name: admin_trader_exists
-- Whether a trader with this id exists.
select exists (select from public.traders t where t.id = %(trader_id)s::uuid) as found;

-- name: admin_ops_view
-- Every row of one ops view ({view} is an Identifier from the fixed list OPS_VIEWS in worker/admin/stats.py).
select * from ops.{view};

-- name: admin_queue_depth_metrics
-- Per queue: waiting, delayed and running jobs and the oldest waiting job's age (ops.queue_depth), for Prometheus.
select queue_name, waiting, delayed, running, coalesce(oldest_waiting_age_s, 0) as oldest_waiting_age_s
from ops.queue_depth;

-- name: admin_read_only_snapshot
-- First statement of `traderctl stats`: every view read from one consistent snapshot, read only.
set transaction isolation level repeatable read, read only;

-- name: admin_server_status
-- `traderctl db status`: the server's version and whether pg_cron is installed in this database.
select current_setting('server_version') as server_version,
       exists (select from pg_extension where extname = 'pg_cron') as pg_cron;
