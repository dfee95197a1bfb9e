-- One definition of a trader job in SQL: backend.enqueue_trader_runs() is the only place
-- that writes a run_trader row into procrastinate_jobs.
--
-- Why: the scheduler tick, the first-run trigger and `traderctl requeue` each retyped the
-- same INSERT (queue name, task name, lock strings, args format), so a change to the job
-- format had to be made three times and kept in step with the Python side by hand. Now
-- the three callers pass (trader, interval, slot, priority) and this function builds the
-- row; worker/queue/contract.py holds the same names for Python and docs/worker.md ("The
-- queue contract") describes both.
--
-- The function is set-taking (parallel arrays) because the tick enqueues up to 100,000
-- jobs per minute in one statement. With bulk => true it also takes over the tick's bulk
-- mode: procrastinate's per-row INSERT triggers (two pg_notify calls and one
-- procrastinate_events row per job) are switched off for the INSERT with
-- session_replication_role = replica, and their effects are written set-based instead:
-- the same 'deferred' (and 'scheduled') events per job and one NOTIFY per queue. The
-- single-row callers keep the triggers: changing session_replication_role resets the
-- session's plan cache, which is worth it once per tick, not once per trader.
--
-- schedule_due_traders and traders_enqueue_first_run are replaced to call it. Both now
-- also leave alone the traders the backend does not run (execution mode browser, see
-- 20261201000010_create_rollout.sql) and, the tick, traders flagged with a
-- schedule_problem of any kind; otherwise their behaviour is unchanged.

-- 'trader:<uuid>': the lock (never two runs of one trader at once) and the queueing lock
-- (at most one waiting job per trader). A plain SQL function with a standard body, so the
-- planner inlines it (the tick joins 100,000 traders on it).
create function backend.trader_lock(trader_id uuid) returns text
language sql
immutable
parallel safe
return 'trader:' || trader_id::text;
comment on function backend.trader_lock(uuid) is
    'Lock and queueing lock of a trader''s jobs: ''trader:<uuid>''.';

-- 'traders.<interval>': one queue per refresh interval.
create function backend.trader_queue(refresh_interval text) returns text
language sql
immutable
parallel safe
return 'traders.' || refresh_interval;
comment on function backend.trader_queue(text) is
    'Queue of the jobs of traders with this refresh interval: ''traders.<interval>''.';

