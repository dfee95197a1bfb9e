-- How often do runs reuse an already loaded market snapshot (cache hit rate, last hour)?
--
-- Workers keep each snapshot version in memory and reload only when it changes. They do
-- not log loads in the database, so this view estimates them: one load per distinct
-- (worker, data_as_of) among the runs of the interval; reuse_rate = 1 - loads / runs.
-- Expect > 0.9 with many traders per interval; a low rate with few workers means
-- versions change faster than runs arrive (or runs without data_as_of). The exact
-- per-process figures are Prometheus: traderctl_snapshot_loads_total{interval} (loads)
-- against traderctl_runs_total (worker/worker_metrics.py).
select interval, runs, snapshot_versions, loads, reuse_rate
from ops.snapshot_reuse;
