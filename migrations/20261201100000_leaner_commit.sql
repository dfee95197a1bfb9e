-- A leaner commit: fewer WAL records and index entries per run, same results.
--
-- Measured in docs/benchmarks.md ("2026-12-01 (late morning)"). Two changes; a third, the
-- run insert without ON CONFLICT, is in 20261201110000_trader_stats.sql, which rewrites
-- backend.commit_trader_runs anyway.
--
-- 1. backend.commit_held_trader_runs, with finished jobs deleted (the default): the
--    DELETE of the jobs this worker still holds is the hold check. It used to lock them
--    (SELECT ... FOR UPDATE: one Heap/LOCK record per job) and delete them at the end of
--    the commit; the delete alone takes the same row locks, keeps the same rows and
--    rolls back with the rest if anything fails (the lock record procrastinate's BEFORE
--    DELETE trigger still added went in 20261201120000). Its locks are not taken in id
--    order, and need not be: no session waits on a `doing` job's row while holding
--    another one (claims, stalled-job recovery and the admin requeue skip locked rows; a
--    committer touches only jobs whose current version names it as their worker, which
--    no other session can also see). With jobs kept (succeeded), the lock and the final
--    update are as before. When every run's job is held (the normal case) the runs are
--    passed on as they came instead of being rebuilt with jsonb_agg.
--
-- 2. procrastinate_jobs_queue_name_idx_v1 (queue_name, every row) is dropped. No lookup
--    needs it: the claim walks procrastinate_jobs_priority_idx_v1 and filters the queue
--    there (its plan is asserted in tests/integration/test_worker_faults.py);
--    procrastinate's own fetch reuses a plan that cannot use it after a session's first
--    few polls (20261201140000 gives that fetch an index of its own); the admin listings
--    by queue read failed jobs or count the whole table. It cost an entry for every job
--    the tick inserts and another for its claimed version. procrastinate's schema is ours
--    to migrate (20261126000100_create_procrastinate_schema.sql copies it): a later
--    procrastinate migration that names this index must be adapted when it is copied.

drop index if exists procrastinate.procrastinate_jobs_queue_name_idx_v1;

create or replace function backend.commit_held_trader_runs(
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
    v_run_jobs bigint[];
    v_held bigint[];
    v_finish bigint[];
    v_lock bigint[];
begin
    if p_worker_id is null then
        return query
        select * from backend.commit_trader_runs(
            p_runs, p_worker, p_disable_after, null, p_finish_job_ids, p_delete_jobs);
        return;
    end if;

    p_finish_job_ids := coalesce(p_finish_job_ids, '{}');
    v_run_jobs := array(select (e ->> 'job_id')::bigint from jsonb_array_elements(p_runs) e);

    if p_delete_jobs then
        -- The delete is the check: it removes exactly the finished jobs this worker still
        -- holds, and its row locks keep them until the runs are committed with it.
        with gone as (
            delete from procrastinate.procrastinate_jobs j
            where j.id = any(p_finish_job_ids)
              and j.status = 'doing'
              and j.worker_id = p_worker_id
            returning j.id
        )
        select coalesce(array_agg(g.id), '{}') into v_held from gone g;
        v_lock := array(select x from unnest(v_run_jobs) x where not (x = any(p_finish_job_ids)));
    else
        v_held := '{}';
        v_lock := p_finish_job_ids || v_run_jobs;
    end if;

    -- Jobs with a run that the delete did not take (all of them when jobs are kept):
    -- locked in id order, as before.
    if cardinality(v_lock) > 0 then
        v_held := v_held || array(
            select j.id
            from procrastinate.procrastinate_jobs j
            where j.id = any(v_lock)
              and j.status = 'doing'
              and j.worker_id = p_worker_id
            order by j.id
            for update of j
        );
    end if;
    v_finish := case when p_delete_jobs then '{}'::bigint[]
                     else array(select f from unnest(p_finish_job_ids) f where f = any(v_held)) end;

    return query
    select e.job_id, e.trader_id, null::bigint, 'not_held'::text, 0
    from jsonb_to_recordset(p_runs) as e(job_id bigint, trader_id uuid)
    where not (e.job_id = any(v_held));

    return query
    select * from backend.commit_trader_runs(
        case
            -- Every run's job is held (the normal case): the runs as they came.
            when v_run_jobs <@ v_held then p_runs
            else coalesce(
                (select jsonb_agg(e) from jsonb_array_elements(p_runs) e
                 where (e ->> 'job_id')::bigint = any(v_held)),
                '[]'::jsonb)
        end,
        p_worker, p_disable_after, p_worker_id, v_finish, p_delete_jobs);
end
$$;
