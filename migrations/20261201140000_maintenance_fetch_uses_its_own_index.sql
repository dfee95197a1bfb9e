-- procrastinate's fetch for the maintenance queue, without walking the trader jobs.
--
-- Each worker process runs a procrastinate worker on the maintenance queue (retention,
-- stalled-job recovery), which polls with procrastinate_fetch_job_v2: "the first todo job
-- of these queues in priority order". Its statement is planned once per session and then
-- reused as a generic plan, which cannot use an index on queue_name (the queue list is a
-- parameter, and `$1 is null or queue_name = any($1)`): it walks
-- procrastinate_jobs_priority_idx_v1, i.e. every waiting job of every queue, to learn
-- that no maintenance job is due. With a tick's 100,000 trader jobs waiting that is
-- 20-30 ms per poll, per worker process, every few seconds, for as long as the tick lasts
-- (measured: 2.4 s of Postgres time in a 100,000-trader tick with two workers); a custom
-- plan did use the plain queue_name index, but only for the first five polls of a session.
--
-- Now:
--   * the function plans each call for its actual queues (plan_cache_mode =
--     force_custom_plan on the function: ~0.3 ms of planning per poll);
--   * an index holds just the maintenance queue's waiting jobs, in fetch order; a custom
--     plan for that queue proves its predicate and reads the first entry. Trader jobs get
--     no entry in it (so no write per run). Polls of other queues still work as before.
-- tests/integration/test_worker_faults.py checks the plan.

create index if not exists procrastinate_jobs_maintenance_todo_idx
    on procrastinate.procrastinate_jobs (priority desc, id)
    where status = 'todo' and queue_name = 'traderctl.maintenance';

alter function procrastinate.procrastinate_fetch_job_v2(character varying[], bigint)
    set plan_cache_mode = force_custom_plan;
