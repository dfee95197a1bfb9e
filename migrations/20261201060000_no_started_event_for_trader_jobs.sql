-- No `started` event row when a trader job is claimed.
--
-- procrastinate's AFTER UPDATE OF status trigger writes one procrastinate_events row per
-- status change. For a trader job that is three rows over its life: `deferred` (the tick),
-- `started` (the claim) and, with finished jobs deleted, nothing at the end, but both rows
-- are deleted again with the job. The `started` row says nothing the job row does not (its
-- status is `doing`, its worker_id names the worker) or the run row will not (started_at),
-- no view or function of ours reads it, and procrastinate 3 finds stalled jobs by worker
-- heartbeats, not by `started` events. Writing it cost, per run, a plpgsql trigger call
-- (~0.06 ms of Postgres CPU at 10,000 and 100,000 traders, `pg_function_ms`), a heap row
-- and two index entries, and deleting it again at commit. docs/worker.md ("Claiming")
-- records the measurement.
--
-- The trigger gets a WHEN clause instead (evaluated before any function call): every other
-- status change of a trader job (retries, failures, `traderctl requeue`) and every change
-- of any other task's job is recorded exactly as before.

drop trigger procrastinate_trigger_status_events_update_v1 on procrastinate.procrastinate_jobs;

create trigger procrastinate_trigger_status_events_update_v1
    after update of status on procrastinate.procrastinate_jobs
    for each row
    when (not (
        old.status = 'todo'::procrastinate.procrastinate_job_status
        and new.status = 'doing'::procrastinate.procrastinate_job_status
        and new.task_name = 'run_trader'
    ))
    execute procedure procrastinate.procrastinate_trigger_function_status_events_update_v1();
