-- Market-data alerts: what the market-data worker wants an operator to know.
--
-- The worker (`traderctl market-data`) writes a row when the exchange bans us (HTTP 418),
-- rate-limits us (429), answers in an unexpected format, or when a kline series turns
-- stale or recovers. Data rows keep serving the last good snapshot meanwhile; this table
-- is the trail that explains why. It lives in `backend`, which the Data API does not
-- expose; only the worker (service_role) and admins read it. docs/market-data.md lists
-- the kinds.

create schema if not exists backend;
grant usage on schema backend to service_role;

create table backend.market_data_events (
    id bigint generated always as identity primary key,
    at timestamptz not null default now(),
    -- banned | rate_limited | malformed | request_failed | stale | recovered | universe
    kind text not null check (kind in (
        'banned', 'rate_limited', 'malformed', 'request_failed', 'stale', 'recovered',
        'universe'
    )),
    severity text not null check (severity in ('info', 'warning', 'critical')),
    symbol text,
    interval text,
    message text not null,
    detail jsonb not null default '{}'::jsonb
);
comment on table backend.market_data_events is
    'Alerts of the market-data worker (418 bans, 429s, malformed answers, stale series).';

-- Serves "latest events" (stats, alert queries): newest first.
create index market_data_events_at_idx on backend.market_data_events (at desc);
-- Serves "open critical alerts" without scanning the info rows.
create index market_data_events_kind_at_idx on backend.market_data_events (kind, at desc)
    where severity <> 'info';

-- Internal table, but RLS on anyway (no policy: only roles that bypass RLS see rows).
alter table backend.market_data_events enable row level security;
revoke all on backend.market_data_events from public;
grant select, insert, delete on backend.market_data_events to service_role;
