-- Is the market data fresh, per interval?
--
-- One row for the 24h tickers and one per kline interval. For klines,
-- expected_closed_through is the latest candle boundary and behind_s how far the stored
-- data lags it; `stale` turns true 2 minutes after a boundary whose candle is still
-- missing (tickers: not refreshed for 3 minutes; any interval: never published).
-- stale_symbols counts symbols the market-data worker keeps at their last good data.
-- `traders` = enabled traders using the interval; alerts fire only when it is > 0.
-- Why it is stale: select * from backend.market_data_events order by at desc limit 20;
select interval, version, refreshed_at, refresh_age_s, closed_through,
       expected_closed_through, behind_s, symbols, stale_symbols, stale, stale_reason, traders
from ops.snapshot_freshness;
