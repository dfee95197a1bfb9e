-- Gradual migration from the browser: execution modes, rollout rules, backend health and
-- automatic browser fallback (docs/rollout.md).
--
-- Every trader has an effective execution mode:
--   browser  the backend does not run it; the user's browser does (as before the backend)
--   shadow   the backend runs it and stores the run and its signals, hidden from the user,
--            so results can be compared with the browser's (parity); the browser keeps
--            running it
--   server   the backend runs it and publishes its signals; the browser stops running it
--
-- The *configured* mode comes from admin-owned data in `backend` (not reachable by the API
-- roles): a per-user override wins; else the rule of the user's tier (two percentages of
-- users, chosen by a stable hash of the user id); else the install's default ('browser',
-- so switching the backend on changes nothing until an admin says so). The *effective*
-- mode is the configured one, except that `server` becomes `browser` while the backend is
-- unhealthy (fallback). public.trader_modes holds the effective mode of every trader for
-- the frontend (RLS, Realtime); it is rewritten only where a value changes, so Realtime
-- streams exactly the transitions.

-- Settings of the rollout and of the health check, one row. Thresholds are configuration
-- (`traderctl rollout config`), not literals.
create table backend.rollout_settings (
    id boolean primary key default true check (id),
    default_mode text not null default 'browser'
        check (default_mode in ('browser', 'shadow', 'server')),
    -- Fallback: server traders run in the browser while the backend is unhealthy.
    fallback_enabled boolean not null default true,
    -- Unhealthy when the scheduler's watermark is older than this.
    tick_missing_after_s integer not null default 180 check (tick_missing_after_s >= 60),
    -- Unhealthy when the p99 of slot -> commit over the last 5 minutes, or the oldest
    -- waiting trader job's age, exceeds this.
    lag_p99_threshold_s integer not null default 120 check (lag_p99_threshold_s > 0),
    -- A worker counts as live when its heartbeat is younger than this.
    worker_alive_s integer not null default 60 check (worker_alive_s > 0),
    -- Healthy again only after this long without a failing check (no flapping).
    hold_s integer not null default 300 check (hold_s >= 0),
    -- Parity: alert below this agreement over at least parity_min_sample pairs a day.
    parity_threshold double precision not null default 0.99
        check (parity_threshold between 0 and 1),
    parity_min_sample integer not null default 100 check (parity_min_sample > 0),
    -- Browser run reports: at most this many symbols, this many per trader per minute.
    report_max_symbols integer not null default 1000 check (report_max_symbols > 0),
    report_max_per_minute integer not null default 6 check (report_max_per_minute > 0),
    updated_at timestamptz not null default now()
);
comment on table backend.rollout_settings is
    'Single row: default execution mode, fallback thresholds, parity and report limits.';
insert into backend.rollout_settings (id) values (true);

-- Per tier: the share of its users in server mode, and the share in shadow or server mode.
-- A user's bucket (backend.rollout_bucket, 0 <= b < 100, stable) puts them in `server`
-- when b < server_percent, else in `shadow` when b < greatest(shadow_percent,
-- server_percent), else in `browser`. Raising a percentage only adds users: 10 % -> 25 %
-- keeps the first 10 % where they were.
create table backend.rollout_rules (
    tier text primary key references public.tiers (name) on delete cascade,
    shadow_percent numeric(5, 2) not null default 0 check (shadow_percent between 0 and 100),
    server_percent numeric(5, 2) not null default 0 check (server_percent between 0 and 100),
    updated_at timestamptz not null default now()
);
comment on table backend.rollout_rules is
    'Per tier: percent of users in server mode, and in shadow-or-server mode (stable hash).';

-- Per-user overrides win over tier rules (support cases, internal testers, `make up`).
create table backend.rollout_overrides (
    user_id uuid primary key references auth.users (id) on delete cascade,
    mode text not null check (mode in ('browser', 'shadow', 'server')),
    updated_at timestamptz not null default now()
);
comment on table backend.rollout_overrides is 'Per-user execution mode; wins over tier rules.';

-- Every change of rules, overrides, settings and health, with its cause.
create table backend.rollout_log (
    id bigint generated always as identity primary key,
    at timestamptz not null default now(),
    kind text not null check (kind in ('rule', 'override', 'settings', 'health')),
    subject text,
    detail text not null
);
comment on table backend.rollout_log is
    'Audit log of rollout changes and health transitions (why modes changed).';
