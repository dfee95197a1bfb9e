-- The scheduler tick: backend.schedule_due_traders(at), plus the schedule_problem flag it
-- relies on and backend.trader_context(trader_id) for the worker.
--
-- Why one set-based function: pg_cron calls it every minute and `traderctl tick` /
-- `traderctl scheduler` call it where pg_cron is missing, so "which traders are due" lives
-- in one place that tests can call with an explicit `at`. It enqueues straight into
-- procrastinate_jobs in one INSERT … SELECT (10,000 traders in well under a second)
-- instead of calling procrastinate_defer_jobs_v1, which aborts the whole batch on a single
-- duplicate queueing_lock; ON CONFLICT (queueing_lock) WHERE status = 'todo' DO NOTHING
-- skips just that trader.
--
-- Job format (the worker's contract, see docs/scheduler.md):
--   queue_name    'traders.' || interval          e.g. 'traders.5m'
--   task_name     'run_trader'
--   priority      owner's tiers.queue_priority (free 1, pro 2, elite 3; no user_tiers row = free)
--   lock          'trader:' || trader_id           never two runs of one trader at once
--   queueing_lock 'trader:' || trader_id           at most one waiting job per trader
--   args          {"trader_id": "<uuid>", "slot": "2026-11-26T19:40:00+00:00"}
--   status 'todo', scheduled_at NULL

-- Interval rule shared by the trigger below and the tick (which inlines the same
-- expression for speed): a missing, JSON null or empty refreshInterval means '1m', as in
-- the browser (`refreshInterval || '1m'`); any other value must be a row of
-- backend.schedule_intervals, or the trader is flagged and never scheduled.
create function backend.schedule_problem(filter jsonb) returns text
language sql
stable
set search_path = ''
as $$
    select case
        when jsonb_typeof(filter -> 'refreshInterval') not in ('string', 'null') then format(
            'refreshInterval must be a string, got %s %s; use one of %s',
            jsonb_typeof(filter -> 'refreshInterval'), left((filter -> 'refreshInterval')::text, 40),
            (select string_agg(name, ', ' order by minutes) from backend.schedule_intervals))
        when exists (
            select from backend.schedule_intervals i
            where i.name = coalesce(nullif(filter ->> 'refreshInterval', ''), '1m')
        ) then null
        else format(
            'unknown refreshInterval %s; use one of %s (the trader is not scheduled until fixed)',
            quote_literal(left(filter ->> 'refreshInterval', 40)),
            (select string_agg(name, ', ' order by minutes) from backend.schedule_intervals))
    end
$$;
comment on function backend.schedule_problem(jsonb) is
    'Why a trader with this filter cannot be scheduled (unknown refreshInterval), or NULL.';

-- Keep traders.schedule_problem current whenever the filter is written. Runs for the
-- user's own statements too (role authenticated, no USAGE on `backend`: hence SECURITY
-- DEFINER); a BEFORE trigger may set a column the user cannot write.
create function backend.traders_set_schedule_problem() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    new.schedule_problem := backend.schedule_problem(new.filter);
    return new;
end
$$;
comment on function backend.traders_set_schedule_problem() is
    'BEFORE INSERT/UPDATE OF filter on public.traders: sets schedule_problem from the filter.';

create trigger traders_set_schedule_problem
    before insert or update of filter on public.traders
    for each row execute function backend.traders_set_schedule_problem();

-- Backfill traders written before this migration.
update public.traders
set schedule_problem = backend.schedule_problem(filter)
where schedule_problem is distinct from backend.schedule_problem(filter);


