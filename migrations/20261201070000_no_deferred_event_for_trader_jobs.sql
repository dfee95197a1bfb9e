-- No per-row procrastinate bookkeeping for trader jobs: no `deferred` event row when one is
-- enqueued, no periodic-defer unlink when one is deleted.
--
-- A trader job lives about a minute: the tick inserts it, a worker claims it and its
-- commit deletes it (20261201060000_no_started_event_for_trader_jobs.sql took its
-- `started` event away for the same reasons). Its `deferred` event said when it was
-- enqueued, which the job's own `slot` argument already says to within the tick's few
-- seconds, and it cost per run: a procrastinate_events row with two index entries and a
-- foreign-key check when written (by the tick's set-based insert, or by
-- procrastinate_trigger_status_events_insert_v1 for the first run and `traderctl
-- requeue`), and a cascaded delete when the job went. docs/worker.md ("Claiming") records
-- the measurement.
--
-- What reads it, and what it reads now:
--   * ops.queue_depth: a waiting job waits since its scheduled_at, else the latest event
--     that put it back in todo (deferred_for_retry, retried: still written), else, for a
--     trader job, since its slot began (replaced below);
--   * backend.prune_history: finished jobs are pruned by their latest event, and a
--     finished job always has one (succeeded, failed, cancelled, aborted: still written).
--
-- procrastinate_trigger_delete_jobs_v1 clears procrastinate_periodic_defers.job_id before
-- a job is deleted. Periodic defers are procrastinate's periodic tasks; run_trader is
-- never one (the tick, the first-run trigger and `traderctl requeue` enqueue it through
-- backend.enqueue_trader_runs), so for a trader job the trigger's UPDATE never matches a
-- row, and it was one plpgsql call per finished job.
--
-- Every other task's jobs, and every status change but the insert, are recorded as
-- before.

drop trigger procrastinate_trigger_status_events_insert_v1 on procrastinate.procrastinate_jobs;

create trigger procrastinate_trigger_status_events_insert_v1
    after insert on procrastinate.procrastinate_jobs
    for each row
    when (new.status = 'todo'::procrastinate.procrastinate_job_status
          and new.task_name <> 'run_trader')
    execute procedure procrastinate.procrastinate_trigger_function_status_events_insert_v1();

drop trigger procrastinate_trigger_delete_jobs_v1 on procrastinate.procrastinate_jobs;

create trigger procrastinate_trigger_delete_jobs_v1
    before delete on procrastinate.procrastinate_jobs
    for each row
    when (old.task_name <> 'run_trader')
    execute procedure procrastinate.procrastinate_unlink_periodic_defers_v1();

-- backend.enqueue_trader_runs (20261201000100_create_enqueue_trader_runs.sql) without its
-- set-based copy of the `deferred` events: in bulk mode it still writes the `scheduled`
-- events and the NOTIFYs the bypassed triggers would have.
create or replace function backend.enqueue_trader_runs(
    trader_ids uuid[],
    intervals text[],
    slots timestamptz[],
    priorities integer[],
    scheduled_at timestamptz default null,
    bulk boolean default false
)
returns table (job_id bigint, trader_id uuid, queue_name text, task_name text, args jsonb)
language plpgsql
volatile
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
    v_replication_role constant text := current_setting('session_replication_role');
    v_bulk boolean := false;
