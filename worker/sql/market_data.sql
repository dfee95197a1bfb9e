-- Queries of the market-data worker (worker/market/store.py runs them, all within the one
-- transaction of a refresh). Arrays are passed column-wise and unnested, so a refresh of
-- 100 series is one statement per table, not 100. Array parameters use psycopg's binary
-- format: for 700 kline series (~30 MB of JSON) that is 1.2 s instead of 6 s, the text
-- format spending its time quoting every '"' inside the array literal.

-- name: market_load_snapshots
-- Every interval's snapshot row: version, closed_through, counts.
select interval, version, closed_through, refreshed_at, symbols, stale_symbols
from public.market_snapshots;

-- name: market_load_stale_series
-- The (symbol, interval) series currently flagged stale, with the reason.
select symbol, interval, stale_reason
from public.market_klines
where stale;

-- name: market_load_universe
-- The symbols of the stored universe, best ranked first.
select symbol
from public.market_tickers
order by rank;

-- name: market_upsert_tickers
-- Insert or replace 24h tickers (stream-shaped JSON text, quote volume, rank) by symbol.
insert into public.market_tickers as t (symbol, ticker, quote_volume, rank, updated_at)
select s, j::json, q, r, now()
from unnest(
    %(symbols)b::text[], %(tickers)b::text[], %(quote_volumes)b::float8[], %(ranks)b::int[]
) as u(s, j, q, r)
on conflict (symbol) do update
    set ticker = excluded.ticker,
        quote_volume = excluded.quote_volume,
        rank = excluded.rank,
        updated_at = excluded.updated_at;

-- name: market_rerank_tickers
-- Set the rank of tickers that were not in this refresh's answer (kept, last good data).
update public.market_tickers as t
set rank = u.r
from unnest(%(symbols)b::text[], %(ranks)b::int[]) as u(s, r)
where t.symbol = u.s and t.rank <> u.r;

-- name: market_delete_tickers_outside
-- Drop the tickers of symbols that are not in the given universe.
delete from public.market_tickers
where symbol <> all(%(symbols)b::text[]);

-- name: market_upsert_klines
-- Insert or replace fresh kline series (raw Binance arrays as JSON text) and clear staleness.
insert into public.market_klines as k
    (symbol, interval, klines, closed_through, stale, stale_reason, updated_at)
select s, i, j::json, c, false, null, now()
from unnest(
    %(symbols)b::text[], %(intervals)b::text[], %(klines)b::text[],
    %(closed_through)b::timestamptz[]
) as u(s, i, j, c)
on conflict (symbol, interval) do update
    set klines = excluded.klines,
        closed_through = excluded.closed_through,
        stale = false,
        stale_reason = null,
        updated_at = excluded.updated_at;

-- name: market_flag_stale_klines
-- Flag series stale with a reason, keeping their last good klines; a series never fetched gets '[]'.
insert into public.market_klines as k
    (symbol, interval, klines, closed_through, stale, stale_reason, updated_at)
select s, i, '[]'::json, 'epoch'::timestamptz, true, r, now()
from unnest(%(symbols)b::text[], %(intervals)b::text[], %(reasons)b::text[]) as u(s, i, r)
on conflict (symbol, interval) do update
    set stale = true,
        stale_reason = excluded.stale_reason;

-- name: market_delete_klines_outside
-- Drop the kline series of symbols that are not in the given universe.
delete from public.market_klines
where symbol <> all(%(symbols)b::text[]);

-- name: market_bump_kline_snapshots
-- Bump each rewritten interval's version, recount its series, advance closed_through to what was loaded.
-- closed_through = the newest candle that at least half of the interval's series hold
-- (percentile_disc over their own closed_through, newest first), capped at the live
-- candle (the caps parameter) and never moved backwards. So an interval whose requests all failed
-- keeps its old closed_through, and readers see it stale instead of fresh. A series that
-- failed counts with its last good candle ('epoch' if it never loaded). An interval
-- never published that still has nothing loaded gets no row ("never published").
with loaded as (
    select u.i, u.cap,
           count(k.symbol) as symbols,
           count(k.symbol) filter (where k.stale) as stale_symbols,
           coalesce(percentile_disc(0.5) within group (order by k.closed_through desc),
                    'epoch'::timestamptz) as majority
    from unnest(%(intervals)b::text[], %(caps)b::timestamptz[]) as u(i, cap)
    left join public.market_klines k on k.interval = u.i
    group by u.i, u.cap
)
insert into public.market_snapshots as s
    (interval, version, closed_through, refreshed_at, symbols, stale_symbols)
select l.i, 1, least(l.cap, l.majority), now(), l.symbols, l.stale_symbols
from loaded l
where l.majority > 'epoch'::timestamptz
   or exists (select from public.market_snapshots p where p.interval = l.i)
on conflict (interval) do update
    set version = s.version + 1,
        closed_through = greatest(s.closed_through, excluded.closed_through),
        refreshed_at = excluded.refreshed_at,
        symbols = excluded.symbols,
        stale_symbols = excluded.stale_symbols
returning interval, version, closed_through;

-- name: market_recount_kline_snapshots
-- Recount series and stale series of intervals whose stale flags changed but whose klines did not.
-- Version and closed_through stay: nothing new was loaded, so readers have nothing to reload.
update public.market_snapshots as s
set symbols = c.symbols,
    stale_symbols = c.stale_symbols
from (
    select k.interval, count(*) as symbols, count(*) filter (where k.stale) as stale_symbols
    from public.market_klines k
    where k.interval = any(%(intervals)b::text[])
    group by k.interval
) as c
where s.interval = c.interval
  and (s.symbols, s.stale_symbols) is distinct from (c.symbols, c.stale_symbols);

-- name: market_bump_ticker_snapshot
-- Bump the ticker snapshot: closed_through = the refresh minute, stale = tickers missing from the answer.
insert into public.market_snapshots as s
    (interval, version, closed_through, refreshed_at, symbols, stale_symbols)
select 'ticker', 1, %(closed_through)s, now(), count(*), %(stale)s
from public.market_tickers
on conflict (interval) do update
    set version = s.version + 1,
        closed_through = excluded.closed_through,
        refreshed_at = excluded.refreshed_at,
        symbols = excluded.symbols,
        stale_symbols = excluded.stale_symbols
returning interval, version, closed_through;

-- name: market_insert_events
-- Record alerts in backend.market_data_events (column-wise arrays; detail is JSON text).
insert into backend.market_data_events (kind, severity, symbol, interval, message, detail)
select k, s, sym, i, m, d::jsonb
from unnest(
    %(kinds)b::text[], %(severities)b::text[], %(symbols)b::text[], %(intervals)b::text[],
    %(messages)b::text[], %(details)b::text[]
) as u(k, s, sym, i, m, d);
