-- Fault containment in the trader worker's queue functions: one stuck worker must never
-- hold up the others, and a claim must cost the same whatever the planner's statistics
-- say. docs/worker.md ("Fault containment") describes the behaviour; this migration
-- replaces two functions of 20261126003000_create_worker_functions.sql and adds one.
--
-- 1. backend.claim_trader_jobs: the lock rule ("no doing job, and no earlier or
--    higher-priority todo job, with the same lock") must cost one index lookup per
--    candidate, whatever the statistics say. Measured before: once ANALYZE had seen a
--    nearly-all-succeeded table, claims went from 6–7 ms to 22–61 ms at 3,000 waiting
--    jobs (2.2–2.4 s in one run): the planner probed every waiting job per candidate,
--    because statistics taken with an empty queue make every partial index on
--    todo/doing jobs look like one row, so a full scan of procrastinate's
--    (id, lock) index ties with a lookup by lock. Three things make the plan fixed:
--    * the probe sits under an OR (`lock is null or not exists (...)`), so it stays a
--      per-row subplan, run only for candidates the ordered scan reaches before the
--      batch is full (never an anti-join over all waiting jobs), and its correlated
--      priority/id test keeps it from becoming one hashed pass over them either;
--    * it filters `status::text in ('todo', 'doing')`: the cast means no partial index
--      predicate is implied, so the partial indexes whose size the statistics get
--      wrong are out of the running;
--    * what is left is a new plain index on `lock` (procrastinate_jobs_lock_lookup_idx),
--      whose cost the planner judges against the whole table, where a lookup by a
--      near-unique key always wins.
--    tests/integration/test_worker_faults.py checks the plan under such statistics.
--
-- 2. backend.recover_stalled_jobs never waits on a lock. It used to delete the stalled
--    worker rows first (procrastinate_prune_stalled_workers_v1), and that delete's
--    ON DELETE SET NULL waits for every row lock on the worker's jobs: a worker frozen
--    (SIGSTOP, a network partition) inside its commit held up the recovery of every
--    other dead worker's jobs until its session ended (95 s in a fault-injection run;
--    hours with no server-side timeout). Now: first requeue the orphaned `doing` jobs
--    with SKIP LOCKED (jobs a live session still locks are left for the next round), then
--    delete each stalled worker row that can be deleted at once; one whose jobs are still
--    locked is retried next round (lock_timeout 200 ms, caught per worker).
--
-- 3. backend.commit_held_trader_runs: backend.commit_trader_runs for a batch worker, which
--    first locks the jobs it still holds (status doing, worker_id = p_worker_id) and
--    writes runs for those only. A worker that was paused past the stalled timeout,
--    pruned and had its jobs requeued, no longer holds them when it resumes: its late
--    results are dropped (outcome `not_held`) instead of being written beside the run of
--    whichever worker took the job over. The job locks are taken in id order before any
--    trader row, the same order for every committer.

-- Every job has a lock (trader:<uuid>); one entry per job, like the primary key.
create index if not exists procrastinate_jobs_lock_lookup_idx
    on procrastinate.procrastinate_jobs (lock);

create or replace function backend.claim_trader_jobs(
    p_queue_names character varying[],
    p_worker_id bigint,
    p_limit integer
)
returns setof procrastinate.procrastinate_jobs
language sql
volatile
set search_path = ''
as $$
    with claimed as (
        update procrastinate.procrastinate_jobs as j
        set status = 'doing', worker_id = p_worker_id
        where j.id = any (array(
            select jobs.id
            from procrastinate.procrastinate_jobs as jobs
            where jobs.status = 'todo'
              and (p_queue_names is null or jobs.queue_name = any(p_queue_names))
              and (jobs.scheduled_at is null or jobs.scheduled_at <= now())
              -- See the header: a per-row subplan, one lookup in
              -- procrastinate_jobs_lock_lookup_idx per candidate reached.
              and (jobs.lock is null or not exists (
                  select 1
                  from procrastinate.procrastinate_jobs as other_jobs
                  where other_jobs.lock = jobs.lock
                    and other_jobs.status::text in ('todo', 'doing')
                    and (
                        other_jobs.status = 'doing'
                        or other_jobs.priority > jobs.priority
                        or (other_jobs.priority = jobs.priority and other_jobs.id < jobs.id)
                    )
              ))
            order by jobs.priority desc, jobs.id asc
            limit p_limit
            for update of jobs skip locked
        ))
        returning j.*
    )
    -- Callers get the batch in claim order, as from the first version.
    select * from claimed order by priority desc, id asc
