-- Scheduler queries. The tick itself is the SQL function
-- backend.schedule_due_traders(at) (migrations/20261126001100_*); these call and observe it.

-- name: schedule_due_traders
-- Run one scheduler tick for the minute of %(at)s (NULL = the server's now()); one row per (interval, outcome), or one row of NULLs when nothing was due.
select
    date_trunc('minute', t.at, 'UTC') as slot,
    r.refresh_interval,
    r.outcome,
    r.trader_count
from (select coalesce(%(at)s::timestamptz, now()) as at) as t
left join lateral backend.schedule_due_traders(t.at) as r on true;

-- name: scheduler_watermark
-- The last minute the scheduler enqueued (NULL before the first tick).
select s.last_slot from backend.scheduler_state as s where s.id;
