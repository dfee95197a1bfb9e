-- name: demo_upsert_user
-- Create (or keep) a demo user in auth.users, set its tier, and run its traders on the
-- server (a rollout override: a fresh install leaves everyone in the browser).
with u as (
    insert into auth.users (id, email)
    values (%(user_id)s, %(email)s)
    on conflict (id) do update set email = excluded.email
    returning id
),
mode as (
    insert into backend.rollout_overrides (user_id, mode)
    select id, 'server' from u
    on conflict (user_id) do update set mode = 'server', updated_at = now()
)
insert into public.user_tiers (user_id, tier)
select id, %(tier)s from u
on conflict (user_id) do update set tier = excluded.tier, updated_at = now();

-- name: demo_disable_fallback
-- The demo has no browser to fall back to: keep its server traders on the server while
-- the stack warms up (no market data and no worker in its first seconds).
update backend.rollout_settings set fallback_enabled = false, updated_at = now()
where fallback_enabled;

-- name: demo_upsert_trader
-- Create a demo trader in the frontend's shape, unless one with that id exists.
insert into public.traders (id, user_id, name, enabled, filter)
values (%(id)s, %(user_id)s, %(name)s, true, %(filter)s)
on conflict (id) do nothing;

-- name: demo_has_auth_users
-- Whether this database has the auth.users table the demo seeds (local stand-in or Supabase).
select to_regclass('auth.users') is not null;

-- name: up_has_pg_cron
-- Whether pg_cron is installed in this database (only in cron.database_name).
select to_regclass('cron.job') is not null;

-- name: up_cron_tick_active
-- Whether pg_cron runs the scheduler tick here (else `up` runs `traderctl scheduler`).
select exists (
    select from cron.job where jobname = 'traderctl-schedule-due-traders' and active
);