-- schedule_due_traders(at): enqueue every enabled trader due in the minutes since the last
-- tick, coalesced to one run per trader at its latest due slot.
--
--   window   = (watermark, date_trunc('minute', at)], at most 1440 minutes (one day).
--              A window of one day holds at least one slot of every interval, so after a
--              longer outage every trader still runs exactly once; nothing is lost by the
--              bound except the identity of slots older than a day, which a coalesced
--              run would not use anyway.
--   due      = per interval, its latest slot in the window (if any); each enabled trader
--              with non-blank code on that interval gets one job for that slot.
--   skipped  = skipped_backlog     a job for the trader is still waiting (queueing_lock)
--              skipped_hourly_cap  the owner reached the tier's max_executions_per_hour
--              skipped_invalid_interval  enabled traders flagged with schedule_problem
--
-- Calling it again for a minute at or before the watermark does nothing and returns no
-- rows. Concurrent calls serialize on the watermark row.
create function backend.schedule_due_traders(at timestamptz default now())
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
    v_queues jsonb;
    v_replication_role text := current_setting('session_replication_role');
    v_bulk boolean := false;
    v_queue text;
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

    -- Bulk mode. procrastinate_jobs has three per-row plpgsql triggers on INSERT (two
    -- pg_notify calls and one procrastinate_events row per job); at 00:00 with 100,000
    -- traders they cost ~3.5 s of a 5 s budget (bench/bench_scheduler.py). With
    -- session_replication_role = replica for this one statement they do not fire, and the
    -- statement writes their effects itself, set-based: the same 'deferred' event per job,
    -- and one NOTIFY per queue instead of one per job (a worker only needs to wake up;
    -- 100,000 notifications per minute would just flood its listener).
    -- tests/integration/test_scheduler.py pins the list of triggers this stands in for.
    -- Roles that may not set it (a managed Postgres without the privilege) keep the
    -- triggers: same result, slower.
    if v_replication_role = 'origin' then
        begin
            perform set_config('session_replication_role', 'replica', true);
            v_bulk := true;
        exception when insufficient_privilege then
            v_bulk := false;
        end;
    end if;

    with due as (
        -- Latest slot of each interval at or before v_slot: step back by the minutes
        -- elapsed since the interval's last UTC boundary (epoch minutes mod its length).
        select
            x.name,
            x.due_slot,
            -- The job's "slot" argument, formatted once per interval, not once per job.
            to_char(x.due_slot at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"+00:00"') as slot_text
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
        where j.status = 'todo' and j.queueing_lock like 'trader:%'
    ),
    candidate as (
        select
            t.id,
            'trader:' || t.id::text as lock_key,
            t.user_id,
            t.created_at,
            d.name as iv,
            d.slot_text,
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
        left join waiting w on w.queueing_lock = 'trader:' || t.id::text
        where t.enabled
            -- The browser runs only traders whose code is not blank.
            and (t.filter ->> 'code') ~ '\S'
    ),
    decided as (
        -- Uncapped owners (elite) or a waiting job: no ranking needed.
        select
            c.id, c.lock_key, c.user_id, c.iv, c.slot_text, c.queue_priority,
            case when c.backlog then 'skipped_backlog' else 'enqueued' end as outcome
        from candidate c
        where c.cap is null or c.backlog
        union all
        -- Capped owners: their oldest traders get what is left of this hour's budget.
        -- (A separate branch so only these rows are sorted for row_number().)
        select
            c.id, c.lock_key, c.user_id, c.iv, c.slot_text, c.queue_priority,
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
        insert into procrastinate.procrastinate_jobs
            (queue_name, task_name, priority, lock, queueing_lock, args, status, scheduled_at)
        select
            'traders.' || d.iv,
            'run_trader',
            d.queue_priority,
            d.lock_key,
            d.lock_key,
            jsonb_build_object('trader_id', d.id, 'slot', d.slot_text),
            'todo',
            null
        from decided d
        where d.outcome = 'enqueued'
        -- A job that appeared since `waiting` was read (an immediate first run committed
        -- meanwhile) makes this row a backlog skip instead of failing the batch.
        on conflict (queueing_lock) where status = 'todo' do nothing
        returning id, queue_name, (args ->> 'trader_id')::uuid as trader_id
    ),
    events as (
        -- What procrastinate_trigger_status_events_insert_v1 writes, when bypassed.
        insert into procrastinate.procrastinate_events (job_id, type)
        select i.id, 'deferred'
        from inserted i
        where v_bulk
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
    select
        (select coalesce(jsonb_agg(jsonb_build_object(
                'refresh_interval', g.iv, 'outcome', g.outcome, 'trader_count', g.n)), '[]')
         from (
            select f.iv, f.outcome, count(*)::integer as n
            from final f
            group by f.iv, f.outcome
         ) g),
        (select coalesce(jsonb_object_agg(q.queue_name, q.last_id), '{}')
         from (
            select i.queue_name, max(i.id) as last_id
            from inserted i
            group by i.queue_name
         ) q)
    into v_counts, v_queues;

    if v_bulk then
        perform set_config('session_replication_role', v_replication_role, true);
        -- What procrastinate_notify_queue_job_inserted_v1 sends, once per queue.
        for v_queue in select jsonb_object_keys(v_queues) loop
            perform pg_notify(
                'procrastinate_queue_v1#' || v_queue,
                json_build_object('type', 'job_inserted', 'job_id', (v_queues ->> v_queue)::bigint)::text
            );
        end loop;
        if v_queues <> '{}' then
            perform pg_notify(
                'procrastinate_any_queue_v1',
                json_build_object('type', 'job_inserted',
                                  'job_id', (select max(value::bigint) from jsonb_each_text(v_queues)))::text
            );
        end if;
    end if;

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
comment on function backend.schedule_due_traders(timestamptz) is
    'Scheduler tick: enqueue one procrastinate job per enabled trader due since the last tick '
    '(coalesced to its latest slot, at most one day back) and return counts per interval and '
    'outcome (enqueued, skipped_backlog, skipped_hourly_cap, skipped_invalid_interval). '
    'Idempotent per minute. Called by pg_cron every minute, or by `traderctl tick`.';

revoke all on function backend.schedule_due_traders(timestamptz) from public, anon, authenticated;
revoke all on function backend.schedule_problem(jsonb) from public, anon, authenticated;
revoke all on function backend.traders_set_schedule_problem() from public, anon, authenticated;


-- What the worker needs about one trader: the trader row's scheduling fields and its
-- owner's tier limits (users without a user_tiers row are on free).
create function backend.trader_context(p_trader_id uuid)
returns table (
    trader_id uuid,
    user_id uuid,
    name text,
    enabled boolean,
    filter jsonb,
    refresh_interval text,
    schedule_problem text,
    disabled_reason text,
    tier text,
    queue_priority integer,
    max_symbols integer,
    max_executions_per_hour integer,
    max_enabled_traders integer
)
language sql
stable
security definer
set search_path = ''
as $$
    select
        t.id,
        t.user_id,
        t.name,
        t.enabled,
        t.filter,
        coalesce(nullif(t.filter ->> 'refreshInterval', ''), '1m'),
        t.schedule_problem,
        t.disabled_reason,
        tr.name,
        tr.queue_priority,
        tr.max_symbols,
        tr.max_executions_per_hour,
        tr.max_enabled_traders
    from public.traders t
    left join public.user_tiers ut on ut.user_id = t.user_id
    join public.tiers tr on tr.name = coalesce(ut.tier, 'free')
    where t.id = p_trader_id
$$;
comment on function backend.trader_context(uuid) is
    'One row for the trader (none if it was deleted): scheduling fields plus the owner''s tier '
    'limits; max_symbols NULL = unlimited. Called by the worker before each run.';

revoke all on function backend.trader_context(uuid) from public, anon, authenticated;
-- The worker may connect as service_role (as it does for procrastinate).
do $$
begin
    if exists (select from pg_roles where rolname = 'service_role') then
        grant usage on schema backend to service_role;
        grant execute on function backend.trader_context(uuid) to service_role;
        grant execute on function backend.schedule_due_traders(timestamptz) to service_role;
    end if;
end
$$;
