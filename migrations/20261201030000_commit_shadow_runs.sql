-- backend.commit_trader_runs, set-based, and with shadow runs.
--
-- Why set-based: the first version (20261126003000_create_worker_functions.sql, whose
-- comments describe the contract) ran a plpgsql loop per run, 6-8 statements each, wrote
-- every run row twice (insert, then its signal count) and every match state once per run.
-- Measured with bench/bench_commit.py (10,000 traders, docs/benchmarks.md), that loop
-- cost 0.95 ms of Postgres CPU per run on a first tick and 0.57 ms in steady state; this
-- version 0.45 and 0.21. A batch now costs the same few statements whatever its size:
--   1. lock the batch's traders in id order (the one order every committer uses, so
--      concurrent batches cannot deadlock);
--   2. one statement, whose snapshot is taken after those locks (so it reads what the
--      previous committer of each trader wrote): insert the runs (ON CONFLICT DO NOTHING:
--      a duplicate writes nothing else), their signals, the match states that changed and
--      the trader counters;
--   3. auto-disable: one UPDATE of the traders whose error streak reached the limit, only
--      when there are any (it sets `enabled`, whose triggers must not fire for every run).
-- A batch holding several slots of one trader (a retried job next to the trader's next
-- one) is committed in rounds, the k-th slot of each trader in round k, so each trader's
-- runs are applied oldest first as the loop did. Normally there is one round.
--
-- Results are the loop's. What is stored differs in three ways:
--   * a run row is written once, its signal count computed beforehand (the distinct
--     matches not in the previous match state);
--   * signals are a plain INSERT, each symbol once: no (trader, slot, symbol) can exist
--     yet, since the run of that slot did not, and the trader lock keeps other committers
--     out. ON CONFLICT would cost a speculative insertion (one more WAL record) per signal;
--   * the match state (public.trader_matches) is written only when its set of symbols (or
--     its shadow flag) changes; its slot is the slot since which the set holds. A run is
--     out of order (recorded, no signals, no rewind) when the state's slot or any
--     successful run of the trader is at or after its slot: the latest successful run is
--     what the state's slot alone recorded before.
--
-- Shadow runs (docs/rollout.md): a trader in shadow mode gets its runs, signals and match
-- state written with shadow = true, which the owners' RLS policies hide, and a shadow
-- run's whole match set is stored for parity (matched_symbols). A shadow run leaves the
-- trader's user-visible row alone: no counters, no last_error, no auto-disable (only
-- last_slot, the scheduler's bookkeeping).
--
-- Also: backend.prune_browser_runs, the retention of the browser's run reports (called by
-- the retention task next to prune_history, with the runs' age).

create or replace function backend.commit_trader_runs(
    p_runs jsonb,
    p_worker text,
    p_disable_after integer,
    p_worker_id bigint,
    p_finish_job_ids bigint[],
    p_delete_jobs boolean default false
)
returns table (job_id bigint, trader_id uuid, run_id bigint, outcome text, signals integer)
language plpgsql
volatile
set search_path = ''
as $$
#variable_conflict use_column
declare
    v_rounds integer;
    v_jobs bigint[];
    v_traders uuid[];
    v_runs bigint[];
    v_outcomes text[];
    v_signals integer[];
    v_disable uuid[];
    v_streaks integer[];
    v_types text[];
    v_messages text[];
