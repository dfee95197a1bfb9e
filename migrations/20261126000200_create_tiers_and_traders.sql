-- Tiers, each user's tier, and the traders table in the shape the frontend already writes.
--
-- Security model (docs/security.md):
--   * `public` is exposed through the Supabase Data API. Every table in it has RLS on, and
--     the API roles get only the privileges listed here (Supabase's default grants of ALL
--     are revoked first).
--   * `backend` holds internals (scheduler state, functions). It is not exposed and the
--     API roles have no USAGE on it.
--   * Users write only the columns the frontend owns: id, user_id, name, enabled, filter.
--     Everything the backend maintains (last run, errors, counters, disabled reason) is
--     read-only for them through column privileges.

create schema if not exists backend;
revoke all on schema backend from public;
comment on schema backend is
    'traderctl internals: scheduler state, backend functions. Not exposed to the Data API.';

-- Tier limits are data. NULL means unlimited.
create table public.tiers (
    name text primary key,
    max_enabled_traders integer check (max_enabled_traders >= 0),
    max_executions_per_hour integer check (max_executions_per_hour >= 0),
    queue_priority integer not null,
    max_symbols integer check (max_symbols > 0)
);
comment on table public.tiers is
    'Per-tier limits (NULL = unlimited). queue_priority: higher runs first.';

insert into public.tiers (name, max_enabled_traders, max_executions_per_hour, queue_priority, max_symbols)
values
    ('free', 3, 60, 1, 20),
    ('pro', 10, 720, 2, 50),
    ('elite', null, null, 3, null);

-- A user without a row here is on the free tier.
create table public.user_tiers (
    user_id uuid primary key references auth.users (id) on delete cascade,
    tier text not null default 'free' references public.tiers (name),
    updated_at timestamptz not null default now()
);
comment on table public.user_tiers is
    'Each user''s tier; users without a row are on free. Written only by the backend/admins.';

create table public.traders (
    id uuid primary key default gen_random_uuid(),
    user_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
    name text not null default '',
    enabled boolean not null default true,
    -- {code, refreshInterval, requiredTimeframes, ...} exactly as the frontend stores it.
    filter jsonb not null default '{}'::jsonb,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    -- Backend-maintained below; users can read but never write these.
    last_slot timestamptz,
    last_run_at timestamptz,
    last_run_status text,
    last_error text,
    last_error_type text,
    last_error_at timestamptz,
    consecutive_errors integer not null default 0,
    error_count bigint not null default 0,
    run_count bigint not null default 0,
    signal_count bigint not null default 0,
    disabled_reason text,
    schedule_problem text
);
comment on table public.traders is
    'Users'' traders. Users own id/user_id/name/enabled/filter; the rest is backend-maintained.';
comment on column public.traders.disabled_reason is
    'Why the backend disabled this trader (tier downgrade, repeated filter errors); NULL if not.';
comment on column public.traders.schedule_problem is
    'Why the scheduler cannot schedule this trader (e.g. unknown refreshInterval); NULL if fine.';

-- Serves every RLS policy below (they filter on user_id) and per-user tier counts.
create index traders_user_id_idx on public.traders (user_id);

-- Keep updated_at current; re-enabling a trader clears the backend's disable reason and
-- its error streak, so the user's explicit action wins.
create function backend.traders_before_update() returns trigger
language plpgsql
set search_path = ''
as $$
begin
    new.updated_at := now();
    if new.enabled and not old.enabled then
        new.disabled_reason := null;
        new.consecutive_errors := 0;
    end if;
    return new;
end
$$;

create trigger traders_before_update
    before update on public.traders
    for each row execute function backend.traders_before_update();

-- Privileges: revoke Supabase's defaults, then grant exactly what each role needs.
revoke all on public.tiers, public.user_tiers, public.traders from anon, authenticated;
grant select on public.tiers to authenticated;
grant select on public.user_tiers to authenticated;
grant select, delete on public.traders to authenticated;
grant insert (id, user_id, name, enabled, filter) on public.traders to authenticated;
grant update (name, enabled, filter) on public.traders to authenticated;
grant all on public.tiers, public.user_tiers, public.traders to service_role;

alter table public.tiers enable row level security;
alter table public.user_tiers enable row level security;
alter table public.traders enable row level security;

create policy "tiers are readable by signed-in users" on public.tiers
    for select to authenticated using (true);

create policy "users read their own tier" on public.user_tiers
    for select to authenticated using ((select auth.uid()) = user_id);

create policy "users read their own traders" on public.traders
    for select to authenticated using ((select auth.uid()) = user_id);
create policy "users create their own traders" on public.traders
    for insert to authenticated with check ((select auth.uid()) = user_id);
create policy "users update their own traders" on public.traders
    for update to authenticated
    using ((select auth.uid()) = user_id)
    with check ((select auth.uid()) = user_id);
create policy "users delete their own traders" on public.traders
    for delete to authenticated using ((select auth.uid()) = user_id);
