-- Scheduler state: the interval table, the watermark, the per-user hourly counters and the
-- tick log that backend.schedule_due_traders() (next migration) reads and writes.
--
-- Why state at all: pg_cron 1.4 never replays minutes missed while the server was down
-- and has no sub-minute schedules, so "which slots have been scheduled" must be stored.
-- One watermark row (the last minute scheduled) lets the next tick coalesce every missed
-- slot into one run per trader. The hourly counters make the tier's executions-per-hour
-- cap checkable at enqueue time without counting jobs.
--
-- Everything lives in `backend` (not exposed to the Data API; the API roles have no USAGE
-- on it). RLS is on anyway, with no policies, so a future grant cannot leak rows.

-- Valid refresh intervals: data, not code. `minutes` divides a day, so each interval's
-- slots are the UTC minutes whose epoch-minute number is a multiple of it (5m at :00,
-- :05 …; 4h at 00:00, 04:00 …; 1d at 00:00), and every 1-day window holds at least
-- one slot of every interval.
create table backend.schedule_intervals (
    name text primary key,
    minutes integer not null unique check (minutes > 0 and 1440 % minutes = 0),
    -- The queue name 'traders.<name>' becomes a NOTIFY channel name in procrastinate
    -- ('procrastinate_queue_v1#traders.<name>'); keep it within 40 bytes.
    constraint schedule_intervals_queue_name_length
        check (octet_length('traders.' || name) <= 40)
);
comment on table backend.schedule_intervals is
    'Valid traders.filter->>''refreshInterval'' values; jobs go to queue ''traders.'' || name.';

insert into backend.schedule_intervals (name, minutes)
values ('1m', 1), ('5m', 5), ('15m', 15), ('30m', 30), ('1h', 60), ('4h', 240), ('1d', 1440);

-- The watermark: exactly one row. last_slot is the last UTC minute whose due traders were
-- enqueued; NULL until the first tick. The tick locks this row (FOR UPDATE), which also
-- serializes concurrent ticks (pg_cron and `traderctl scheduler` on the same database).
create table backend.scheduler_state (
    id boolean primary key default true check (id),
    last_slot timestamptz,
    updated_at timestamptz not null default now()
);
comment on table backend.scheduler_state is
    'Single row: last_slot = last UTC minute scheduled (the catch-up watermark).';
insert into backend.scheduler_state (id) values (true);

-- Executions enqueued per user per UTC hour (scheduled ticks and immediate first runs),
-- and the runs skipped because the tier's max_executions_per_hour was reached. Rows older
-- than two days are pruned by the tick.
create table backend.user_hourly_executions (
    user_id uuid not null,
    hour timestamptz not null,
    enqueued integer not null default 0,
    skipped_hourly_cap integer not null default 0,
    primary key (user_id, hour)
);
comment on table backend.user_hourly_executions is
    'Per user and UTC hour: runs enqueued and runs skipped by the tier''s hourly cap.';
-- Serves the tick's pruning (delete where hour < …) and "skips in the last N hours" views.
create index user_hourly_executions_hour_idx on backend.user_hourly_executions (hour);

-- One row per tick that advanced the watermark: what it did and how long it took. Pruned
-- to seven days by the tick. by_interval = {"1m": {"enqueued": n, "skipped_backlog": n,
-- "skipped_hourly_cap": n}, ...}.
create table backend.scheduler_ticks (
    id bigint generated always as identity primary key,
    ticked_at timestamptz not null default clock_timestamp(),
    slot timestamptz not null,
    window_start timestamptz not null,
    enqueued integer not null,
    skipped_backlog integer not null,
    skipped_hourly_cap integer not null,
    skipped_invalid_interval integer not null,
    by_interval jsonb not null,
    duration_ms double precision not null
);
comment on table backend.scheduler_ticks is
    'One row per scheduler tick that advanced the watermark: counts per outcome and interval.';
-- Serves the stats view (latest ticks first) and the tick's 7-day pruning.
create index scheduler_ticks_slot_idx on backend.scheduler_ticks (slot);

-- Serves the tick's count of enabled traders the scheduler cannot schedule
-- (skipped_invalid_interval) without scanning every trader.
create index traders_schedule_problem_idx on public.traders (user_id)
    where schedule_problem is not null;
-- Serves the enabled-traders count of the tier-limit trigger (per user, enabled only).
create index traders_user_id_enabled_idx on public.traders (user_id, created_at)
    where enabled;

alter table backend.schedule_intervals enable row level security;
alter table backend.scheduler_state enable row level security;
alter table backend.user_hourly_executions enable row level security;
alter table backend.scheduler_ticks enable row level security;
revoke all on backend.schedule_intervals, backend.scheduler_state,
    backend.user_hourly_executions, backend.scheduler_ticks from public;
