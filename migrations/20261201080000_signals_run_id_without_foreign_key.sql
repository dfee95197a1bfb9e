-- signals.run_id without a foreign key or an index of its own.
--
-- On a tick where every match is new (00:00 after a quiet market, or a fresh deployment)
-- a run writes ~7 signals, and each paid for the run_id foreign key: a check query that
-- locks the run row (FOR KEY SHARE: one more WAL record for the run, as its own
-- transaction inserted it) and an entry in signals_run_id_idx. Neither guards anything
-- the commit does not already guarantee: backend.commit_trader_runs is the only writer of
-- signals, and it takes run_id from the run it inserted in the same statement. What the
-- foreign key and its index were also used for:
--   * its ON DELETE CASCADE, when retention deletes a run older than the signal age, and
--     "has this run any signal left", in the same function: backend.prune_history now
--     finds a run's signals through signals_trader_slot_symbol_key (a run and its
--     signals share trader_id and slot), and deletes them with the run;
--   * a trader's deletion still removes its signals through signals.trader_id.
-- The column stays, with its meaning ("the run that raised it"); the signals of a run are
-- `where trader_id = r.trader_id and slot = r.slot`. docs/worker.md ("Retention") and
-- docs/benchmarks.md record the measurement.

alter table public.signals drop constraint signals_run_id_fkey;
drop index public.signals_run_id_idx;

comment on column public.signals.run_id is
    'The run that raised it (trader_runs.id; same trader_id and slot). Not a foreign key: '
    'written only by backend.commit_trader_runs, from the run it inserts.';

-- backend.prune_history (20261126003000_create_worker_functions.sql), with the runs' part
-- finding a run's signals by (trader_id, slot) and deleting them with the run.
create or replace function backend.prune_history(
    p_jobs_age interval,
    p_runs_age interval,
    p_signals_age interval,
    p_batch integer default 5000
)
returns table (jobs bigint, runs bigint, signals bigint)
language plpgsql
volatile
set search_path = ''
as $$
begin
    with doomed as (
        select j.id
        from procrastinate.procrastinate_jobs j
        where j.status in ('succeeded', 'failed', 'cancelled', 'aborted')
          and not exists (
              select 1 from procrastinate.procrastinate_events e
              where e.job_id = j.id and e.at >= now() - p_jobs_age
          )
        order by j.id
        limit p_batch
        for update of j skip locked
    )
    delete from procrastinate.procrastinate_jobs j using doomed d where j.id = d.id;
    get diagnostics jobs = row_count;

    with doomed as (
        select s.id from public.signals s
        where s.created_at < now() - p_signals_age
        order by s.created_at
        limit p_batch
    )
    delete from public.signals s using doomed d where s.id = d.id;
    get diagnostics signals = row_count;

    with doomed as (
        select r.id, r.trader_id, r.slot from public.trader_runs r
        where r.finished_at < now() - least(p_runs_age, p_signals_age)
          and (
              r.finished_at < now() - p_signals_age
              or not exists (
                  select 1 from public.signals s
                  where s.trader_id = r.trader_id and s.slot = r.slot
              )
          )
        order by r.finished_at
        limit p_batch
    ),
    their_signals as (
        -- What the run_id foreign key's cascade did: a run older than p_signals_age goes
        -- with any signal it still has.
        delete from public.signals s using doomed d
        where s.trader_id = d.trader_id and s.slot = d.slot
    )
    delete from public.trader_runs r using doomed d where r.id = d.id;
    get diagnostics runs = row_count;

    return next;
end
$$;
