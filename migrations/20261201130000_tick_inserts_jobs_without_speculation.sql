-- The tick's jobs inserted with a plain INSERT, ON CONFLICT only when it is needed.
--
-- backend.enqueue_trader_runs wrote every job with ON CONFLICT (queueing_lock) DO NOTHING:
-- a job already waiting for the trader wins. That makes each row a speculative insertion:
-- a probe of the queueing-lock index before the insert, and one more WAL record after it
-- (Heap/HEAP_CONFIRM, ~52 bytes per job, so per run). For the tick (bulk => true) the
-- conflict is almost never there: backend.schedule_due_traders has already left out the
-- traders with a waiting job. Only a job enqueued since that read (an immediate first run
-- that committed during the tick) can collide, and then the plain INSERT fails with
-- unique_violation.
--
-- So in bulk mode the insert runs first without ON CONFLICT, in a block that catches
-- unique_violation; on that error (its writes rolled back with the block) the same
-- statement runs again with ON CONFLICT, exactly as before. Other callers (the first-run
-- trigger, `traderctl traders run`) take the ON CONFLICT statement directly. The results
-- are collected into arrays before anything is returned, so a failed attempt never leaves
-- rows in the function's result. The statement is one text with the conflict clause
-- filled in (EXECUTE ... USING), planned once per call: once per tick, or once per
-- first-run enqueue, which plans its one-row insert in well under a millisecond.
-- tests/integration/test_scheduler.py forces the fallback.

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
    -- $1 trader_ids, $2 intervals, $3 slots, $4 priorities, $5 scheduled_at, $6 bulk mode;
    -- %s is the conflict clause.
    v_statement constant text := $statement$
    with slot_text as (
        -- The job's "slot" argument, formatted once per distinct slot, not once per job.
        select s.slot, to_char(s.slot at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"+00:00"') as txt
        from (select distinct u.slot from unnest($3::timestamptz[]) as u(slot)) s
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
            $5::timestamptz
        from unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::integer[])
            as r(trader_id, iv, slot, priority)
        join slot_text st on st.slot = r.slot
        %s
        returning id, procrastinate_jobs.queue_name, procrastinate_jobs.task_name,
                  procrastinate_jobs.args, procrastinate_jobs.scheduled_at
    ),
    scheduled as (
        -- What procrastinate_trigger_scheduled_events_v1 writes, when bypassed.
        insert into procrastinate.procrastinate_events (job_id, type, at)
        select i.id, 'scheduled', i.scheduled_at
        from inserted i
        where $6::boolean and i.scheduled_at is not null
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
            where $6::boolean
            group by i.queue_name
            union all
            select 'procrastinate_any_queue_v1', max(i.id)
            from inserted i
            where $6::boolean
            having count(*) > 0
        ) n
    )
    select coalesce(array_agg(i.id), '{}'),
           coalesce(array_agg((i.args ->> 'trader_id')::uuid), '{}'),
           coalesce(array_agg(i.queue_name::text), '{}'),
           coalesce(array_agg(i.task_name::text), '{}'),
           coalesce(array_agg(i.args), '{}')
    from inserted i
    cross join woken
    $statement$;
    -- A job already waiting for the trader (queueing_lock) wins: no row for it.
    v_tolerant constant text := 'on conflict (queueing_lock) where status = ''todo'' do nothing';
    v_ids bigint[];
    v_traders uuid[];
    v_queues text[];
    v_tasks text[];
    v_args jsonb[];
    v_done boolean := false;
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

    if bulk then
        begin
            execute format(v_statement, '')
                into v_ids, v_traders, v_queues, v_tasks, v_args
                using trader_ids, intervals, slots, priorities, scheduled_at, v_bulk;
            v_done := true;
        exception when unique_violation then
            -- A job for one of these traders was enqueued since the caller looked: the
            -- block's writes are gone; the tolerant statement below skips that trader.
            v_done := false;
        end;
    end if;
    if not v_done then
        execute format(v_statement, v_tolerant)
            into v_ids, v_traders, v_queues, v_tasks, v_args
            using trader_ids, intervals, slots, priorities, scheduled_at, v_bulk;
    end if;

    if v_bulk then
        perform set_config('session_replication_role', v_replication_role, true);
    end if;

    return query
    select * from unnest(v_ids, v_traders, v_queues, v_tasks, v_args);
end
$$;