$$;
comment on function backend.claim_trader_jobs(character varying[], bigint, integer) is
    'Claim up to p_limit todo jobs of the given queues (NULL = all) for worker p_worker_id, '
    'in procrastinate''s order and lock rules (one index probe per candidate). Returns the '
    'claimed rows (status doing).';


create or replace function backend.recover_stalled_jobs(
    p_stalled_seconds double precision,
    p_max_attempts integer
)
returns table (job_id bigint, queue_name text, outcome text)
language plpgsql
volatile
set search_path = ''
-- Waiting on a lock is exactly what this function must not do; the only statement that
-- can wait (a worker row's delete) catches the timeout and leaves the row for later.
set lock_timeout = '200ms'
as $$
declare
    v_worker bigint;
begin
    return query
    with orphan as (
        select j.id, j.queue_name
        from procrastinate.procrastinate_jobs j
        where j.status = 'doing'
          and (
              j.worker_id is null
              or not exists (
                  select 1 from procrastinate.procrastinate_workers w
                  where w.id = j.worker_id
                    and w.last_heartbeat >= now() - make_interval(secs => p_stalled_seconds)
              )
          )
        order by j.id
        for update of j skip locked
    )
    select o.id, o.queue_name::text, backend.requeue_job(o.id, null, true, p_max_attempts)
    from orphan o;

    for v_worker in
        select w.id
        from procrastinate.procrastinate_workers w
        where w.last_heartbeat < now() - make_interval(secs => p_stalled_seconds)
        order by w.id
        for update of w skip locked
    loop
        begin
            delete from procrastinate.procrastinate_workers w where w.id = v_worker;
        exception when lock_not_available then
            -- A session still locks one of its jobs (a frozen worker mid-commit): the
            -- row goes in a later round, once that session ends.
            null;
        end;
    end loop;
end
$$;
comment on function backend.recover_stalled_jobs(double precision, integer) is
    'Requeue (or fail, after p_max_attempts) every doing job left without a live worker, '
    'skipping jobs another session locks, then delete workers without a heartbeat for '
    'p_stalled_seconds that can be deleted without waiting. Safe to call concurrently.';


create function backend.commit_held_trader_runs(
    p_runs jsonb,
    p_worker text,
    p_disable_after integer,
    p_worker_id bigint,
    p_finish_job_ids bigint[],
    p_delete_jobs boolean default false
)
returns table (job_id bigint, trader_id uuid, run_id bigint, outcome text, signals integer)
language plpgsql
volatile
set search_path = ''
as $$
#variable_conflict use_column
declare
    v_held bigint[];
begin
    if p_worker_id is null then
        return query
        select * from backend.commit_trader_runs(
            p_runs, p_worker, p_disable_after, null, p_finish_job_ids, p_delete_jobs);
        return;
    end if;

    select coalesce(array_agg(h.id order by h.id), '{}') into v_held
    from (
        select j.id
        from procrastinate.procrastinate_jobs j
        where j.id = any(
                p_finish_job_ids
                || array(select (e ->> 'job_id')::bigint from jsonb_array_elements(p_runs) e))
          and j.status = 'doing'
          and j.worker_id = p_worker_id
        order by j.id
        for update of j
    ) h;

    return query
    select e.job_id, e.trader_id, null::bigint, 'not_held'::text, 0
    from jsonb_to_recordset(p_runs) as e(job_id bigint, trader_id uuid)
    where not (e.job_id = any(v_held));

    return query
    select * from backend.commit_trader_runs(
        coalesce(
            (select jsonb_agg(e) from jsonb_array_elements(p_runs) e
             where (e ->> 'job_id')::bigint = any(v_held)),
            '[]'::jsonb),
        p_worker, p_disable_after, p_worker_id,
        array(select f from unnest(p_finish_job_ids) f where f = any(v_held)),
        p_delete_jobs);
end
$$;
comment on function backend.commit_held_trader_runs(jsonb, text, integer, bigint, bigint[], boolean) is
    'backend.commit_trader_runs limited to the jobs p_worker_id still holds (locked first, '
    'in id order); runs of jobs it no longer holds come back as not_held, unwritten.';


revoke all on function backend.commit_held_trader_runs(jsonb, text, integer, bigint, bigint[], boolean)
    from public, anon, authenticated;
do $$
begin
    if exists (select from pg_roles where rolname = 'service_role') then
        grant execute on function
            backend.commit_held_trader_runs(jsonb, text, integer, bigint, bigint[], boolean)
        to service_role;
    end if;
end
$$;
