-- Shadow runs hidden from their owners, and parity monitoring against the browser
-- (docs/rollout.md).
--
-- Shadow: runs, signals and match state of a trader in shadow mode are stored with
-- shadow = true. The users' policies hide those rows, so neither the Data API nor
-- Realtime (which applies the same policies to each change) ever shows them. When the
-- trader moves to server, its next run writes visible rows; the match state built in
-- shadow mode makes that first run signal only real edges.
--
-- Parity: the browser reports its own runs into public.browser_runs (own traders only,
-- size- and rate-limited). A shadow run stores its full match set (matched_symbols), and
-- ops.parity_pairs pairs each report with the server run of the same trader on the same
-- closed candle.

alter table public.trader_runs
    add column shadow boolean not null default false,
    add column matched_symbols text[];
comment on column public.trader_runs.shadow is
    'Run of a trader in shadow mode: stored for comparison, never shown to its user.';
comment on column public.trader_runs.matched_symbols is
    'Every symbol that matched (shadow runs only; parity with the browser''s reports).';
alter table public.signals add column shadow boolean not null default false;
comment on column public.signals.shadow is
    'Signal of a shadow run: stored, never shown to its user (RLS).';
alter table public.trader_matches add column shadow boolean not null default false;
comment on column public.trader_matches.shadow is
    'Match state last written by a shadow run: hidden from the user (RLS).';

-- Replace the owners' read policies: own rows that are not shadow.
drop policy "users read their own runs" on public.trader_runs;
create policy "users read their own runs" on public.trader_runs
    for select to authenticated using ((select auth.uid()) = user_id and not shadow);
drop policy "users read their own signals" on public.signals;
create policy "users read their own signals" on public.signals
    for select to authenticated using ((select auth.uid()) = user_id and not shadow);
drop policy "users read their own match state" on public.trader_matches;
create policy "users read their own match state" on public.trader_matches
    for select to authenticated using ((select auth.uid()) = user_id and not shadow);


-- What the browser reports after each of its own runs of a trader.
create table public.browser_runs (
    id bigint generated always as identity primary key,
    trader_id uuid not null references public.traders (id) on delete cascade,
    user_id uuid not null default auth.uid(),
    -- When the browser ran the filter.
    ran_at timestamptz not null,
    -- Open time of the last *closed* candle of the trader's refreshInterval that the run
    -- saw (e.g. 10:00 for a 5m trader run at 10:05:02): what pairs it with a server run.
    candle_open_time timestamptz not null,
    matched_symbols text[] not null,
    reported_at timestamptz not null default now()
);
comment on table public.browser_runs is
    'Browser-side runs reported by the frontend for parity monitoring (own traders only).';
-- Pairing with server runs and the per-trader rate limit.
create index browser_runs_trader_candle_idx on public.browser_runs (trader_id, candle_open_time);
create index browser_runs_trader_reported_idx on public.browser_runs (trader_id, reported_at);
create index browser_runs_user_id_idx on public.browser_runs (user_id);
create index browser_runs_reported_at_idx on public.browser_runs (reported_at);

revoke all on public.browser_runs from anon, authenticated;
grant select, delete on public.browser_runs to authenticated;
grant insert (trader_id, user_id, ran_at, candle_open_time, matched_symbols)
    on public.browser_runs to authenticated;
grant all on public.browser_runs to service_role;
alter table public.browser_runs enable row level security;
create policy "users read their own browser runs" on public.browser_runs
    for select to authenticated using ((select auth.uid()) = user_id);
create policy "users report runs of their own traders" on public.browser_runs
    for insert to authenticated
    with check (
        (select auth.uid()) = user_id
        and exists (
            select from public.traders t
            where t.id = trader_id and t.user_id = (select auth.uid())
        )
    );
create policy "users delete their own browser runs" on public.browser_runs
    for delete to authenticated using ((select auth.uid()) = user_id);

-- Size and rate limits, with errors that say what to change. SECURITY DEFINER: it reads
-- the limits in `backend` and counts the trader's recent reports.
create function backend.browser_runs_check_limits() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
    s backend.rollout_settings;
    v_recent integer;
    v_bad text;
