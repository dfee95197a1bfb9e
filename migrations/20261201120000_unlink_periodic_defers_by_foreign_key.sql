-- A finished job's delete without a row lock before it.
--
-- procrastinate unlinks a deleted job from procrastinate_periodic_defers with a BEFORE
-- DELETE row trigger (procrastinate_trigger_delete_jobs_v1). Any BEFORE DELETE row trigger
-- makes Postgres fetch and lock each row before deleting it, and that lock is a WAL record
-- of its own (Heap/LOCK, 54 bytes): one more per trader run, since every committed run
-- deletes its job (docs/worker.md, "Why delete"). Trader jobs are never periodic, so the
-- trigger only ever found nothing to unlink for them. The WHEN clause that
-- 20261201070000_no_deferred_event_for_trader_jobs.sql gave it (not for run_trader)
-- saved the plpgsql call but not the lock: a BEFORE row trigger's WHEN is evaluated on
-- the row already fetched and locked for it.
--
-- The foreign key does the same unlinking as an action (ON DELETE SET NULL, served by
-- procrastinate_periodic_defers_job_id_fkey_v1), which runs after the delete and locks
-- nothing beforehand. Deleting a job that a periodic defer points at still clears that
-- link, as before (tests/integration/test_worker_sql.py).
--
-- procrastinate's schema is ours to migrate (20261126000100_create_procrastinate_schema.sql
-- copies it): a later procrastinate migration that names the trigger or this constraint
-- must be adapted when it is copied.

drop trigger if exists procrastinate_trigger_delete_jobs_v1 on procrastinate.procrastinate_jobs;
drop function if exists procrastinate.procrastinate_unlink_periodic_defers_v1();

alter table procrastinate.procrastinate_periodic_defers
    drop constraint procrastinate_periodic_defers_job_id_fkey,
    add constraint procrastinate_periodic_defers_job_id_fkey
        foreign key (job_id) references procrastinate.procrastinate_jobs (id)
        on delete set null;
