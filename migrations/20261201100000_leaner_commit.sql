-- A leaner commit: fewer WAL records and index entries per run, same results.
--
-- Measured in docs/benchmarks.md ("2026-12-01 (late morning)"). Three changes:
--
-- 1. backend.commit_trader_runs inserts a run with a NOT EXISTS probe on (trader_id, slot)
--    instead of ON CONFLICT DO NOTHING. The function locks the batch's traders before
--    this statement (whose snapshot is taken after those locks), and it is the only
--    writer of public.trader_runs, so no other transaction can add the same (trader,
--    slot) in between: the probe decides exactly what ON CONFLICT did. ON CONFLICT made
--    every run a speculative insertion, which logs one more record (Heap/HEAP_CONFIRM,
--    ~52 bytes) and takes the unique index's insertion lock twice. The unique key stays
--    as the net: a writer that skipped the lock would fail loudly, never duplicate. The
--    signals were written this way already (20261201030000_commit_shadow_runs.sql).
--
-- 2. backend.commit_held_trader_runs, with finished jobs deleted (the default): the
--    DELETE of the jobs this worker still holds is the hold check. It used to lock them
--    (SELECT ... FOR UPDATE: one Heap/LOCK record per job) and delete them at the end of
--    the commit; the delete alone takes the same row locks, keeps the same rows and
--    rolls back with the rest if anything fails. Its locks are not taken in id order,
--    and need not be: no session waits on a `doing` job's row while holding another one
--    (claims, stalled-job recovery and the admin requeue skip locked rows; a committer
--    touches only jobs whose current version names it as their worker, which no other
--    session can also see). With jobs kept (succeeded), the lock and the final update
--    are as before. When every run's job is held (the normal case) the runs are passed on
--    as they came instead of being rebuilt with jsonb_agg.
--
-- 3. procrastinate_jobs_queue_name_idx_v1 (queue_name, every row) is dropped. No lookup
--    uses it: the claim walks procrastinate_jobs_priority_idx_v1 and filters the queue
--    there (its plan is asserted in tests/integration/test_worker_faults.py), procrastinate's
--    own fetch does the same for the maintenance queue, and the admin listings by queue
--    read failed jobs or count the whole table. It cost an entry for every job the tick
--    inserts and another for its claimed version. procrastinate's schema is ours to
--    migrate (20261126000100_create_procrastinate_schema.sql copies it): a later
--    procrastinate migration that names this index must be adapted when it is copied.

drop index if exists procrastinate.procrastinate_jobs_queue_name_idx_v1;

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
            -- Under the trader lock no other committer can add this (trader, slot): a
            -- NOT EXISTS probe decides what ON CONFLICT did, without a speculative
            -- insertion (one more WAL record per run). The unique key stays the net.
            where not exists (
                select 1 from public.trader_runs dup
                where dup.trader_id = c.trader_id and dup.slot = c.slot
            )
            order by c.trader_id
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

create or replace function backend.commit_held_trader_runs(
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
    v_run_jobs bigint[];
    v_held bigint[];
    v_finish bigint[];
    v_lock bigint[];
begin
    if p_worker_id is null then
        return query
        select * from backend.commit_trader_runs(
            p_runs, p_worker, p_disable_after, null, p_finish_job_ids, p_delete_jobs);
        return;
    end if;

    p_finish_job_ids := coalesce(p_finish_job_ids, '{}');
    v_run_jobs := array(select (e ->> 'job_id')::bigint from jsonb_array_elements(p_runs) e);

    if p_delete_jobs then
        -- The delete is the check: it removes exactly the finished jobs this worker still
        -- holds, and its row locks keep them until the runs are committed with it.
        with gone as (
            delete from procrastinate.procrastinate_jobs j
            where j.id = any(p_finish_job_ids)
              and j.status = 'doing'
              and j.worker_id = p_worker_id
            returning j.id
        )
        select coalesce(array_agg(g.id), '{}') into v_held from gone g;
        v_lock := array(select x from unnest(v_run_jobs) x where not (x = any(p_finish_job_ids)));
    else
        v_held := '{}';
        v_lock := p_finish_job_ids || v_run_jobs;
    end if;

    -- Jobs with a run that the delete did not take (all of them when jobs are kept):
    -- locked in id order, as before.
    if cardinality(v_lock) > 0 then
        v_held := v_held || array(
            select j.id
            from procrastinate.procrastinate_jobs j
            where j.id = any(v_lock)
              and j.status = 'doing'
              and j.worker_id = p_worker_id
            order by j.id
            for update of j
        );
    end if;
    v_finish := case when p_delete_jobs then '{}'::bigint[]
                     else array(select f from unnest(p_finish_job_ids) f where f = any(v_held)) end;

    return query
    select e.job_id, e.trader_id, null::bigint, 'not_held'::text, 0
    from jsonb_to_recordset(p_runs) as e(job_id bigint, trader_id uuid)
    where not (e.job_id = any(v_held));

    return query
    select * from backend.commit_trader_runs(
        case
            -- Every run's job is held (the normal case): the runs as they came.
            when v_run_jobs <@ v_held then p_runs
            else coalesce(
                (select jsonb_agg(e) from jsonb_array_elements(p_runs) e
                 where (e ->> 'job_id')::bigint = any(v_held)),
                '[]'::jsonb)
        end,
        p_worker, p_disable_after, p_worker_id, v_finish, p_delete_jobs);
end
$$;