begin
    -- 1. Lock the batch's traders in id order; count the rounds (most slots of a trader).
    select coalesce(max(n.slots), 0) into v_rounds
    from (
        select count(*) as slots from jsonb_array_elements(p_runs) e group by e ->> 'trader_id'
    ) n;
    perform 1
    from public.traders t
    where t.id = any (array(
        select (e ->> 'trader_id')::uuid from jsonb_array_elements(p_runs) e))
    order by t.id
    for update of t;

    for v_round in 1 .. v_rounds loop
        -- 2. The round's runs, their signals, the match states that changed, the counters.
        with batch as (
            select x.*
            from (
                select r.*,
                       row_number() over (partition by r.trader_id order by r.slot, r.job_id)
                           as round
                from jsonb_to_recordset(p_runs) as r(
                    job_id bigint, trader_id uuid, slot timestamptz, "interval" text,
                    status text, error_type text, error_message text,
                    started_at timestamptz, duration_ms double precision,
                    symbols_evaluated integer, symbol_errors integer, matches jsonb,
                    prices jsonb, data_as_of timestamptz, data_age_ms double precision
                )
            ) x
            where x.round = v_round
        ),
        run as materialized (
            select b.*,
                   t.user_id,
                   t.id is not null as trader_exists,
                   coalesce(md.mode = 'shadow', false) as shadow,
                   case when b.status = 'ok'
                        then coalesce(array(select jsonb_array_elements_text(b.matches)), '{}')
                        else '{}' end as symbols,
                   m.trader_id is not null as has_state,
                   m.symbols as prev_symbols,
                   m.shadow as prev_shadow,
                   -- Edge-triggered unless a later slot already ran successfully: the
                   -- state's slot, or a later run that left the set (and so the state's
                   -- slot) unchanged.
                   b.status = 'ok'
                   and (m.slot is null or m.slot < b.slot)
                   and not exists (
                       select 1 from public.trader_runs later
                       where later.trader_id = b.trader_id and later.slot > b.slot
                         and later.status = 'ok'
                   ) as edge
            from batch b
            left join public.traders t on t.id = b.trader_id
            left join public.trader_modes md on md.trader_id = t.id
            left join public.trader_matches m on m.trader_id = t.id
        ),
        counted as materialized (
            select r.*,
                   case when r.edge then (
                       select count(distinct s.symbol)::integer
                       from unnest(r.symbols) as s(symbol)
                       where not (s.symbol = any(coalesce(r.prev_symbols, '{}'::text[])))
                   ) else 0 end as new_signals
            from run r
            where r.trader_exists
        ),
        inserted as (
            insert into public.trader_runs as tr (
                trader_id, user_id, slot, "interval", status, error_type, error_message,
                started_at, duration_ms, symbols_evaluated, symbol_errors, matches, signals,
                data_as_of, data_age_ms, worker, shadow, matched_symbols
            )
            select c.trader_id, c.user_id, c.slot, c."interval", c.status, c.error_type,
                   c.error_message, c.started_at, c.duration_ms,
                   coalesce(c.symbols_evaluated, 0), coalesce(c.symbol_errors, 0),
                   case when c.status = 'ok'
                        then coalesce(jsonb_array_length(c.matches), 0) else 0 end,
                   c.new_signals, c.data_as_of, c.data_age_ms, p_worker, c.shadow,
                   case when c.shadow and c.status = 'ok' then c.symbols end
            from counted c
            order by c.trader_id
            on conflict on constraint trader_runs_trader_slot_key do nothing
            returning tr.id, tr.trader_id
        ),
        done as materialized (
            select c.*, i.id as new_run_id
            from counted c
            join inserted i on i.trader_id = c.trader_id
        ),
        new_signals as (
            insert into public.signals as s (
                trader_id, user_id, run_id, slot, symbol, "interval", price,
                change_percent, quote_volume, data_as_of, shadow
            )
            select d.trader_id, d.user_id, d.new_run_id, d.slot, m.symbol, d."interval",
                   (d.prices -> m.symbol ->> 0)::numeric,
                   (d.prices -> m.symbol ->> 1)::numeric,
                   (d.prices -> m.symbol ->> 2)::numeric,
                   d.data_as_of, d.shadow
            from done d
            cross join lateral (
                -- Each symbol once, at its first position.
                select u.symbol, min(u.ord) as ord
                from unnest(d.symbols) with ordinality as u(symbol, ord)
                group by u.symbol
            ) m
            where d.edge and not (m.symbol = any(coalesce(d.prev_symbols, '{}'::text[])))
            order by d.trader_id, m.ord
        ),
        new_state as (
            insert into public.trader_matches as tm (trader_id, user_id, symbols, slot, shadow)
            select d.trader_id, d.user_id, d.symbols, d.slot, d.shadow
            from done d
            where d.edge
              and (not d.has_state
                   or not (d.prev_symbols @> d.symbols and d.prev_symbols <@ d.symbols)
                   or d.prev_shadow is distinct from d.shadow)
            order by d.trader_id
            on conflict (trader_id) do update
                set symbols = excluded.symbols, slot = excluded.slot,
                    shadow = excluded.shadow, updated_at = now()
        ),
        counters as (
            -- A shadow run moves only last_slot: the user's row shows the browser's runs.
            update public.traders t
            set run_count = t.run_count + case when d.shadow then 0 else 1 end,
                signal_count = t.signal_count + case when d.shadow then 0 else d.new_signals end,
                error_count = t.error_count
                    + case when d.shadow or d.status = 'ok' then 0 else 1 end,
                consecutive_errors = case
                    when d.shadow then t.consecutive_errors
                    when d.status = 'ok' then 0
                    else t.consecutive_errors + 1 end,
                last_error = case
                    when d.shadow or d.status = 'ok' then t.last_error
                    else left(d.error_message, 2000) end,
                last_error_type = case
                    when d.shadow or d.status = 'ok' then t.last_error_type
                    else d.error_type end,
                last_error_at = case
                    when d.shadow or d.status = 'ok' then t.last_error_at else now() end,
                last_slot = greatest(t.last_slot, d.slot),
                last_run_at = case when d.shadow then t.last_run_at else now() end,
                last_run_status = case
                    when d.shadow then t.last_run_status
                    when d.status = 'ok' then 'ok' else 'error' end
            from done d
            where t.id = d.trader_id
            returning t.id, t.consecutive_errors, d.error_type, d.error_message,
                      not d.shadow and d.status <> 'ok'
                      and t.consecutive_errors >= p_disable_after as disable
        ),
        disabling as (
            select k.* from counters k where k.disable
        )
        select array_agg(r.job_id order by r.trader_id),
               array_agg(r.trader_id order by r.trader_id),
               array_agg(d.new_run_id order by r.trader_id),
               array_agg(case when not r.trader_exists then 'trader_deleted'
                              when d.new_run_id is null then 'duplicate'
                              else 'committed' end order by r.trader_id),
               array_agg(coalesce(d.new_signals, 0) order by r.trader_id),
               (select array_agg(k.id order by k.id) from disabling k),
               (select array_agg(k.consecutive_errors order by k.id) from disabling k),
               (select array_agg(k.error_type order by k.id) from disabling k),
               (select array_agg(k.error_message order by k.id) from disabling k)
        into v_jobs, v_traders, v_runs, v_outcomes, v_signals,
             v_disable, v_streaks, v_types, v_messages
        from run r
        left join done d on d.trader_id = r.trader_id;

        -- 3. Auto-disable after p_disable_after consecutive failed runs, with a reason the
        -- user can read.
        if v_disable is not null then
            update public.traders t
            set enabled = false,
                disabled_reason = format(
                    'disabled after %s consecutive failed runs; last error (%s): %s. '
                    'Fix the filter code and enable the trader again.',
                    x.streak, x.error_type, left(x.error_message, 500))
            from unnest(v_disable, v_streaks, v_types, v_messages)
                as x(id, streak, error_type, error_message)
            where t.id = x.id and t.enabled;
        end if;

        return query
        select * from unnest(v_jobs, v_traders, v_runs, v_outcomes, v_signals);
    end loop;

    if p_worker_id is not null and coalesce(cardinality(p_finish_job_ids), 0) > 0 then
        if p_delete_jobs then
            delete from procrastinate.procrastinate_jobs j
            where j.id = any(p_finish_job_ids) and j.status = 'doing'
              and j.worker_id = p_worker_id;
        else
            update procrastinate.procrastinate_jobs j
            set status = 'succeeded', attempts = j.attempts + 1, abort_requested = false
            where j.id = any(p_finish_job_ids) and j.status = 'doing'
              and j.worker_id = p_worker_id;
        end if;
    end if;
