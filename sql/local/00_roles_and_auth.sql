-- Local stand-in for what a Supabase project already has.
--
-- Applied by `traderctl db migrate` only to a database without an `auth` schema (the
-- embedded cluster, a plain Postgres). Never part of migrations/: on Supabase these
-- objects exist and belong to Supabase. Every statement is idempotent.

-- The three API roles. service_role bypasses RLS, as on Supabase.
do $$
begin
    if not exists (select from pg_roles where rolname = 'anon') then
        create role anon nologin noinherit;
    end if;
    if not exists (select from pg_roles where rolname = 'authenticated') then
        create role authenticated nologin noinherit;
    end if;
    if not exists (select from pg_roles where rolname = 'service_role') then
        create role service_role nologin noinherit bypassrls;
    end if;
    if not exists (select from pg_roles where rolname = 'authenticator') then
        create role authenticator login noinherit;
    end if;
end
$$;
grant anon, authenticated, service_role to authenticator;

create schema if not exists auth;
grant usage on schema auth to anon, authenticated, service_role;

-- The part of auth.users our schema references (foreign keys from traders, user_tiers).
create table if not exists auth.users (
    id uuid primary key default gen_random_uuid(),
    email text unique,
    raw_app_meta_data jsonb not null default '{}',
    raw_user_meta_data jsonb not null default '{}',
    created_at timestamptz not null default now()
);

-- PostgREST puts the verified JWT claims into `request.jwt.claims` (JSON text); older
-- versions used one `request.jwt.claim.<name>` setting per claim. Supabase's helpers
-- read both, and so do these.
create or replace function auth.jwt() returns jsonb
language sql stable
set search_path = ''
as $$
    select coalesce(
        nullif(current_setting('request.jwt.claim', true), ''),
        nullif(current_setting('request.jwt.claims', true), '')
    )::jsonb
$$;

create or replace function auth.uid() returns uuid
language sql stable
set search_path = ''
as $$
    select coalesce(
        nullif(current_setting('request.jwt.claim.sub', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
    )::uuid
$$;

create or replace function auth.role() returns text
language sql stable
set search_path = ''
as $$
    select coalesce(
        nullif(current_setting('request.jwt.claim.role', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
    )::text
$$;

grant execute on function auth.jwt(), auth.uid(), auth.role() to anon, authenticated, service_role;

-- Supabase grants everything in `public` to the API roles by default; RLS is what
-- protects the rows. Reproduce that so our migrations are tested against the same
-- starting point (they revoke what the API roles must not have).
grant usage on schema public to anon, authenticated, service_role;
alter default privileges in schema public grant all on tables to anon, authenticated, service_role;
alter default privileges in schema public grant all on sequences to anon, authenticated, service_role;
alter default privileges in schema public grant all on functions to anon, authenticated, service_role;

-- Supabase Realtime streams the tables in this publication.
do $$
begin
    if not exists (select from pg_publication where pubname = 'supabase_realtime') then
        create publication supabase_realtime;
    end if;
end
$$;