begin
    select * into s from backend.rollout_settings;
    if cardinality(new.matched_symbols) > s.report_max_symbols then
        raise exception 'browser run report has % matched symbols; at most % are accepted',
                cardinality(new.matched_symbols), s.report_max_symbols
            using errcode = 'check_violation',
                  hint = 'Report the symbols the trader matched on this run only.';
    end if;
    select m.symbol into v_bad
    from unnest(new.matched_symbols) as m(symbol)
    where m.symbol is null or m.symbol !~ '^[A-Za-z0-9_.-]{1,32}$'
    limit 1;
    if found then
        raise exception 'browser run report has an invalid symbol %',
                coalesce(quote_literal(left(v_bad, 40)), 'NULL')
            using errcode = 'check_violation',
                  hint = 'Symbols are exchange tickers such as BTCUSDT (1-32 letters/digits).';
    end if;
    if new.ran_at > now() + interval '5 minutes' or new.candle_open_time > now() then
        raise exception 'browser run report is dated in the future (ran_at %, candle_open_time %)',
                new.ran_at, new.candle_open_time
            using errcode = 'check_violation',
                  hint = 'Send the time of the run and the open time of the last closed candle.';
    end if;
    perform pg_advisory_xact_lock(hashtextextended('browser_runs:' || new.trader_id::text, 0));
    select count(*) into v_recent
    from public.browser_runs b
    where b.trader_id = new.trader_id and b.reported_at > now() - interval '1 minute';
    if v_recent >= s.report_max_per_minute then
        raise exception 'too many browser run reports for trader %: % in the last minute (limit %)',
                new.trader_id, v_recent, s.report_max_per_minute
            using errcode = 'check_violation',
                  hint = 'Report once per run of the trader; retry after a minute.';
    end if;
    new.reported_at := now();
    return new;
end
$$;
create trigger browser_runs_check_limits
    before insert on public.browser_runs
    for each row execute function backend.browser_runs_check_limits();


-- Each browser report next to the server run of the same trader on the same closed
-- candle: the run whose slot is the candle's close (open time + the interval's length).
-- Only shadow runs store their full match set, so only they pair.
create view ops.parity_pairs as
select
    b.id as report_id,
    b.trader_id,
    b.user_id,
    coalesce(ut.tier, 'free') as tier,
    r.interval,
    b.candle_open_time,
    r.slot,
    r.id as run_id,
    b.ran_at as browser_ran_at,
    b.matched_symbols as browser_symbols,
    r.matched_symbols as server_symbols,
    array(select unnest(b.matched_symbols) except select unnest(r.matched_symbols)
          order by 1) as only_browser,
    array(select unnest(r.matched_symbols) except select unnest(b.matched_symbols)
          order by 1) as only_server,
    not exists (select unnest(b.matched_symbols) except select unnest(r.matched_symbols))
        and not exists (select unnest(r.matched_symbols) except select unnest(b.matched_symbols))
        as agree
from public.browser_runs b
join public.trader_runs r
    on r.trader_id = b.trader_id
    and r.status = 'ok'
    and r.matched_symbols is not null
    and r.slot = b.candle_open_time + (
        select make_interval(mins => i.minutes) from backend.schedule_intervals i
        where i.name = r.interval)
left join public.user_tiers ut on ut.user_id = b.user_id;
comment on view ops.parity_pairs is
    'Browser run reports paired with the server (shadow) run on the same closed candle.';

-- Agreement per trader and UTC day, and per tier and UTC day.
create view ops.parity_by_trader as
with pairs as (
    select p.*, date_trunc('day', p.slot, 'UTC') as day from ops.parity_pairs p
),
differing as (
    select d.trader_id, d.day, array_agg(distinct s.symbol order by s.symbol) as symbols
    from pairs d, unnest(d.only_browser || d.only_server) as s(symbol)
    group by d.trader_id, d.day
)
select
    p.trader_id, p.user_id, p.tier, p.day,
    count(*)::bigint as pairs,
    count(*) filter (where p.agree)::bigint as agreeing,
    round(avg(p.agree::int)::numeric, 4)::double precision as agreement,
    coalesce(d.symbols, '{}') as differing_symbols
from pairs p
left join differing d on d.trader_id = p.trader_id and d.day = p.day
group by p.trader_id, p.user_id, p.tier, p.day, d.symbols;
comment on view ops.parity_by_trader is
    'Per trader and UTC day: paired runs, agreeing runs, agreement and the differing symbols.';

create view ops.parity_by_tier as
select
    p.tier, date_trunc('day', p.slot, 'UTC') as day,
    count(*)::bigint as pairs,
    count(*) filter (where p.agree)::bigint as agreeing,
    round(avg(p.agree::int)::numeric, 4)::double precision as agreement,
    count(distinct p.trader_id)::bigint as traders,
    count(distinct p.trader_id) filter (where not p.agree)::bigint as traders_differing
from ops.parity_pairs p
group by p.tier, date_trunc('day', p.slot, 'UTC');
comment on view ops.parity_by_tier is
    'Per tier and UTC day: paired runs, agreement and how many traders differed.';
