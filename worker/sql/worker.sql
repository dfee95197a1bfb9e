-- Queries of the trader worker (worker/runner/, worker/queue/manager.py, worker/db.py).
-- The functions they call are in migrations/20261126003000_create_worker_functions.sql
-- and migrations/20261201040000_contain_worker_faults.sql.

-- name: register_worker
-- Register a worker row (procrastinate's own function); its id goes on claimed jobs.
select worker_id from procrastinate.procrastinate_register_worker_v1();

-- name: unregister_worker
-- Delete our worker row at shutdown (jobs still pointing at it get worker_id NULL).
select procrastinate.procrastinate_unregister_worker_v1(%(worker_id)s);

-- name: worker_heartbeat
-- Prove this worker is alive; no row back means another worker pruned us as stalled.
update procrastinate.procrastinate_workers
set last_heartbeat = now()
where id = %(worker_id)s
returning id;

-- name: claim_trader_jobs
-- Claim up to %(limit)s due jobs of the given queues, highest priority first.
-- args as jsonb's own text: worker/runner/job.py reads the usual form with one regex.
select id, queue_name, task_name, priority, lock, attempts, args::text as args_text
from backend.claim_trader_jobs(%(queues)s::varchar[], %(worker_id)s, %(limit)s);

-- name: listen_channel
-- LISTEN on one procrastinate notification channel ({channel} is an Identifier).
listen {channel};

-- name: load_traders
-- The traders of a batch with their owner's tier limits, edge-trigger state and whether the slot already has a run.
-- The job lists come as array text ('{1,2}'); the filter's code comes as text, apart from the rest of the filter.
-- refreshInterval and requiredTimeframes come as text and text[] when they are strings;
-- the rest of the filter (as jsonb, for the worker's own reading) only when one is not.
select
    j.job_id,
    t.id is not null as trader_exists,
    t.user_id::text as user_id,
    coalesce(t.enabled, false) as enabled,
    case when jsonb_typeof(t.filter -> 'code') = 'string' then t.filter ->> 'code' end as code,
    case when jsonb_typeof(t.filter -> 'refreshInterval') = 'string'
         then t.filter ->> 'refreshInterval' end as refresh_interval,
    case when jsonb_typeof(t.filter -> 'requiredTimeframes') = 'array'
         then array(select jsonb_array_elements_text(t.filter -> 'requiredTimeframes'))
    end as required_timeframes,
    case when jsonb_typeof(t.filter) = 'object'
          and (jsonb_typeof(t.filter -> 'refreshInterval') <> 'string'
               or jsonb_path_exists(t.filter, '$.requiredTimeframes[*] ? (@.type() != "string")'))
         then t.filter - 'code' end as filter_meta,
    coalesce(ut.tier, 'free') as tier,
    tr.max_symbols,
    m.symbols as previous_matches,
    exists (
        select 1 from public.trader_runs r
        where r.trader_id = j.trader_id and r.slot = j.slot
    ) as already_run
from unnest(%(job_ids)s::bigint[], %(trader_ids)s::uuid[], %(slots)s::timestamptz[])
    as j(job_id, trader_id, slot)
left join public.traders t on t.id = j.trader_id
left join public.user_tiers ut on ut.user_id = t.user_id
left join public.tiers tr on tr.name = coalesce(ut.tier, 'free')
left join public.trader_matches m on m.trader_id = j.trader_id;

-- name: snapshot_read_only
-- First statement of a snapshot load: one consistent view of a refresh, read only.
set transaction isolation level repeatable read, read only;

-- name: snapshot_version
-- Version and freshness of one snapshot, read inside the load's transaction.
select interval, version, closed_through, refreshed_at, symbols, stale_symbols
from public.market_snapshots
where interval = %(interval)s;

-- name: load_tickers
-- Every 24h ticker (JSON text, verbatim) by universe rank: largest quote volume first.
select symbol, ticker::text as ticker, quote_volume, rank
from public.market_tickers
order by rank, symbol;

-- name: load_kline_series
-- One interval's klines as one JSON object text {SYMBOL: [kline, ...]}, built by Postgres.
select
    '{' || coalesce(string_agg(to_json(k.symbol)::text || ':' || k.klines::text, ','
        order by k.symbol), '') || '}' as series,
    count(*) as symbols,
    count(*) filter (where k.stale) as stale_symbols
from public.market_klines k
where k.interval = %(interval)s;

-- name: commit_trader_runs
-- Commit a batch: runs, signals, match state, counters, auto-disable, job status (held jobs only).
select job_id, trader_id, run_id, outcome, signals
from backend.commit_held_trader_runs(
    %(runs)s::jsonb, %(worker)s, %(disable_after)s, %(worker_id)s,
    %(finish_job_ids)s::bigint[], %(delete_jobs)s
);

-- name: release_trader_jobs
-- Give back jobs this worker holds: todo at %(retry_at)s, or failed after max attempts.
select job_id, outcome
from backend.release_trader_jobs(
    %(job_ids)s::bigint[], %(worker_id)s, %(retry_at)s, %(count_attempt)s, %(max_attempts)s
);

-- name: recover_stalled_jobs
-- Delete stalled workers and requeue (or fail) the jobs they held.
select job_id, queue_name, outcome
from backend.recover_stalled_jobs(%(stalled_seconds)s, %(max_attempts)s);

-- name: prune_history
-- Retention: delete one batch of old finished jobs, runs, signals and browser run reports (which follow the runs' age); returns counts.
select p.jobs, p.runs, p.signals,
       backend.prune_browser_runs(make_interval(hours => %(runs_hours)s), %(batch)s) as reports
from backend.prune_history(
    make_interval(hours => %(jobs_hours)s),
    make_interval(hours => %(runs_hours)s),
    make_interval(hours => %(signals_hours)s),
    %(batch)s
) as p;

-- name: procrastinate_search_path
-- Run on every procrastinate pool connection: its Python code uses unqualified names.
set search_path = procrastinate, public;

-- name: set_session_limits
-- Service sessions' server-side timeouts and keepalives (worker/db.py SessionLimits); session-wide.
select
    set_config('statement_timeout', %(statement_timeout)s, false),
    set_config('lock_timeout', %(lock_timeout)s, false),
    set_config('idle_in_transaction_session_timeout', %(idle_in_transaction_session_timeout)s, false),
    set_config('tcp_keepalives_idle', %(tcp_keepalives_idle)s, false),
    set_config('tcp_keepalives_interval', %(tcp_keepalives_interval)s, false),
    set_config('tcp_keepalives_count', %(tcp_keepalives_count)s, false),
    set_config('tcp_user_timeout', %(tcp_user_timeout)s, false);
