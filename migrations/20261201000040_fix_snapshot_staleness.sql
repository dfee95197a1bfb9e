-- ops.snapshot_freshness: judge staleness from the first candle that is missing.
--
-- The first version called an interval stale when its latest boundary was missing for
-- over 2 minutes. For 1m the latest boundary is never 2 minutes old, so 1m data could
-- fall any number of minutes behind and never be stale; for longer intervals, data
-- several candles behind was judged by the latest boundary only. Now: stale when the
-- candle that should follow closed_through (closed_through + the interval) closed more
-- than 2 minutes ago. Same columns, same meaning otherwise.

create or replace view ops.snapshot_freshness as
with expected as (
    select 'ticker'::text as interval, 0 as sort_key, null::timestamptz as expected
    union all
    select i.name, i.minutes, to_timestamp(
        floor(extract(epoch from now()) / (i.minutes * 60)) * (i.minutes * 60))
    from backend.schedule_intervals i
),
joined as (
    select
        x.interval,
        x.sort_key,
        s.version,
        s.refreshed_at,
        s.closed_through,
        x.expected,
        coalesce(s.symbols, 0) as symbols,
        coalesce(s.stale_symbols, 0) as stale_symbols,
        coalesce(u.traders, 0) as traders
    from expected x
    left join public.market_snapshots s on s.interval = x.interval
    left join ops.market_data_in_use u on u.interval = x.interval
),
judged as (
    select
        j.*,
        case
            when j.refreshed_at is null then 'never published'
            when j.interval = 'ticker' and j.refreshed_at < now() - interval '3 minutes' then
                format('tickers not refreshed for %s s',
                       round(extract(epoch from now() - j.refreshed_at)))
            when j.interval <> 'ticker'
                and (j.closed_through is null
                     or now() - (j.closed_through + make_interval(mins => j.sort_key))
                        > interval '2 minutes') then
                format('candle closed at %s not loaded after %s s',
                       to_char(coalesce(j.closed_through + make_interval(mins => j.sort_key),
                                        j.expected) at time zone 'UTC',
                               'YYYY-MM-DD HH24:MI "UTC"'),
                       round(extract(epoch from now() - coalesce(
                           j.closed_through + make_interval(mins => j.sort_key), j.expected))))
        end as stale_reason
    from joined j
)
select
    interval,
    version,
    refreshed_at,
    round(extract(epoch from now() - refreshed_at)::numeric, 1) as refresh_age_s,
    closed_through,
    expected as expected_closed_through,
    round(greatest(extract(epoch from expected - closed_through), 0)::numeric, 1) as behind_s,
    symbols,
    stale_symbols,
    stale_reason is not null as stale,
    stale_reason,
    traders
from judged
order by sort_key;
comment on view ops.snapshot_freshness is
    'Per market_snapshots interval: version, refresh age, closed_through vs the expected '
    'boundary (behind_s), stale symbols, stale flag and reason, traders using it.';
