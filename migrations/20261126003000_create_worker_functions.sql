-- The trader worker's side of the queue: claim a batch, commit a batch, give jobs back,
-- recover jobs of dead workers, and prune history. docs/worker.md explains the design.
--
-- Why our own claim: procrastinate_fetch_job_v2 claims one job per call, i.e. one round
-- trip (~3 ms here) per job, as much as evaluating a trader over 100 symbols. The worker
-- claims up to N jobs per call instead, with procrastinate's exact rules (priority DESC,
-- id ASC; a job whose `lock` is held by a 'doing' job, or by an earlier/higher todo job,
-- is not eligible) and commits the runs of the whole batch, plus the jobs' final status,
-- in one transaction. Jobs stay ordinary procrastinate jobs: the same rows, statuses,
-- events, worker heartbeats and (for procrastinate's own worker) the same `run_trader`
-- task.
--
-- Nothing here is destructive except backend.prune_history, which deletes finished jobs,
-- old runs and old signals by design (the retention job calls it).

-- Serves the "same lock, todo or doing" probe of the claim (ours and procrastinate's):
-- without it that NOT EXISTS scans every todo job for each candidate, which made a claim
-- over 10,000 waiting jobs take tens of milliseconds instead of well under one.
create index if not exists procrastinate_jobs_lock_todo_doing_idx
    on procrastinate.procrastinate_jobs (lock)
    where status in ('todo', 'doing');


-- claim_trader_jobs: procrastinate_fetch_job_v2 with LIMIT p_limit instead of 1.
-- Within one statement every candidate sees the same snapshot, so of two todo jobs with
-- the same lock only the first (priority, id) can qualify: a batch never holds two jobs
-- of one trader. A rare race with a concurrent claim ends in a unique violation of
-- procrastinate_jobs_lock_idx_v1 (lock WHERE status = 'doing'); the caller retries.
-- The claimed rows are updated through `id = ANY(array(...))`, an index scan on the
-- primary key. `UPDATE … FROM candidate` was planned as a hash join over a sequential scan
-- of the whole jobs table (the batch size is a parameter, so the planner guessed ~10% of
-- the table): 12 of 14 ms per claim at 30,000 jobs under auto_explain, vs ~1.5 ms now.
create function backend.claim_trader_jobs(
    p_queue_names character varying[],
    p_worker_id bigint,
    p_limit integer
)
returns setof procrastinate.procrastinate_jobs
language sql
volatile
set search_path = ''
as $$
    with claimed as (
        update procrastinate.procrastinate_jobs as j
        set status = 'doing', worker_id = p_worker_id
        where j.id = any (array(
            select jobs.id
            from procrastinate.procrastinate_jobs as jobs
            where jobs.status = 'todo'
              and (p_queue_names is null or jobs.queue_name = any(p_queue_names))
              and (jobs.scheduled_at is null or jobs.scheduled_at <= now())
              and not exists (
                  select 1
                  from procrastinate.procrastinate_jobs as other_jobs
                  where jobs.lock is not null
                    and other_jobs.lock = jobs.lock
                    and other_jobs.status in ('todo', 'doing')
                    and (
                        other_jobs.status = 'doing'
                        or other_jobs.priority > jobs.priority
                        or (other_jobs.priority = jobs.priority and other_jobs.id < jobs.id)
                    )
              )
            order by jobs.priority desc, jobs.id asc
            limit p_limit
            for update of jobs skip locked
        ))
        returning j.*
    )
    -- Callers get the batch in claim order, as from the first version.
    select * from claimed order by priority desc, id asc
$$;
comment on function backend.claim_trader_jobs(character varying[], bigint, integer) is
    'Claim up to p_limit todo jobs of the given queues (NULL = all) for worker p_worker_id, '
    'in procrastinate''s order and lock rules. Returns the claimed rows (status doing).';


-- Put a job back to 'todo'. If the scheduler queued a newer job of the same trader in the
-- meantime, the unique index on queueing_lock (WHERE status = 'todo') would refuse a
-- second todo row: the requeued job then drops its queueing_lock (keeping `lock`, so the
-- two still run one after the other, oldest first).
create function backend.requeue_job(
    p_job_id bigint,
    p_retry_at timestamptz,
    p_count_attempt boolean,
    p_max_attempts integer
)
returns text
language plpgsql
volatile
set search_path = ''
as $$
declare
    v_job procrastinate.procrastinate_jobs;
begin
    select * into v_job from procrastinate.procrastinate_jobs where id = p_job_id for update;
    if not found or v_job.status <> 'doing' then
        return 'not_doing';
    end if;
    if p_count_attempt and p_max_attempts is not null
        and v_job.attempts + 1 >= p_max_attempts then
        update procrastinate.procrastinate_jobs
        set status = 'failed', attempts = attempts + 1, abort_requested = false
        where id = p_job_id;
        return 'failed';
    end if;
    update procrastinate.procrastinate_jobs j
    set status = 'todo',
        worker_id = null,
        abort_requested = false,
        scheduled_at = p_retry_at,
        attempts = j.attempts + case when p_count_attempt then 1 else 0 end,
        queueing_lock = case
            when exists (
                select 1 from procrastinate.procrastinate_jobs o
                where o.queueing_lock = j.queueing_lock and o.status = 'todo'
            ) then null
            else j.queueing_lock
        end
    where j.id = p_job_id;
    return 'requeued';
end
$$;
comment on function backend.requeue_job(bigint, timestamptz, boolean, integer) is
    'Move a doing job back to todo at p_retry_at (counting an attempt or not); with '
    'p_count_attempt and attempts reaching p_max_attempts it is marked failed instead. '
    'Returns requeued, failed or not_doing.';


-- release_trader_jobs: a worker gives back jobs it claimed but will not finish (SIGTERM
-- grace period over, database error before the commit). Only jobs still held by that
-- worker are touched. p_count_attempt=false for shutdowns (not the job's fault).
create function backend.release_trader_jobs(
    p_job_ids bigint[],
    p_worker_id bigint,
    p_retry_at timestamptz,
    p_count_attempt boolean,
    p_max_attempts integer
)
returns table (job_id bigint, outcome text)
language sql
volatile
set search_path = ''
as $$
    select j.id, backend.requeue_job(j.id, p_retry_at, p_count_attempt, p_max_attempts)
    from procrastinate.procrastinate_jobs j
    where j.id = any(p_job_ids)
      and j.status = 'doing'
      and j.worker_id is not distinct from p_worker_id
    order by j.id
$$;
comment on function backend.release_trader_jobs(bigint[], bigint, timestamptz, boolean, integer) is
    'Give back doing jobs held by p_worker_id: todo again at p_retry_at, or failed once '
    'p_max_attempts is reached (when attempts are counted).';


-- recover_stalled_jobs: procrastinate finds jobs of workers whose heartbeat is older than
-- N seconds ("stalled") but never reruns them. This does: it deletes the stalled workers
-- (procrastinate's own function; jobs.worker_id becomes NULL by the foreign key) and puts
-- every doing job without a live worker back to todo, counting an attempt, so a job that
-- kills its worker every time ends 'failed' after p_max_attempts instead of looping.
-- SKIP LOCKED: several workers may call this at once; each job is requeued once.
create function backend.recover_stalled_jobs(
    p_stalled_seconds double precision,
    p_max_attempts integer
)
returns table (job_id bigint, queue_name text, outcome text)
language plpgsql
volatile
set search_path = ''
as $$
begin
    perform procrastinate.procrastinate_prune_stalled_workers_v1(p_stalled_seconds);
    return query
    with orphan as (
        select j.id, j.queue_name
        from procrastinate.procrastinate_jobs j
        where j.status = 'doing'
          and (
              j.worker_id is null
              or not exists (
                  select 1 from procrastinate.procrastinate_workers w
                  where w.id = j.worker_id
                    and w.last_heartbeat >= now() - make_interval(secs => p_stalled_seconds)
              )
          )
        order by j.id
        for update of j skip locked
    )
    select o.id, o.queue_name::text, backend.requeue_job(o.id, null, true, p_max_attempts)
    from orphan o;
end
$$;
comment on function backend.recover_stalled_jobs(double precision, integer) is
    'Delete workers without a heartbeat for p_stalled_seconds and requeue (or fail, after '
    'p_max_attempts) every doing job left without a live worker. Safe to call concurrently.';


-- commit_trader_runs: the one transaction that makes signals exactly-once.
--
-- p_runs is a JSON array, one element per evaluated job:
--   {job_id, trader_id, slot, interval, status: ok|error, error_type, error_message,
--    started_at, duration_ms, symbols_evaluated, symbol_errors,
--    matches: [symbol, ...] (evaluation order), prices: {symbol: [price, change%, qvol]},
--    data_as_of, data_age_ms}
-- For each element, in trader order (a fixed lock order, so concurrent batches cannot
-- deadlock):
--   * lock the trader row; a deleted trader is skipped;
--   * insert the run; if (trader_id, slot) already has one (a duplicate or retried job)
--     nothing else is written for it;
--   * status ok: signals = matches not in the trader's stored previous matches (read
--     under the row lock, so the edge trigger is right whatever worker ran the previous
--     slot), then the new match state, unless a later slot already stored its own;
--   * counters on the trader; after p_disable_after consecutive failed runs the trader is
--     disabled with a reason the user can read.
-- Then the jobs in p_finish_job_ids still held by p_worker_id are marked succeeded (or
-- deleted with p_delete_jobs), in the same transaction. p_worker_id NULL leaves job
-- status to the caller (procrastinate's own worker finishes its job itself).
create function backend.commit_trader_runs(
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
        select t.user_id into v_user from public.traders t where t.id = r.trader_id for update;
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
            data_as_of, data_age_ms, worker
        ) values (
            r.trader_id, v_user, r.slot, r."interval", r.status, r.error_type,
            r.error_message, r.started_at, r.duration_ms, coalesce(r.symbols_evaluated, 0),
            coalesce(r.symbol_errors, 0), case when r.status = 'ok' then v_matches else 0 end,
            0, r.data_as_of, r.data_age_ms, p_worker
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
                    change_percent, quote_volume, data_as_of
                )
                select r.trader_id, v_user, v_run_id, r.slot, m.symbol, r."interval",
                       (r.prices -> m.symbol ->> 0)::numeric,
                       (r.prices -> m.symbol ->> 1)::numeric,
                       (r.prices -> m.symbol ->> 2)::numeric,
                       r.data_as_of
                from jsonb_array_elements_text(r.matches) with ordinality as m(symbol, ord)
                where not (m.symbol = any(coalesce(v_prev, '{}'::text[])))
                order by m.ord
                on conflict on constraint signals_trader_slot_symbol_key do nothing;
                get diagnostics v_signals = row_count;

                insert into public.trader_matches as tm (trader_id, user_id, symbols, slot)
                values (
                    r.trader_id, v_user,
                    array(select jsonb_array_elements_text(r.matches)), r.slot
                )
                on conflict (trader_id) do update
                    set symbols = excluded.symbols, slot = excluded.slot, updated_at = now();

                update public.trader_runs tr set signals = v_signals where tr.id = v_run_id;
            end if;
            -- else: a later slot already ran (its job was retried out of order); this run
            -- is recorded but neither signals nor rewinds the edge-trigger state.

            update public.traders t
            set run_count = t.run_count + 1,
                signal_count = t.signal_count + v_signals,
                consecutive_errors = 0,
                last_slot = greatest(t.last_slot, r.slot),
                last_run_at = now(),
                last_run_status = 'ok'
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


-- prune_history: the retention job. Deletes at most p_batch rows per table per call (the
-- caller loops until a call deletes nothing), so no single transaction grows unbounded.
--   * finished queue jobs (succeeded, failed, cancelled, aborted) whose last event is
--     older than p_jobs_age (their events go with them: ON DELETE CASCADE);
--   * signals older than p_signals_age;
--   * runs older than p_runs_age that have no signal left, and every run older than
--     p_signals_age (signals reference runs, so a run lives as long as its signals).
create function backend.prune_history(
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
        select r.id from public.trader_runs r
        where r.finished_at < now() - least(p_runs_age, p_signals_age)
          and (
              r.finished_at < now() - p_signals_age
              or not exists (select 1 from public.signals s where s.run_id = r.id)
          )
        order by r.finished_at
        limit p_batch
    )
    delete from public.trader_runs r using doomed d where r.id = d.id;
    get diagnostics runs = row_count;

    return next;
end
$$;
comment on function backend.prune_history(interval, interval, interval, integer) is
    'Retention: delete up to p_batch finished jobs older than p_jobs_age, signals older than '
    'p_signals_age, and runs older than p_runs_age without signals (or older than '
    'p_signals_age). Returns the counts; call until they are all 0.';


revoke all on function backend.claim_trader_jobs(character varying[], bigint, integer)
    from public, anon, authenticated;
revoke all on function backend.requeue_job(bigint, timestamptz, boolean, integer)
    from public, anon, authenticated;
revoke all on function backend.release_trader_jobs(bigint[], bigint, timestamptz, boolean, integer)
    from public, anon, authenticated;
revoke all on function backend.recover_stalled_jobs(double precision, integer)
    from public, anon, authenticated;
revoke all on function backend.commit_trader_runs(jsonb, text, integer, bigint, bigint[], boolean)
    from public, anon, authenticated;
revoke all on function backend.prune_history(interval, interval, interval, integer)
    from public, anon, authenticated;
do $$
begin
    if exists (select from pg_roles where rolname = 'service_role') then
        grant usage on schema backend to service_role;
        grant execute on function
            backend.claim_trader_jobs(character varying[], bigint, integer),
            backend.requeue_job(bigint, timestamptz, boolean, integer),
            backend.release_trader_jobs(bigint[], bigint, timestamptz, boolean, integer),
            backend.recover_stalled_jobs(double precision, integer),
            backend.commit_trader_runs(jsonb, text, integer, bigint, bigint[], boolean),
            backend.prune_history(interval, interval, interval, integer)
        to service_role;
    end if;
end
$$;