create index rollout_log_at_idx on backend.rollout_log (at);

-- The backend's health as the frontend sees it: one row.
create table public.backend_health (
    id boolean primary key default true check (id),
    -- healthy | unhealthy | recovering (checks pass, waiting out the hold period)
    status text not null default 'healthy'
        check (status in ('healthy', 'unhealthy', 'recovering')),
    -- True while server traders are demoted to browser.
    fallback_active boolean not null default false,
    reasons text[] not null default '{}',
    since timestamptz not null default now(),
    checked_at timestamptz,
    passing_since timestamptz
);
comment on table public.backend_health is
    'Single row: backend health. fallback_active = browsers must run their server traders.';
insert into public.backend_health (id) values (true);

-- The effective mode of each trader, for the frontend.
create table public.trader_modes (
    trader_id uuid primary key references public.traders (id) on delete cascade,
    user_id uuid not null,
    -- browser | shadow | server: what runs this trader now.
    mode text not null check (mode in ('browser', 'shadow', 'server')),
    -- The mode before fallback (what rules and overrides say).
    configured_mode text not null check (configured_mode in ('browser', 'shadow', 'server')),
    -- default | rule | override | fallback
    source text not null check (source in ('default', 'rule', 'override', 'fallback')),
    reason text not null,
    updated_at timestamptz not null default now()
);
comment on table public.trader_modes is
    'Effective execution mode of each trader and why; browser = the browser must run it.';
create index trader_modes_user_id_idx on public.trader_modes (user_id);

revoke all on public.backend_health, public.trader_modes from anon, authenticated;
grant select on public.backend_health, public.trader_modes to authenticated;
grant all on public.backend_health, public.trader_modes to service_role;
alter table public.backend_health enable row level security;
alter table public.trader_modes enable row level security;
create policy "signed-in users read the backend health" on public.backend_health
    for select to authenticated using (true);
create policy "users read their own traders' modes" on public.trader_modes
    for select to authenticated using ((select auth.uid()) = user_id);

alter publication supabase_realtime add table public.backend_health, public.trader_modes;


-- A user's stable bucket in [0, 100) with two decimals: the first 32 bits of md5(user id).
create function backend.rollout_bucket(p_user_id uuid) returns numeric
language sql
immutable
parallel safe
set search_path = ''
as $$
    select (('x' || substr(md5(p_user_id::text), 1, 8))::bit(32)::bigint % 10000) / 100.0
$$;
comment on function backend.rollout_bucket(uuid) is
    'Stable bucket 0 <= b < 100 of a user: in a rule''s percentage when b < percent.';

-- Recompute public.trader_modes for the given traders (NULL: all), writing only rows whose
-- values change. Returns the number of rows written. Called by the triggers below, by
-- `traderctl rollout set` and by the health check when fallback flips.
-- jit = off: with the planner's default estimates (a table without statistics) the
-- all-traders statement is costed above jit_above_cost, and compiling it took ~600 ms
-- for a 10 ms query; the same holds for the health check below.
create function backend.refresh_trader_modes(p_trader_ids uuid[] default null)
returns integer
language plpgsql
volatile
security definer
set search_path = ''
set jit = off
as $$
declare
    v_written integer;
begin
    with settings as (
        select s.default_mode, h.fallback_active and s.fallback_enabled as fallback_active
        from backend.rollout_settings s cross join public.backend_health h
    ),
    configured as (
        select
            t.id, t.user_id,
            case
                when o.mode is not null then o.mode
                when r.tier is null then s.default_mode
                when backend.rollout_bucket(t.user_id) < r.server_percent then 'server'
                when backend.rollout_bucket(t.user_id)
                     < greatest(r.shadow_percent, r.server_percent) then 'shadow'
                else 'browser'
            end as mode,
            case
                when o.mode is not null then 'override'
                when r.tier is null then 'default'
                else 'rule'
            end as source,
            case
                when o.mode is not null then 'per-user override'
                when r.tier is null then 'install default'
                else format('tier %s: %s%% server, %s%% shadow or server; user bucket %s',
                            r.tier, r.server_percent, greatest(r.shadow_percent, r.server_percent),
                            backend.rollout_bucket(t.user_id))
            end as reason,
            s.fallback_active
        from public.traders t
        cross join settings s
        left join backend.rollout_overrides o on o.user_id = t.user_id
        left join public.user_tiers ut on ut.user_id = t.user_id
        left join backend.rollout_rules r on r.tier = coalesce(ut.tier, 'free')
        where p_trader_ids is null or t.id = any(p_trader_ids)
    )
    insert into public.trader_modes as m (
        trader_id, user_id, mode, configured_mode, source, reason
    )
    select
        c.id, c.user_id,
        case when c.mode = 'server' and c.fallback_active then 'browser' else c.mode end,
        c.mode,
        case when c.mode = 'server' and c.fallback_active then 'fallback' else c.source end,
        case when c.mode = 'server' and c.fallback_active
             then 'backend unhealthy: the browser runs this trader until it recovers ('
                  || c.reason || ')'
             else c.reason end
    from configured c
    on conflict (trader_id) do update
        set user_id = excluded.user_id,
            mode = excluded.mode,
            configured_mode = excluded.configured_mode,
            source = excluded.source,
            reason = excluded.reason,
            updated_at = now()
        where (m.user_id, m.mode, m.configured_mode, m.source, m.reason)
              is distinct from
              (excluded.user_id, excluded.mode, excluded.configured_mode, excluded.source,
               excluded.reason);
    get diagnostics v_written = row_count;
    return v_written;
