-- Per-run bookkeeping moves off the user's row: public.trader_stats.
--
-- Every committed run used to update its trader's row in public.traders: last run,
-- status, error streak, counters. That row also holds the user's filter (its code is
-- most of the row's ~600-900 bytes), and with wal_level = logical (Supabase's, for
-- Realtime) an UPDATE logs the whole new row, HOT or not: ~630 bytes of WAL per run in
-- the benchmark's mix, the largest single item after the job row, and more for longer
-- filters. It also bumped traders.updated_at every minute (the row's trigger), so the
-- column no longer said when the user last changed their trader.
--
-- Now those columns live in public.trader_stats, one narrow row per trader (~150 bytes
-- of WAL per update), written only by the commit; public.traders changes only when its
-- owner (or the backend's auto-disable, tier enforcement and scheduler checks) changes
-- it. Measured in docs/benchmarks.md ("2026-12-01 (late morning)").
--
-- * Rows: one per trader, created with it (a statement trigger on public.traders) and
--   deleted with it (cascade). Existing counters are copied over, then the columns are
--   dropped from public.traders.
-- * Visibility: a user reads their own traders' rows (user_id, copied from the trader,
--   as on runs, signals and match state) and writes none; the frontend reads them with
--   the trader (PostgREST embeds the one-to-one relation: traders?select=*,trader_stats(*)).
-- * Enabling a trader still resets its error streak (the user's explicit action wins):
--   an AFTER UPDATE trigger does it now, as the table owner, since the user may not write
--   the stats row.
-- * The commit locks the stats rows instead of the traders rows (in trader id order, the
--   one order every committer uses): that lock is what orders the committers of one
--   trader. Runs, signals and match state reference public.trader_stats instead of
--   public.traders (deleting a trader still deletes them: traders -> trader_stats ->
--   them, cascading), so their foreign-key checks take their key-share lock on the stats
--   row the commit already holds. A commit then writes nothing to the traders table, whose
--   rows are the widest the backend touches: after each checkpoint, the first lock of a
--   traders page logged the whole 8 KB page (~8 traders per page), ~1 KB of WAL per run
--   with full_page_writes on (Supabase's), against ~200 B for the narrow stats pages.
--   The auto-disable still updates the traders row, after the stats lock: a user who
--   enables that very trader at that moment can deadlock with it, and Postgres then
--   aborts one of the two (the worker retries its batch; the user retries the update).
-- * The copy of backend.commit_trader_runs below also inserts a run with a NOT EXISTS
--   probe on (trader_id, slot) instead of ON CONFLICT DO NOTHING. The function locks the
--   batch's stats rows before this statement (whose snapshot is taken after those
--   locks), and it is the only writer of public.trader_runs, so no other transaction can
--   add the same (trader, slot) in between: the probe decides exactly what ON CONFLICT
--   did. ON CONFLICT made every run a speculative insertion, which logs one more record
--   (Heap/HEAP_CONFIRM, ~52 bytes) and takes the unique index's insertion lock twice. The
--   unique key stays as the net: a writer that skipped the lock would fail loudly, never
--   duplicate. The signals were written this way already
--   (20261201030000_commit_shadow_runs.sql).

create table public.trader_stats (
    trader_id uuid primary key references public.traders (id) on delete cascade,
    user_id uuid not null,
    last_slot timestamptz,
    last_run_at timestamptz,
    last_run_status text,
    last_error text,
    last_error_type text,
    last_error_at timestamptz,
    consecutive_errors integer not null default 0,
    error_count bigint not null default 0,
    run_count bigint not null default 0,
    signal_count bigint not null default 0
)
-- Updated every run: room on each page keeps those updates HOT (no index entries).
with (fillfactor = 80);
comment on table public.trader_stats is
    'Backend-maintained run bookkeeping of each trader (last run, error streak, counters); '
    'one row per trader, read-only for users.';
comment on column public.trader_stats.last_slot is
    'The latest slot (UTC minute) the trader ran for, shadow runs included.';
comment on column public.trader_stats.consecutive_errors is
    'Failed runs in a row; reset by a successful run or by enabling the trader.';
-- Serves the RLS policy below.
create index trader_stats_user_id_idx on public.trader_stats (user_id);

insert into public.trader_stats (
    trader_id, user_id, last_slot, last_run_at, last_run_status, last_error, last_error_type,
    last_error_at, consecutive_errors, error_count, run_count, signal_count
)
select t.id, t.user_id, t.last_slot, t.last_run_at, t.last_run_status, t.last_error,
       t.last_error_type, t.last_error_at, t.consecutive_errors, t.error_count, t.run_count,
       t.signal_count
from public.traders t;

-- The trigger that reset the streak on enabling wrote a column that moves: replace it
-- before the columns go.
create or replace function backend.traders_before_update() returns trigger
language plpgsql
set search_path = ''
as $$
begin
    new.updated_at := now();
    if new.enabled and not old.enabled then
        new.disabled_reason := null;
    end if;
    return new;
end
$$;

alter table public.traders
    drop column last_slot,
    drop column last_run_at,
    drop column last_run_status,
    drop column last_error,
    drop column last_error_type,
    drop column last_error_at,
    drop column consecutive_errors,
    drop column error_count,
    drop column run_count,
    drop column signal_count;
comment on table public.traders is
    'Users'' traders. Users own id/user_id/name/enabled/filter; disabled_reason and '
    'schedule_problem are backend-maintained; run bookkeeping is in public.trader_stats.';

create function backend.traders_create_stats() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    insert into public.trader_stats (trader_id, user_id)
    select n.id, n.user_id from new_traders n;
    return null;
end
$$;
comment on function backend.traders_create_stats() is
    'Statement trigger of public.traders: one public.trader_stats row per new trader.';

create trigger traders_create_stats
    after insert on public.traders
    referencing new table as new_traders
    for each statement execute function backend.traders_create_stats();

create function backend.traders_reset_streak() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    update public.trader_stats s
    set consecutive_errors = 0
    where s.trader_id = new.id and s.consecutive_errors <> 0;
    return null;
end
$$;
comment on function backend.traders_reset_streak() is
    'Row trigger of public.traders: enabling a trader resets its error streak.';

create trigger traders_reset_streak
    after update of enabled on public.traders
    for each row
    when (new.enabled and not old.enabled)
    execute function backend.traders_reset_streak();

revoke all on function backend.traders_create_stats(), backend.traders_reset_streak()
    from public, anon, authenticated;

-- Runs, signals and match state hang off the stats row (see the header).
alter table public.trader_runs
    drop constraint trader_runs_trader_id_fkey,
    add constraint trader_runs_trader_id_fkey foreign key (trader_id)
        references public.trader_stats (trader_id) on delete cascade;
alter table public.signals
    drop constraint signals_trader_id_fkey,
    add constraint signals_trader_id_fkey foreign key (trader_id)
        references public.trader_stats (trader_id) on delete cascade;
alter table public.trader_matches
    drop constraint trader_matches_trader_id_fkey,
    add constraint trader_matches_trader_id_fkey foreign key (trader_id)
        references public.trader_stats (trader_id) on delete cascade;

revoke all on public.trader_stats from anon, authenticated;
grant select on public.trader_stats to authenticated;
grant all on public.trader_stats to service_role;
alter table public.trader_stats enable row level security;
create policy "users read their own traders' stats" on public.trader_stats
    for select to authenticated using ((select auth.uid()) = user_id);

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
    v_trader_ids uuid[];
    v_locked integer;
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
    -- 1. Lock the batch's traders' stats rows in trader id order (see the header: the
    -- traders rows themselves are not locked); count the rounds (most slots of a trader).
    select coalesce(array_agg(n.trader_id), '{}'), coalesce(max(n.slots), 0)
    into v_trader_ids, v_rounds
    from (
        select (e ->> 'trader_id')::uuid as trader_id, count(*) as slots
        from jsonb_array_elements(p_runs) e
        group by 1
    ) n;
    select count(*) into v_locked
    from (
        select 1 from public.trader_stats s
        where s.trader_id = any(v_trader_ids)
        order by s.trader_id
        for update of s
    ) l;
    if v_locked < cardinality(v_trader_ids) then
        -- A trader without a stats row (inserted with triggers off) gets one, or its runs
        -- could never be written (or the trader is gone, which the round reports).
        insert into public.trader_stats (trader_id, user_id)
        select t.id, t.user_id from public.traders t where t.id = any(v_trader_ids)
        on conflict (trader_id) do nothing;
        perform 1
        from public.trader_stats s
        where s.trader_id = any(v_trader_ids)
        order by s.trader_id
        for update of s;
    end if;

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
            update public.trader_stats t
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
            where t.trader_id = d.trader_id
            returning t.trader_id as id, t.consecutive_errors, d.error_type, d.error_message,
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
