-- Shadow runs (docs/rollout.md): backend.commit_trader_runs now writes the runs,
-- signals and match state of a trader in shadow mode with shadow = true, which the
-- owners' RLS policies hide, and stores a shadow run's whole match set for parity. A
-- shadow run leaves the trader's user-visible row alone: no counters, no last_error, no
-- auto-disable (only last_slot, the scheduler's bookkeeping). Everything else is as in
-- 20261126003000_create_worker_functions.sql, whose comments explain the function.
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
    r record;
    v_user uuid;
    v_run_id bigint;
    v_prev text[];
    v_prev_slot timestamptz;
    v_signals integer;
    v_matches integer;
    v_errors integer;
    v_shadow boolean;
begin
    for r in
        select *
        from jsonb_to_recordset(p_runs) as x(
            job_id bigint, trader_id uuid, slot timestamptz, "interval" text, status text,
            error_type text, error_message text, started_at timestamptz,
            duration_ms double precision, symbols_evaluated integer, symbol_errors integer,
            matches jsonb, prices jsonb, data_as_of timestamptz, data_age_ms double precision
        )
        order by x.trader_id, x.slot
    loop
        select t.user_id, coalesce(m.mode = 'shadow', false) into v_user, v_shadow
        from public.traders t
        left join public.trader_modes m on m.trader_id = t.id
        where t.id = r.trader_id
        for update of t;
        if not found then
            job_id := r.job_id; trader_id := r.trader_id; run_id := null;
            outcome := 'trader_deleted'; signals := 0;
            return next;
            continue;
        end if;

        v_matches := coalesce(jsonb_array_length(r.matches), 0);
        insert into public.trader_runs as tr (
            trader_id, user_id, slot, "interval", status, error_type, error_message,
            started_at, duration_ms, symbols_evaluated, symbol_errors, matches, signals,
            data_as_of, data_age_ms, worker, shadow, matched_symbols
        ) values (
            r.trader_id, v_user, r.slot, r."interval", r.status, r.error_type,
            r.error_message, r.started_at, r.duration_ms, coalesce(r.symbols_evaluated, 0),
            coalesce(r.symbol_errors, 0), case when r.status = 'ok' then v_matches else 0 end,
            0, r.data_as_of, r.data_age_ms, p_worker, v_shadow,
            case when v_shadow and r.status = 'ok'
                 then array(select jsonb_array_elements_text(r.matches)) end
        )
        on conflict on constraint trader_runs_trader_slot_key do nothing
        returning tr.id into v_run_id;

        if v_run_id is null then
            job_id := r.job_id; trader_id := r.trader_id; run_id := null;
            outcome := 'duplicate'; signals := 0;
            return next;
            continue;
        end if;

        v_signals := 0;
        if r.status = 'ok' then
            select m.symbols, m.slot into v_prev, v_prev_slot
            from public.trader_matches m where m.trader_id = r.trader_id for update;
            if v_prev_slot is null or v_prev_slot < r.slot then
                insert into public.signals as s (
                    trader_id, user_id, run_id, slot, symbol, "interval", price,
                    change_percent, quote_volume, data_as_of, shadow
                )
                select r.trader_id, v_user, v_run_id, r.slot, m.symbol, r."interval",
                       (r.prices -> m.symbol ->> 0)::numeric,
                       (r.prices -> m.symbol ->> 1)::numeric,
                       (r.prices -> m.symbol ->> 2)::numeric,
                       r.data_as_of, v_shadow
                from jsonb_array_elements_text(r.matches) with ordinality as m(symbol, ord)
                where not (m.symbol = any(coalesce(v_prev, '{}'::text[])))
                order by m.ord
                on conflict on constraint signals_trader_slot_symbol_key do nothing;
                get diagnostics v_signals = row_count;

                insert into public.trader_matches as tm (trader_id, user_id, symbols, slot, shadow)
                values (
                    r.trader_id, v_user,
                    array(select jsonb_array_elements_text(r.matches)), r.slot, v_shadow
                )
                on conflict (trader_id) do update
                    set symbols = excluded.symbols, slot = excluded.slot,
                        shadow = excluded.shadow, updated_at = now();

                update public.trader_runs tr set signals = v_signals where tr.id = v_run_id;
            end if;
            -- else: a later slot already ran (its job was retried out of order); this run
            -- is recorded but neither signals nor rewinds the edge-trigger state.

            -- A shadow run leaves the user's trader row alone (the browser is what the
            -- user relies on): only last_slot, the scheduler's bookkeeping, moves.
            update public.traders t
            set last_slot = greatest(t.last_slot, r.slot)
            where t.id = r.trader_id and v_shadow;
            update public.traders t
            set run_count = t.run_count + 1,
                signal_count = t.signal_count + v_signals,
                consecutive_errors = 0,
                last_slot = greatest(t.last_slot, r.slot),
                last_run_at = now(),
                last_run_status = 'ok'
            where t.id = r.trader_id and not v_shadow;
        elsif v_shadow then
            -- Shadow errors are recorded on the (hidden) run only: they never show on
            -- the trader or count towards disabling it.
            update public.traders t
            set last_slot = greatest(t.last_slot, r.slot)
            where t.id = r.trader_id;
        else
            update public.traders t
            set run_count = t.run_count + 1,
                error_count = t.error_count + 1,
                consecutive_errors = t.consecutive_errors + 1,
                last_error = left(r.error_message, 2000),
                last_error_type = r.error_type,
                last_error_at = now(),
                last_slot = greatest(t.last_slot, r.slot),
                last_run_at = now(),
                last_run_status = 'error'
            where t.id = r.trader_id
            returning t.consecutive_errors into v_errors;

            if v_errors >= p_disable_after then
                update public.traders t
                set enabled = false,
                    disabled_reason = format(
                        'disabled after %s consecutive failed runs; last error (%s): %s. '
                        'Fix the filter code and enable the trader again.',
                        v_errors, r.error_type, left(r.error_message, 500))
                where t.id = r.trader_id and t.enabled;
            end if;
        end if;

        job_id := r.job_id; trader_id := r.trader_id; run_id := v_run_id;
        outcome := 'committed'; signals := v_signals;
        return next;
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
    'evaluated jobs, idempotently per (trader_id, slot), and finish the jobs still held by '
    'p_worker_id. One row per run: committed, duplicate or trader_deleted.';


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
