-- Market snapshot tables: the shared cache every worker reads (replaces Redis).
--
-- The market-data worker writes one transaction per refresh, so readers never see half a
-- refresh. Each interval has a row in market_snapshots whose `version` changes with every
-- refresh of that interval; workers keep the parsed data in memory and reload an
-- interval only when its version moved. `closed_through` is the open time of the live
-- candle, i.e. the boundary up to which candles are closed: the data for slot M contains
-- the candle that closed at M iff closed_through >= M.
--
-- Series are stored as `json` (text, verbatim) rather than jsonb: workers hand the text
-- straight to V8's JSON.parse, and the exact Binance shapes (key order, decimal strings)
-- are kept byte for byte.

create table public.market_tickers (
    symbol text primary key,
    -- Binance stream field names with string values: {s, c, o, h, l, v, q, P, p, ...}
    ticker json not null,
    quote_volume double precision not null,
    -- Universe rank by 24h quote volume (1 = largest); workers take the top N per tier.
    rank integer not null,
    updated_at timestamptz not null default now()
);
create index market_tickers_rank_idx on public.market_tickers (rank);

create table public.market_klines (
    symbol text not null,
    interval text not null check (interval in ('1m', '5m', '15m', '30m', '1h', '4h', '1d')),
    -- Raw 12-element Binance kline arrays, oldest first; the last one is the live candle.
    klines json not null,
    closed_through timestamptz not null,
    stale boolean not null default false,
    stale_reason text,
    updated_at timestamptz not null default now(),
    primary key (symbol, interval)
);

create table public.market_snapshots (
    -- '1m' … '1d' for klines, 'ticker' for the 24h tickers.
    interval text primary key
        check (interval in ('ticker', '1m', '5m', '15m', '30m', '1h', '4h', '1d')),
    version bigint not null default 0,
    closed_through timestamptz,
    refreshed_at timestamptz,
    symbols integer not null default 0,
    stale_symbols integer not null default 0
);
comment on table public.market_snapshots is
    'One row per interval: version bumps on every refresh; closed_through = newest closed boundary.';

revoke all on public.market_tickers, public.market_klines, public.market_snapshots
    from anon, authenticated;
grant select on public.market_tickers, public.market_klines, public.market_snapshots
    to authenticated;
grant all on public.market_tickers, public.market_klines, public.market_snapshots
    to service_role;

alter table public.market_tickers enable row level security;
alter table public.market_klines enable row level security;
alter table public.market_snapshots enable row level security;

create policy "market data is readable by signed-in users" on public.market_tickers
    for select to authenticated using (true);
create policy "market data is readable by signed-in users" on public.market_klines
    for select to authenticated using (true);
create policy "market data is readable by signed-in users" on public.market_snapshots
    for select to authenticated using (true);