create function backend.enqueue_trader_runs(
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
    deferred as (
        -- What procrastinate_trigger_status_events_insert_v1 writes, when bypassed.
        insert into procrastinate.procrastinate_events (job_id, type)
        select i.id, 'deferred'
        from inserted i
        where v_bulk
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
comment on function backend.enqueue_trader_runs(uuid[], text[], timestamptz[], integer[], timestamptz, boolean) is
    'Enqueue run_trader jobs: row i runs trader_ids[i] on queue traders.<intervals[i]> for '
    'slots[i] at priorities[i] (due at scheduled_at, NULL = now). Skips traders with a job '
    'waiting; returns the jobs inserted. bulk => true writes the effects of procrastinate''s '
    'INSERT triggers set-based (the scheduler tick).';

revoke all on function backend.enqueue_trader_runs(uuid[], text[], timestamptz[], integer[], timestamptz, boolean)
    from public, anon, authenticated;
do $$
begin
    if exists (select from pg_roles where rolname = 'service_role') then
        grant execute on function
            backend.enqueue_trader_runs(uuid[], text[], timestamptz[], integer[], timestamptz, boolean)
        to service_role;
    end if;
end
$$;

-- The scheduler tick, enqueueing through backend.enqueue_trader_runs (see the migration
-- 20261126001100_create_schedule_due_traders.sql for what it does and why).
create or replace function backend.schedule_due_traders(at timestamptz default now())
returns table (refresh_interval text, outcome text, trader_count integer)
language plpgsql
volatile
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
    v_slot constant timestamptz := date_trunc('minute', at, 'UTC');
    v_hour constant timestamptz := date_trunc('hour', at, 'UTC');
    v_started constant timestamptz := clock_timestamp();
    v_last timestamptz;
    v_window_start timestamptz;
    v_invalid integer;
    v_counts jsonb;
begin
    if at is null then
        raise exception 'schedule_due_traders(at) needs a timestamp, got NULL'
            using errcode = 'null_value_not_allowed',
                  hint = 'Call it without arguments to schedule the current minute.';
    end if;

    -- Lock the watermark: a second tick for the same minute waits here, then sees it.
    select s.last_slot into v_last from backend.scheduler_state s where s.id for update;
    if not found then
        insert into backend.scheduler_state (id) values (true);
    end if;
    if v_last is not null and v_last >= v_slot then
        return;
    end if;
    v_window_start := greatest(
        coalesce(v_last + interval '1 minute', v_slot),
        v_slot - interval '1439 minutes'
    );

    -- The jobs are written by backend.enqueue_trader_runs(..., bulk => true): one call
    -- for every trader enqueued, which bypasses procrastinate's per-row INSERT triggers
    -- and writes their effects set-based (at 00:00 with 100,000 traders the triggers cost
    -- ~3.5 s of a 5 s budget, bench/bench_scheduler.py).
    -- tests/integration/test_scheduler.py pins the list of triggers it stands in for.
    with due as (
        -- Latest slot of each interval at or before v_slot: step back by the minutes
        -- elapsed since the interval's last UTC boundary (epoch minutes mod its length).
        select x.name, x.due_slot
        from (
            select
                i.name,
                v_slot - make_interval(
                    mins => ((extract(epoch from v_slot)::bigint / 60) % i.minutes)::integer
                ) as due_slot
            from backend.schedule_intervals i
        ) x
    ),
    waiting as (
        -- Traders with a job still waiting: served by procrastinate's unique partial index
        -- procrastinate_jobs_queueing_lock_idx_v1 (queueing_lock) WHERE status = 'todo'.
        select j.queueing_lock
        from procrastinate.procrastinate_jobs j
        where j.status = 'todo'
    ),
    candidate as (
        select
            t.id,
            t.user_id,
            t.created_at,
            d.name as iv,
            d.due_slot,
            tr.queue_priority,
            tr.max_executions_per_hour as cap,
            w.queueing_lock is not null as backlog
        from public.traders t
        -- Same rule as backend.schedule_problem(), inlined so the planner can hash-join.
        join due d
            on d.name = coalesce(nullif(t.filter ->> 'refreshInterval', ''), '1m')
            and d.due_slot >= v_window_start
        left join public.user_tiers ut on ut.user_id = t.user_id
        join public.tiers tr on tr.name = coalesce(ut.tier, 'free')
        left join waiting w on w.queueing_lock = backend.trader_lock(t.id)
        -- Only traders the backend runs: shadow or server (docs/rollout.md).
        join public.trader_modes m on m.trader_id = t.id and m.mode <> 'browser'
        where t.enabled
            -- Flagged filters (bad code, timeframes) wait until the user fixes them.
            and t.schedule_problem is null
            -- The browser runs only traders whose code is not blank.
            and (t.filter ->> 'code') ~ '\S'
    ),
    decided as (
        -- Uncapped owners (elite) or a waiting job: no ranking needed.
        select
            c.id, c.user_id, c.iv, c.due_slot, c.queue_priority,
            case when c.backlog then 'skipped_backlog' else 'enqueued' end as outcome
        from candidate c
        where c.cap is null or c.backlog
        union all
        -- Capped owners: their oldest traders get what is left of this hour's budget.
        -- (A separate branch so only these rows are sorted for row_number().)
        select
            c.id, c.user_id, c.iv, c.due_slot, c.queue_priority,
            case
                when row_number() over (partition by c.user_id order by c.created_at, c.id)
                    <= c.cap - coalesce(h.enqueued, 0) then 'enqueued'
                else 'skipped_hourly_cap'
            end
        from candidate c
        left join backend.user_hourly_executions h
            on h.user_id = c.user_id and h.hour = v_hour
        where c.cap is not null and not c.backlog
    ),
    inserted as (
        select e.job_id as id, e.queue_name, e.trader_id
        from (
            select
                array_agg(d.id) as ids,
                array_agg(d.iv) as ivs,
                array_agg(d.due_slot) as slots,
                array_agg(d.queue_priority) as priorities
            from decided d
            where d.outcome = 'enqueued'
        ) a
        -- A job that appeared since `waiting` was read (an immediate first run committed
        -- meanwhile) returns no row here: a backlog skip instead of a failed batch.
        cross join lateral backend.enqueue_trader_runs(
            a.ids, a.ivs, a.slots, a.priorities, scheduled_at => null, bulk => true
        ) e
        where a.ids is not null
    ),
    final as (
        select
            d.user_id,
            d.iv,
            case
                when d.outcome = 'enqueued' and i.trader_id is null then 'skipped_backlog'
                else d.outcome
            end as outcome
        from decided d
        left join inserted i on i.trader_id = d.id and d.outcome = 'enqueued'
    ),
    counted as (
        insert into backend.user_hourly_executions as h
            (user_id, hour, enqueued, skipped_hourly_cap)
        select
            f.user_id,
            v_hour,
            count(*) filter (where f.outcome = 'enqueued'),
            count(*) filter (where f.outcome = 'skipped_hourly_cap')
        from final f
        where f.outcome in ('enqueued', 'skipped_hourly_cap')
        group by f.user_id
        on conflict (user_id, hour) do update
            set enqueued = h.enqueued + excluded.enqueued,
                skipped_hourly_cap = h.skipped_hourly_cap + excluded.skipped_hourly_cap
    )
    select coalesce(jsonb_agg(jsonb_build_object(
            'refresh_interval', g.iv, 'outcome', g.outcome, 'trader_count', g.n)), '[]')
    from (
        select f.iv, f.outcome, count(*)::integer as n
        from final f
        group by f.iv, f.outcome
    ) g
    into v_counts;

    -- Enabled traders the scheduler cannot schedule: counted on every tick so the
    -- problem stays visible (served by traders_schedule_problem_idx).
    select count(*)::integer into v_invalid
    from public.traders t
    where t.schedule_problem is not null and t.enabled and (t.filter ->> 'code') ~ '\S';
    if v_invalid > 0 then
        v_counts := v_counts || jsonb_build_array(jsonb_build_object(
            'refresh_interval', null, 'outcome', 'skipped_invalid_interval',
            'trader_count', v_invalid));
    end if;

    update backend.scheduler_state s
    set last_slot = v_slot, updated_at = now()
    where s.id;

    insert into backend.scheduler_ticks (
        slot, window_start, enqueued, skipped_backlog, skipped_hourly_cap,
        skipped_invalid_interval, by_interval, duration_ms
    )
    select
        v_slot,
        v_window_start,
        coalesce(sum(c.n) filter (where c.o = 'enqueued'), 0),
        coalesce(sum(c.n) filter (where c.o = 'skipped_backlog'), 0),
        coalesce(sum(c.n) filter (where c.o = 'skipped_hourly_cap'), 0),
        v_invalid,
        coalesce(
            (select jsonb_object_agg(x.iv, x.outcomes) from (
                select e ->> 'refresh_interval' as iv,
                       jsonb_object_agg(e ->> 'outcome', (e ->> 'trader_count')::integer) as outcomes
                from jsonb_array_elements(v_counts) e
                where e ->> 'refresh_interval' is not null
                group by 1
            ) x),
            '{}'
        ),
        extract(epoch from clock_timestamp() - v_started) * 1000
    from (
        select e ->> 'outcome' as o, (e ->> 'trader_count')::integer as n
        from jsonb_array_elements(v_counts) e
    ) c;

    -- Keep the bookkeeping compact.
    delete from backend.user_hourly_executions h where h.hour < v_hour - interval '48 hours';
    delete from backend.scheduler_ticks k where k.slot < v_slot - interval '7 days';

    return query
    select r.refresh_interval, r.outcome, r.trader_count
    from jsonb_to_recordset(v_counts) as r(refresh_interval text, outcome text, trader_count integer)
    order by r.refresh_interval nulls last, r.outcome;
end
$$;

-- The immediate first run, enqueueing through backend.enqueue_trader_runs (rules in
-- 20261126001300_enqueue_first_run.sql).
create or replace function backend.traders_enqueue_first_run() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_slot timestamptz := date_trunc('minute', now(), 'UTC');
    v_scheduled_at timestamptz := null;
    v_hour constant timestamptz := date_trunc('hour', now(), 'UTC');
    v_lock constant text := backend.trader_lock(new.id);
    v_cap integer;
    v_reserved boolean := false;
    v_job_id bigint;
begin
    if coalesce(current_setting('traderctl.skip_first_run', true), '') = 'on' then
        return null;
    end if;
    if not new.enabled
        or new.schedule_problem is not null
        or not coalesce((new.filter ->> 'code') ~ '\S', false) then
        return null;
    end if;
    -- Updates: only enabling, or a change of the code itself, triggers a run.
    if tg_op = 'UPDATE' and old.enabled
        and (old.filter ->> 'code') is not distinct from (new.filter ->> 'code') then
        return null;
    end if;

    -- Only traders the backend runs (shadow or server). A new trader's mode row is
    -- written here: row triggers fire before traders_assign_mode (per statement).
    if tg_op = 'INSERT' then
        perform backend.refresh_trader_modes(array[new.id]);
    end if;
    if not exists (
        select from public.trader_modes m where m.trader_id = new.id and m.mode <> 'browser'
    ) then
        return null;
    end if;

    -- Backlog: a waiting job will run the current code anyway.
    if exists (
        select from procrastinate.procrastinate_jobs j
        where j.queueing_lock = v_lock and j.status = 'todo'
    ) then
        return null;
    end if;

    -- This minute's run already happened, or is running now with the old code: (trader,
    -- slot) is unique, so a job for this minute would commit nothing. Run at the next
    -- minute instead, so the new code shows its results within a minute.
    if exists (
        select from public.trader_runs r where r.trader_id = new.id and r.slot = v_slot
    ) or exists (
        select from procrastinate.procrastinate_jobs j
        where j.lock = v_lock and j.status = 'doing'
    ) then
        v_slot := v_slot + interval '1 minute';
        v_scheduled_at := v_slot;
    end if;

    select tr.max_executions_per_hour into v_cap
    from public.tiers tr
    where tr.name = coalesce(
        (select ut.tier from public.user_tiers ut where ut.user_id = new.user_id), 'free');

    if v_cap is not null then
        -- Reserve one execution of this hour's budget atomically: the conditional upsert
        -- increments only while under the cap (row locks serialize concurrent callers).
        if v_cap > 0 then
            insert into backend.user_hourly_executions as h (user_id, hour, enqueued)
            values (new.user_id, v_hour, 1)
            on conflict (user_id, hour) do update
                set enqueued = h.enqueued + 1
                where h.enqueued < v_cap
            returning true into v_reserved;
        end if;
        if not coalesce(v_reserved, false) then
            insert into backend.user_hourly_executions as h (user_id, hour, skipped_hourly_cap)
            values (new.user_id, v_hour, 1)
            on conflict (user_id, hour) do update
                set skipped_hourly_cap = h.skipped_hourly_cap + 1;
            return null;
        end if;
    end if;

    select e.job_id into v_job_id
    from backend.enqueue_trader_runs(
        array[new.id],
        array[coalesce(nullif(new.filter ->> 'refreshInterval', ''), '1m')],
        array[v_slot],
        array[100],
        scheduled_at => v_scheduled_at
    ) e;

    if v_job_id is null then
        -- A job appeared concurrently (the tick): give the reservation back.
        if v_reserved then
            update backend.user_hourly_executions h
            set enqueued = h.enqueued - 1
            where h.user_id = new.user_id and h.hour = v_hour;
        end if;
    elsif v_cap is null then
        insert into backend.user_hourly_executions as h (user_id, hour, enqueued)
        values (new.user_id, v_hour, 1)
        on conflict (user_id, hour) do update set enqueued = h.enqueued + 1;
    end if;
    return null;
end
$$;