end
$$;
comment on function backend.refresh_trader_modes(uuid[]) is
    'Recompute effective execution modes (all traders, or the given ones); only changed '
    'rows are written, so Realtime streams transitions only.';

-- New traders get their mode in the same statement, before the first-run trigger looks at
-- it (AFTER triggers fire in name order: traders_assign_mode < traders_enqueue_first_run).
create function backend.traders_assign_mode() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    perform backend.refresh_trader_modes(array(select n.id from new_rows n));
    return null;
end
$$;
create trigger traders_assign_mode
    after insert on public.traders
    referencing new table as new_rows
    for each statement execute function backend.traders_assign_mode();

-- A tier change can change the rule that applies.
create function backend.user_tiers_refresh_modes() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    perform backend.refresh_trader_modes(array(
        select t.id from public.traders t
        where t.user_id in (select n.user_id from new_rows n)
    ));
    return null;
end
$$;
create trigger user_tiers_refresh_modes_insert
    after insert on public.user_tiers
    referencing new table as new_rows
    for each statement execute function backend.user_tiers_refresh_modes();
create trigger user_tiers_refresh_modes_update
    after update on public.user_tiers
    referencing new table as new_rows
    for each statement execute function backend.user_tiers_refresh_modes();

-- Rules, overrides and settings are data an admin may also change with plain SQL: any
-- change recomputes the modes in the same transaction, so the scheduler and the frontend
-- never see a rule that is not applied yet.
create function backend.rollout_data_changed() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    perform backend.refresh_trader_modes();
    return null;
end
$$;
create trigger rollout_rules_changed
    after insert or update or delete on backend.rollout_rules
    for each statement execute function backend.rollout_data_changed();
create trigger rollout_overrides_changed
    after insert or update or delete on backend.rollout_overrides
    for each statement execute function backend.rollout_data_changed();
create trigger rollout_settings_changed
    after update of default_mode, fallback_enabled on backend.rollout_settings
    for each statement execute function backend.rollout_data_changed();

-- Backfill: every existing trader gets its mode (browser by default).
select backend.refresh_trader_modes();


-- Health: evaluated every minute by pg_cron (below) from the same sources as the ops
-- views. Checks, each a reason when failing:
--   scheduler_stalled   the scheduler's watermark is older than tick_missing_after_s
--   market_data_stale   ops.snapshot_freshness reports a stale interval used by traders
--   queue_lag           p99 slot -> commit over the last 5 minutes, or the oldest waiting
--                       trader job, exceeds lag_p99_threshold_s
--   no_live_workers     no worker heartbeat younger than worker_alive_s
-- Hysteresis: a failing check makes the backend unhealthy at once (fallback on); it is
-- healthy again only after hold_s with every check passing (status 'recovering' until
-- then). Each status change is logged in backend.rollout_log with its reasons; when
-- fallback flips, trader modes are recomputed.
-- p_now is the clock of the hysteresis (tests pass it to step through the hold period);
-- the checks read the real data as of now().
create function backend.evaluate_health(p_now timestamptz default now())
returns table (status text, fallback_active boolean, reasons text[])
language plpgsql
volatile
security definer
set search_path = ''
set jit = off
as $$
#variable_conflict use_column
declare
    s backend.rollout_settings;
    h public.backend_health;
    v_reasons text[] := '{}';
    v_last_slot timestamptz;
    v_lag double precision;
    v_oldest double precision;
    v_status text;
    v_fallback boolean;
    v_passing_since timestamptz;
