-- name: demo_upsert_user
-- Create (or keep) a demo user in auth.users and set its tier.
with u as (
    insert into auth.users (id, email)
    values (%(user_id)s, %(email)s)
    on conflict (id) do update set email = excluded.email
    returning id
)
insert into public.user_tiers (user_id, tier)
select id, %(tier)s from u
on conflict (user_id) do update set tier = excluded.tier, updated_at = now();

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
