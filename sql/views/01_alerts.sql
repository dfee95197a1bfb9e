-- What needs an operator right now?
--
-- One row per firing condition; no rows means healthy. Read `severity` first (critical
-- pages someone, warning can wait for office hours), then `detail`, which says what
-- happened and where to look next. `value` and `threshold` are the numbers behind the
-- alert (e.g. failure_rate 0.12 against 0.05; queue_backlog 340 s against 120 s).
--
--   failure_rate       an interval's runs failed > 5% over the last 15 minutes
--   queue_backlog      a queue's oldest waiting job is older than 2 minutes
--   stale_market_data  market data that enabled traders use is behind
--   stale_symbols      (warning) some symbols kept at their last good data
--   cron_failing       a pg_cron job failed in the last 15 minutes
--   cron_missing       an every-N-minutes pg_cron job did not start on time
--   scheduler_behind   nothing enqueued due traders for over 2 minutes
--   exchange_banned    the exchange answered 418 (IP ban) in the last hour
--   exchange_rate_limited (warning) 429s in the last 15 minutes
--   stalled_jobs       (warning) jobs held by a worker silent for 60 s
--
-- Same data: `traderctl stats` (top table); `traderctl stats --check` exits 1 while
-- this returns rows. docs/operations.md has a runbook entry per alert.
select alert, severity, subject, value, threshold, detail
from ops.alerts
order by severity, alert, subject;