begin
    select * into s from backend.rollout_settings;
    select * into h from public.backend_health for update;

    -- A fresh install has no watermark yet: count from when the state row was written.
    select coalesce(st.last_slot, st.updated_at) into v_last_slot from backend.scheduler_state st;
    if v_last_slot < now() - make_interval(secs => s.tick_missing_after_s) then
        v_reasons := v_reasons || format('scheduler_stalled: no tick since %s', v_last_slot);
    end if;

    if exists (select from ops.snapshot_freshness f where f.stale and f.traders > 0) then
        v_reasons := v_reasons || (
            select format('market_data_stale: %s', string_agg(f.interval || ' (' || coalesce(f.stale_reason, 'stale') || ')', ', '))
            from ops.snapshot_freshness f where f.stale and f.traders > 0);
    end if;

    select percentile_cont(0.99) within group (
               order by extract(epoch from r.finished_at - r.slot))
    into v_lag
    from public.trader_runs r
    where r.finished_at > now() - interval '5 minutes';
    select max(q.oldest_waiting_age_s) into v_oldest
    from ops.queue_depth q where q.queue_name like 'traders.%';
    if greatest(coalesce(v_lag, 0), coalesce(v_oldest, 0)) > s.lag_p99_threshold_s then
        v_reasons := v_reasons || format(
            'queue_lag: p99 slot->commit %s s, oldest waiting job %s s (threshold %s s)',
            round(coalesce(v_lag, 0)::numeric, 1), round(coalesce(v_oldest, 0)::numeric, 1),
            s.lag_p99_threshold_s);
    end if;

    if not exists (
        select from procrastinate.procrastinate_workers w
        where w.last_heartbeat > now() - make_interval(secs => s.worker_alive_s)
    ) then
        v_reasons := v_reasons || format('no_live_workers: no worker heartbeat in %s s',
                                         s.worker_alive_s);
    end if;

    if cardinality(v_reasons) > 0 then
        v_status := 'unhealthy';
        v_passing_since := null;
    elsif h.status = 'healthy' then
        v_status := 'healthy';
        v_passing_since := coalesce(h.passing_since, p_now);
    else
        v_passing_since := coalesce(h.passing_since, p_now);
        v_status := case when p_now - v_passing_since >= make_interval(secs => s.hold_s)
                         then 'healthy' else 'recovering' end;
    end if;
    v_fallback := s.fallback_enabled and v_status <> 'healthy';

    update public.backend_health b
    set status = v_status,
        fallback_active = v_fallback,
        reasons = v_reasons,
        since = case when b.status = v_status then b.since else p_now end,
        checked_at = p_now,
        passing_since = v_passing_since
    where b.id;

    if v_status <> h.status then
        insert into backend.rollout_log (at, kind, subject, detail)
        values (p_now, 'health', h.status || ' -> ' || v_status,
                case when cardinality(v_reasons) > 0 then array_to_string(v_reasons, '; ')
                     else format('all checks passing since %s', v_passing_since) end);
    end if;
    if v_fallback <> h.fallback_active then
        perform backend.refresh_trader_modes();
    end if;

    status := v_status; fallback_active := v_fallback; reasons := v_reasons;
    return next;
end
$$;
comment on function backend.evaluate_health(timestamptz) is
    'Check scheduler, market data, queue lag and workers; update public.backend_health with '
    'hysteresis (hold_s) and demote server traders to browser while unhealthy.';

-- Register the health check with pg_cron next to the tick (same rule as the tick's
-- migration: only where pg_cron lives; elsewhere `traderctl scheduler` calls it).
do $$
declare
    v_cron_db text := current_setting('cron.database_name', true);
begin
    if exists (select from pg_catalog.pg_extension where extname = 'pg_cron')
        or current_database() = v_cron_db then
        create extension if not exists pg_cron;
        perform cron.schedule(
            'traderctl-evaluate-health',
            '* * * * *',
            'select * from backend.evaluate_health()'
        );
    else
        raise notice 'pg_cron is not available in database %; the health check was not '
                     'registered', current_database()
            using hint = 'Run `traderctl scheduler`, which also evaluates health every minute.';
    end if;
end
$$;