end
$$;
comment on function backend.commit_trader_runs(jsonb, text, integer, bigint, bigint[], boolean) is
    'Write runs, edge-triggered signals, match state and trader counters for a batch of '
    'evaluated jobs, idempotently per (trader_id, slot), set-based (one statement per table), '
    'and finish the jobs still held by p_worker_id. One row per run: committed, duplicate or '
    'trader_deleted.';


create function backend.prune_browser_runs(p_age interval, p_batch integer default 5000)
returns bigint
language plpgsql
volatile
set search_path = ''
as $$
declare
    v_deleted bigint;
begin
    with doomed as (
        select b.id from public.browser_runs b
        where b.reported_at < now() - p_age
        order by b.reported_at
        limit p_batch
    )
    delete from public.browser_runs b using doomed d where b.id = d.id;
    get diagnostics v_deleted = row_count;
    return v_deleted;
end
$$;
comment on function backend.prune_browser_runs(interval, integer) is
    'Retention of browser run reports: delete up to p_batch older than p_age; call until 0.';
revoke all on function backend.prune_browser_runs(interval, integer)
    from public, anon, authenticated;
do $$
begin
    if exists (select from pg_roles where rolname = 'service_role') then
        grant execute on function backend.prune_browser_runs(interval, integer) to service_role;
    end if;
end
$$;