begin
    if bulk and v_replication_role = 'origin' then
        begin
            perform set_config('session_replication_role', 'replica', true);
            v_bulk := true;
        exception when insufficient_privilege then
            -- A role that may not set it (a managed Postgres without the privilege) keeps
            -- the triggers: same result, slower.
            v_bulk := false;
        end;
    end if;

    return query
    with slot_text as (
        -- The job's "slot" argument, formatted once per distinct slot, not once per job.
        select s.slot, to_char(s.slot at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"+00:00"') as txt
        from (select distinct u.slot from unnest(slots) as u(slot)) s
    ),
    inserted as (
        insert into procrastinate.procrastinate_jobs
            (queue_name, task_name, priority, lock, queueing_lock, args, status, scheduled_at)
        select
            backend.trader_queue(r.iv),
            'run_trader',
            r.priority,
            backend.trader_lock(r.trader_id),
            backend.trader_lock(r.trader_id),
            jsonb_build_object('trader_id', r.trader_id, 'slot', st.txt),
            'todo',
            enqueue_trader_runs.scheduled_at
        from unnest(trader_ids, intervals, slots, priorities) as r(trader_id, iv, slot, priority)
        join slot_text st on st.slot = r.slot
        -- A job already waiting for the trader (queueing_lock) wins: no row for it.
        on conflict (queueing_lock) where status = 'todo' do nothing
        returning id, procrastinate_jobs.queue_name, procrastinate_jobs.task_name,
                  procrastinate_jobs.args, procrastinate_jobs.scheduled_at
    ),
    scheduled as (
        -- What procrastinate_trigger_scheduled_events_v1 writes, when bypassed.
        insert into procrastinate.procrastinate_events (job_id, type, at)
        select i.id, 'scheduled', i.scheduled_at
        from inserted i
        where v_bulk and i.scheduled_at is not null
    ),
    woken as materialized (
        -- What procrastinate_notify_queue_job_inserted_v1 sends, once per queue (with its
        -- newest job) instead of once per job: a worker only needs to wake up.
        select count(pg_notify(
            n.channel, json_build_object('type', 'job_inserted', 'job_id', n.job_id)::text
        )) as notified
        from (
            select 'procrastinate_queue_v1#' || i.queue_name as channel, max(i.id) as job_id
            from inserted i
            where v_bulk
            group by i.queue_name
            union all
            select 'procrastinate_any_queue_v1', max(i.id)
            from inserted i
            where v_bulk
            having count(*) > 0
        ) n
    )
    select i.id, (i.args ->> 'trader_id')::uuid, i.queue_name::text, i.task_name::text, i.args
    from inserted i
    cross join woken;

    if v_bulk then
        perform set_config('session_replication_role', v_replication_role, true);
    end if;
end
$$;

-- The slot of a trader job's arguments, in the format backend.enqueue_trader_runs writes
-- ('2026-12-01T00:00:00+00:00'); NULL for anything else. Built by arithmetic from the
-- digits rather than by a cast, so no hand-made `slot` (a 30 February, a month 13) can
-- raise an error in a view that reads every waiting job.
create function backend.trader_job_slot(args jsonb) returns timestamptz
language sql
immutable
parallel safe
return case
    when args ->> 'slot' ~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$' then
        (timestamp '0001-01-01 00:00:00' + make_interval(
            years => substr(args ->> 'slot', 1, 4)::integer - 1,
            months => substr(args ->> 'slot', 6, 2)::integer - 1,
            days => substr(args ->> 'slot', 9, 2)::integer - 1,
            hours => substr(args ->> 'slot', 12, 2)::integer,
            mins => substr(args ->> 'slot', 15, 2)::integer,
            secs => substr(args ->> 'slot', 18, 2)::integer
        )) at time zone 'UTC'
end;
comment on function backend.trader_job_slot(jsonb) is
    'The slot of a run_trader job''s args (enqueue format), NULL if absent or malformed.';
-- Callers of ops.queue_depth (service_role, the metrics server) call it through the view.
revoke all on function backend.trader_job_slot(jsonb) from public, anon, authenticated;
do $$
begin
    if exists (select from pg_roles where rolname = 'service_role') then
        grant execute on function backend.trader_job_slot(jsonb) to service_role;
    end if;
end
$$;


-- ops.queue_depth (20261126004000_create_ops_views.sql), with a trader job's slot as the
-- last resort for when it started waiting.
create or replace view ops.queue_depth as
with jobs as (
    select
        j.queue_name::text as queue_name,
        j.status,
        j.scheduled_at,
        case when j.status = 'todo' then coalesce(
            j.scheduled_at,
            (select max(e.at) from procrastinate.procrastinate_events e
             where e.job_id = j.id and e.type in ('deferred', 'deferred_for_retry', 'retried')),
            case when j.task_name = 'run_trader' then backend.trader_job_slot(j.args) end
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
