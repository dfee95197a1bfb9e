-- Runs, signals and per-trader match state: what the worker writes in one transaction.
--
-- A run is one trader evaluated for one slot (the minute it was due). UNIQUE (trader_id,
-- slot) is what makes a retried or duplicated job harmless: the second commit finds the
-- run and writes nothing. user_id is copied onto runs, signals and matches so RLS can
-- filter on an indexed column of the row itself, without a join per row.

create table public.trader_runs (
    id bigint generated always as identity primary key,
    trader_id uuid not null references public.traders (id) on delete cascade,
    user_id uuid not null,
    slot timestamptz not null,
    interval text not null,
    status text not null check (status in ('ok', 'error')),
    error_type text,
    error_message text,
    started_at timestamptz not null,
    finished_at timestamptz not null default now(),
    duration_ms double precision,
    symbols_evaluated integer not null default 0,
    symbol_errors integer not null default 0,
    matches integer not null default 0,
    signals integer not null default 0,
    data_as_of timestamptz,
    data_age_ms double precision,
    worker text,
    constraint trader_runs_trader_slot_key unique (trader_id, slot)
);
comment on table public.trader_runs is
    'One row per (trader, slot) evaluated. status=error: the filter failed (see error_*).';
-- RLS filters on user_id; the run history view sorts by finished_at.
create index trader_runs_user_id_idx on public.trader_runs (user_id);
create index trader_runs_finished_at_idx on public.trader_runs (finished_at);

create table public.signals (
    id bigint generated always as identity primary key,
    trader_id uuid not null references public.traders (id) on delete cascade,
    user_id uuid not null,
    run_id bigint not null references public.trader_runs (id) on delete cascade,
    slot timestamptz not null,
    symbol text not null,
    interval text not null,
    price numeric,
    change_percent numeric,
    quote_volume numeric,
    data_as_of timestamptz,
    created_at timestamptz not null default now(),
    constraint signals_trader_slot_symbol_key unique (trader_id, slot, symbol)
);
comment on table public.signals is
    'Edge-triggered matches: symbol matched on this run and not on the trader''s previous run.';
-- RLS and the frontend's "my signals" query filter on user_id, newest first.
create index signals_user_id_created_at_idx on public.signals (user_id, created_at desc);
create index signals_run_id_idx on public.signals (run_id);
create index signals_created_at_idx on public.signals (created_at);

create table public.trader_matches (
    trader_id uuid primary key references public.traders (id) on delete cascade,
    user_id uuid not null,
    symbols text[] not null default '{}',
    slot timestamptz not null,
    updated_at timestamptz not null default now()
);
comment on table public.trader_matches is
    'Symbols that matched on each trader''s latest successful run: the edge-trigger state.';
create index trader_matches_user_id_idx on public.trader_matches (user_id);

-- Realtime: the frontend subscribes to its signals (RLS applies to the stream too).
alter publication supabase_realtime add table public.signals;

revoke all on public.trader_runs, public.signals, public.trader_matches from anon, authenticated;
grant select on public.trader_runs, public.signals, public.trader_matches to authenticated;
grant all on public.trader_runs, public.signals, public.trader_matches to service_role;

alter table public.trader_runs enable row level security;
alter table public.signals enable row level security;
alter table public.trader_matches enable row level security;

create policy "users read their own runs" on public.trader_runs
    for select to authenticated using ((select auth.uid()) = user_id);
create policy "users read their own signals" on public.signals
    for select to authenticated using ((select auth.uid()) = user_id);
create policy "users read their own match state" on public.trader_matches
    for select to authenticated using ((select auth.uid()) = user_id);
