--
-- PostgreSQL database dump
--



SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: auth; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA auth;


--
-- Name: backend; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA backend;


--
-- Name: SCHEMA backend; Type: COMMENT; Schema: -; Owner: -
--

COMMENT ON SCHEMA backend IS 'traderctl internals: scheduler state, backend functions. Not exposed to the Data API.';


--
-- Name: ops; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA ops;


--
-- Name: SCHEMA ops; Type: COMMENT; Schema: -; Owner: -
--

COMMENT ON SCHEMA ops IS 'Read-only observability views for operators (traderctl stats, runbook queries in sql/views). Not exposed to the Data API; service_role only.';


--
-- Name: procrastinate; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA procrastinate;


--
-- Name: supabase_migrations; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA supabase_migrations;


--
-- Name: procrastinate_job_event_type; Type: TYPE; Schema: procrastinate; Owner: -
--

CREATE TYPE procrastinate.procrastinate_job_event_type AS ENUM (
    'deferred',
    'started',
    'deferred_for_retry',
    'failed',
    'succeeded',
    'cancelled',
    'abort_requested',
    'aborted',
    'scheduled',
    'retried'
);


--
-- Name: procrastinate_job_status; Type: TYPE; Schema: procrastinate; Owner: -
--

CREATE TYPE procrastinate.procrastinate_job_status AS ENUM (
    'todo',
    'doing',
    'succeeded',
    'failed',
    'cancelled',
    'aborting',
    'aborted'
);


--
-- Name: procrastinate_job_to_defer_v1; Type: TYPE; Schema: procrastinate; Owner: -
--

CREATE TYPE procrastinate.procrastinate_job_to_defer_v1 AS (
	queue_name character varying,
	task_name character varying,
	priority integer,
	lock text,
	queueing_lock text,
	args jsonb,
	scheduled_at timestamp with time zone
);


--
-- Name: jwt(); Type: FUNCTION; Schema: auth; Owner: -
--

CREATE FUNCTION auth.jwt() RETURNS jsonb
    LANGUAGE sql STABLE
    SET search_path TO ''
    AS $$
    select coalesce(
        nullif(current_setting('request.jwt.claim', true), ''),
        nullif(current_setting('request.jwt.claims', true), '')
    )::jsonb
$$;


--
-- Name: role(); Type: FUNCTION; Schema: auth; Owner: -
--

CREATE FUNCTION auth.role() RETURNS text
    LANGUAGE sql STABLE
    SET search_path TO ''
    AS $$
    select coalesce(
        nullif(current_setting('request.jwt.claim.role', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
    )::text
$$;


--
-- Name: uid(); Type: FUNCTION; Schema: auth; Owner: -
--

CREATE FUNCTION auth.uid() RETURNS uuid
    LANGUAGE sql STABLE
    SET search_path TO ''
    AS $$
    select coalesce(
        nullif(current_setting('request.jwt.claim.sub', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
    )::uuid
$$;


--
-- Name: apply_tier_to_traders(uuid); Type: FUNCTION; Schema: backend; Owner: -
--

CREATE FUNCTION backend.apply_tier_to_traders(p_user_id uuid) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
    v_tier text;
    v_max integer;
    v_disabled integer;
begin
    select tr.name, tr.max_enabled_traders into v_tier, v_max
    from public.tiers tr
    where tr.name = coalesce(
        (select ut.tier from public.user_tiers ut where ut.user_id = p_user_id), 'free');
    if v_max is null then
        return 0;
    end if;
    perform backend.lock_user_traders(p_user_id);

    with ranked as (
        -- Served by traders_user_id_enabled_idx (user_id, created_at) WHERE enabled.
        select t.id, row_number() over (order by t.created_at, t.id) as rn
        from public.traders t
        where t.user_id = p_user_id and t.enabled
    )
    update public.traders t
    set enabled = false,
        disabled_reason = format(
            'tier limit: the %s tier allows %s enabled trader%s; the newest extra traders '
            'were disabled when the tier changed on %s',
            v_tier, v_max, case when v_max = 1 then '' else 's' end,
            to_char(now() at time zone 'UTC', 'YYYY-MM-DD HH24:MI "UTC"'))
    from ranked r
    where t.id = r.id and r.rn > v_max;
    get diagnostics v_disabled = row_count;
    return v_disabled;
end
$$;


--
-- Name: FUNCTION apply_tier_to_traders(p_user_id uuid); Type: COMMENT; Schema: backend; Owner: -
--

COMMENT ON FUNCTION backend.apply_tier_to_traders(p_user_id uuid) IS 'Disable the user''s newest enabled traders beyond their tier''s max_enabled_traders, setting disabled_reason; returns how many were disabled.';


--
-- Name: browser_runs_check_limits(); Type: FUNCTION; Schema: backend; Owner: -
--

CREATE FUNCTION backend.browser_runs_check_limits() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $_$
declare
    s backend.rollout_settings;
    v_recent integer;
    v_bad text;
begin
    select * into s from backend.rollout_settings;
    if cardinality(new.matched_symbols) > s.report_max_symbols then
        raise exception 'browser run report has % matched symbols; at most % are accepted',
                cardinality(new.matched_symbols), s.report_max_symbols
            using errcode = 'check_violation',
                  hint = 'Report the symbols the trader matched on this run only.';
    end if;
    select m.symbol into v_bad
    from unnest(new.matched_symbols) as m(symbol)
    where m.symbol is null or m.symbol !~ '^[A-Za-z0-9_.-]{1,32}$'
    limit 1;
    if found then
        raise exception 'browser run report has an invalid symbol %',
                coalesce(quote_literal(left(v_bad, 40)), 'NULL')
            using errcode = 'check_violation',
                  hint = 'Symbols are exchange tickers such as BTCUSDT (1-32 letters/digits).';
    end if;
    if new.ran_at > now() + interval '5 minutes' or new.candle_open_time > now() then
        raise exception 'browser run report is dated in the future (ran_at %, candle_open_time %)',
                new.ran_at, new.candle_open_time
            using errcode = 'check_violation',
                  hint = 'Send the time of the run and the open time of the last closed candle.';
    end if;
    perform pg_advisory_xact_lock(hashtextextended('browser_runs:' || new.trader_id::text, 0));
    select count(*) into v_recent
    from public.browser_runs b
    where b.trader_id = new.trader_id and b.reported_at > now() - interval '1 minute';
    if v_recent >= s.report_max_per_minute then
        raise exception 'too many browser run reports for trader %: % in the last minute (limit %)',
                new.trader_id, v_recent, s.report_max_per_minute
            using errcode = 'check_violation',
                  hint = 'Report once per run of the trader; retry after a minute.';
    end if;
    new.reported_at := now();
    return new;
end
$_$;


SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: procrastinate_jobs; Type: TABLE; Schema: procrastinate; Owner: -
--

CREATE TABLE procrastinate.procrastinate_jobs (
    id bigint NOT NULL,
    queue_name character varying(128) NOT NULL,
    task_name character varying(128) NOT NULL,
    priority integer DEFAULT 0 NOT NULL,
    lock text,
    queueing_lock text,
    args jsonb DEFAULT '{}'::jsonb NOT NULL,
    status procrastinate.procrastinate_job_status DEFAULT 'todo'::procrastinate.procrastinate_job_status NOT NULL,
    scheduled_at timestamp with time zone,
    attempts integer DEFAULT 0 NOT NULL,
    abort_requested boolean DEFAULT false NOT NULL,
    worker_id bigint,
    CONSTRAINT check_not_todo_abort_requested CHECK ((NOT ((status = 'todo'::procrastinate.procrastinate_job_status) AND (abort_requested = true))))
);


--
-- Name: claim_trader_jobs(character varying[], bigint, integer); Type: FUNCTION; Schema: backend; Owner: -
--

CREATE FUNCTION backend.claim_trader_jobs(p_queue_names character varying[], p_worker_id bigint, p_limit integer) RETURNS SETOF procrastinate.procrastinate_jobs
    LANGUAGE sql
    SET search_path TO ''
    SET jit TO 'off'
    AS $$
    with claimed as (
        update procrastinate.procrastinate_jobs as j
        set status = 'doing', worker_id = p_worker_id
        where j.id = any (array(
            select jobs.id
            from procrastinate.procrastinate_jobs as jobs
            where jobs.status = 'todo'
              and (p_queue_names is null or jobs.queue_name = any(p_queue_names))
              and (jobs.scheduled_at is null or jobs.scheduled_at <= now())
              -- See the header: a per-row subplan, one lookup in
              -- procrastinate_jobs_lock_lookup_idx per candidate reached.
              and (jobs.lock is null or not exists (
                  select 1
                  from procrastinate.procrastinate_jobs as other_jobs
                  where other_jobs.lock = jobs.lock
                    and other_jobs.status::text in ('todo', 'doing')
                    and (
                        other_jobs.status = 'doing'
                        or other_jobs.priority > jobs.priority
                        or (other_jobs.priority = jobs.priority and other_jobs.id < jobs.id)
                    )
              ))
            order by jobs.priority desc, jobs.id asc
            limit p_limit
            for update of jobs skip locked
        ))
        returning j.*
    )
    -- Callers get the batch in claim order, as from the first version.
    select * from claimed order by priority desc, id asc
$$;


--
-- Name: FUNCTION claim_trader_jobs(p_queue_names character varying[], p_worker_id bigint, p_limit integer); Type: COMMENT; Schema: backend; Owner: -
--

COMMENT ON FUNCTION backend.claim_trader_jobs(p_queue_names character varying[], p_worker_id bigint, p_limit integer) IS 'Claim up to p_limit todo jobs of the given queues (NULL = all) for worker p_worker_id, in procrastinate''s order and lock rules (one index probe per candidate). Returns the claimed rows (status doing).';


--
-- Name: commit_held_trader_runs(jsonb, text, integer, bigint, bigint[], boolean); Type: FUNCTION; Schema: backend; Owner: -
--

CREATE FUNCTION backend.commit_held_trader_runs(p_runs jsonb, p_worker text, p_disable_after integer, p_worker_id bigint, p_finish_job_ids bigint[], p_delete_jobs boolean DEFAULT false) RETURNS TABLE(job_id bigint, trader_id uuid, run_id bigint, outcome text, signals integer)
    LANGUAGE plpgsql
    SET search_path TO ''
    SET jit TO 'off'
    AS $$
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


--
-- Name: FUNCTION commit_held_trader_runs(p_runs jsonb, p_worker text, p_disable_after integer, p_worker_id bigint, p_finish_job_ids bigint[], p_delete_jobs boolean); Type: COMMENT; Schema: backend; Owner: -
--

COMMENT ON FUNCTION backend.commit_held_trader_runs(p_runs jsonb, p_worker text, p_disable_after integer, p_worker_id bigint, p_finish_job_ids bigint[], p_delete_jobs boolean) IS 'backend.commit_trader_runs limited to the jobs p_worker_id still holds (locked first, in id order); runs of jobs it no longer holds come back as not_held, unwritten.';


--
-- Name: commit_trader_runs(jsonb, text, integer, bigint, bigint[], boolean); Type: FUNCTION; Schema: backend; Owner: -
--

CREATE FUNCTION backend.commit_trader_runs(p_runs jsonb, p_worker text, p_disable_after integer, p_worker_id bigint, p_finish_job_ids bigint[], p_delete_jobs boolean DEFAULT false) RETURNS TABLE(job_id bigint, trader_id uuid, run_id bigint, outcome text, signals integer)
    LANGUAGE plpgsql
    SET search_path TO ''
    SET jit TO 'off'
    AS $$
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


--
-- Name: FUNCTION commit_trader_runs(p_runs jsonb, p_worker text, p_disable_after integer, p_worker_id bigint, p_finish_job_ids bigint[], p_delete_jobs boolean); Type: COMMENT; Schema: backend; Owner: -
--

COMMENT ON FUNCTION backend.commit_trader_runs(p_runs jsonb, p_worker text, p_disable_after integer, p_worker_id bigint, p_finish_job_ids bigint[], p_delete_jobs boolean) IS 'Write runs, edge-triggered signals, match state and trader counters for a batch of evaluated jobs, idempotently per (trader_id, slot), set-based (one statement per table), and finish the jobs still held by p_worker_id. One row per run: committed, duplicate or trader_deleted.';


--
-- Name: enqueue_trader_runs(uuid[], text[], timestamp with time zone[], integer[], timestamp with time zone, boolean); Type: FUNCTION; Schema: backend; Owner: -
--

CREATE FUNCTION backend.enqueue_trader_runs(trader_ids uuid[], intervals text[], slots timestamp with time zone[], priorities integer[], scheduled_at timestamp with time zone DEFAULT NULL::timestamp with time zone, bulk boolean DEFAULT false) RETURNS TABLE(job_id bigint, trader_id uuid, queue_name text, task_name text, args jsonb)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $_$
#variable_conflict use_column
declare
    v_replication_role constant text := current_setting('session_replication_role');
    v_bulk boolean := false;
    -- $1 trader_ids, $2 intervals, $3 slots, $4 priorities, $5 scheduled_at, $6 bulk mode;
    -- %s is the conflict clause.
    v_statement constant text := $statement$
    with slot_text as (
        -- The job's "slot" argument, formatted once per distinct slot, not once per job.
        select s.slot, to_char(s.slot at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"+00:00"') as txt
        from (select distinct u.slot from unnest($3::timestamptz[]) as u(slot)) s
    ),
    inserted as (
        insert into procrastinate.procrastinate_jobs
            (queue_name, task_name, priority, lock, queueing_lock, args, status, scheduled_at)
        select
            backend.trader_queue(r.iv),
            'run_trader',
            r.priority,
            backend.trader_lock(r.trader_id),
            backend.trader_lock(r.trader_id),
            jsonb_build_object('trader_id', r.trader_id, 'slot', st.txt),
            'todo',
            $5::timestamptz
        from unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::integer[])
            as r(trader_id, iv, slot, priority)
        join slot_text st on st.slot = r.slot
        %s
        returning id, procrastinate_jobs.queue_name, procrastinate_jobs.task_name,
                  procrastinate_jobs.args, procrastinate_jobs.scheduled_at
    ),
    scheduled as (
        -- What procrastinate_trigger_scheduled_events_v1 writes, when bypassed.
        insert into procrastinate.procrastinate_events (job_id, type, at)
        select i.id, 'scheduled', i.scheduled_at
        from inserted i
        where $6::boolean and i.scheduled_at is not null
    ),
    woken as materialized (
        -- What procrastinate_notify_queue_job_inserted_v1 sends, once per queue (with its
        -- newest job) instead of once per job: a worker only needs to wake up.
        select count(pg_notify(
            n.channel, json_build_object('type', 'job_inserted', 'job_id', n.job_id)::text
        )) as notified
        from (
            select 'procrastinate_queue_v1#' || i.queue_name as channel, max(i.id) as job_id
            from inserted i
            where $6::boolean
            group by i.queue_name
            union all
            select 'procrastinate_any_queue_v1', max(i.id)
            from inserted i
            where $6::boolean
            having count(*) > 0
        ) n
    )
    select coalesce(array_agg(i.id), '{}'),
           coalesce(array_agg((i.args ->> 'trader_id')::uuid), '{}'),
           coalesce(array_agg(i.queue_name::text), '{}'),
           coalesce(array_agg(i.task_name::text), '{}'),
           coalesce(array_agg(i.args), '{}')
    from inserted i
    cross join woken
    $statement$;
    -- A job already waiting for the trader (queueing_lock) wins: no row for it.
    v_tolerant constant text := 'on conflict (queueing_lock) where status = ''todo'' do nothing';
    v_ids bigint[];
    v_traders uuid[];
    v_queues text[];
    v_tasks text[];
    v_args jsonb[];
    v_done boolean := false;
begin
    if bulk and v_replication_role = 'origin' then
        begin
            perform set_config('session_replication_role', 'replica', true);
            v_bulk := true;
        exception when insufficient_privilege then
            -- A role that may not set it (a managed Postgres without the privilege) keeps
            -- the triggers: same result, slower.
            v_bulk := false;
        end;
    end if;

    if bulk then
        begin
            execute format(v_statement, '')
                into v_ids, v_traders, v_queues, v_tasks, v_args
                using trader_ids, intervals, slots, priorities, scheduled_at, v_bulk;
            v_done := true;
        exception when unique_violation then
            -- A job for one of these traders was enqueued since the caller looked: the
            -- block's writes are gone; the tolerant statement below skips that trader.
            v_done := false;
        end;
    end if;
    if not v_done then
        execute format(v_statement, v_tolerant)
            into v_ids, v_traders, v_queues, v_tasks, v_args
            using trader_ids, intervals, slots, priorities, scheduled_at, v_bulk;
    end if;

    if v_bulk then
        perform set_config('session_replication_role', v_replication_role, true);
    end if;

    return query
    select * from unnest(v_ids, v_traders, v_queues, v_tasks, v_args);
end
$_$;


--
-- Name: FUNCTION enqueue_trader_runs(trader_ids uuid[], intervals text[], slots timestamp with time zone[], priorities integer[], scheduled_at timestamp with time zone, bulk boolean); Type: COMMENT; Schema: backend; Owner: -
--

COMMENT ON FUNCTION backend.enqueue_trader_runs(trader_ids uuid[], intervals text[], slots timestamp with time zone[], priorities integer[], scheduled_at timestamp with time zone, bulk boolean) IS 'Enqueue run_trader jobs: row i runs trader_ids[i] on queue traders.<intervals[i]> for slots[i] at priorities[i] (due at scheduled_at, NULL = now). Skips traders with a job waiting; returns the jobs inserted. bulk => true writes the effects of procrastinate''s INSERT triggers set-based (the scheduler tick).';


--
-- Name: evaluate_health(timestamp with time zone); Type: FUNCTION; Schema: backend; Owner: -
--

CREATE FUNCTION backend.evaluate_health(p_now timestamp with time zone DEFAULT now()) RETURNS TABLE(status text, fallback_active boolean, reasons text[])
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    SET jit TO 'off'
    AS $$
#variable_conflict use_column
declare
    s backend.rollout_settings;
    h public.backend_health;
    v_reasons text[] := '{}';
    v_last_slot timestamptz;
    v_lag double precision;
    v_oldest double precision;
    v_status text;
    v_fallback boolean;
    v_passing_since timestamptz;
begin
    select * into s from backend.rollout_settings;
    select * into h from public.backend_health for update;

    -- A fresh install has no watermark yet: count from when the state row was written.
    select coalesce(st.last_slot, st.updated_at) into v_last_slot from backend.scheduler_state st;
    if v_last_slot < now() - make_interval(secs => s.tick_missing_after_s) then
        v_reasons := v_reasons || format('scheduler_stalled: no tick since %s', v_last_slot);
    end if;

    if exists (select from ops.snapshot_freshness f where f.stale and f.traders > 0) then
        v_reasons := v_reasons || (
            select format('market_data_stale: %s', string_agg(f.interval || ' (' || coalesce(f.stale_reason, 'stale') || ')', ', '))
            from ops.snapshot_freshness f where f.stale and f.traders > 0);
    end if;

    select percentile_cont(0.99) within group (
               order by extract(epoch from r.finished_at - r.slot))
    into v_lag
    from public.trader_runs r
    where r.finished_at > now() - interval '5 minutes';
    select max(q.oldest_waiting_age_s) into v_oldest
    from ops.queue_depth q where q.queue_name like 'traders.%';
    if greatest(coalesce(v_lag, 0), coalesce(v_oldest, 0)) > s.lag_p99_threshold_s then
        v_reasons := v_reasons || format(
            'queue_lag: p99 slot->commit %s s, oldest waiting job %s s (threshold %s s)',
            round(coalesce(v_lag, 0)::numeric, 1), round(coalesce(v_oldest, 0)::numeric, 1),
            s.lag_p99_threshold_s);
    end if;

    if not exists (
        select from procrastinate.procrastinate_workers w
        where w.last_heartbeat > now() - make_interval(secs => s.worker_alive_s)
    ) then
        v_reasons := v_reasons || format('no_live_workers: no worker heartbeat in %s s',
                                         s.worker_alive_s);
    end if;

    if cardinality(v_reasons) > 0 then
        v_status := 'unhealthy';
        v_passing_since := null;
    elsif h.status = 'healthy' then
        v_status := 'healthy';
        v_passing_since := coalesce(h.passing_since, p_now);
    else
        v_passing_since := coalesce(h.passing_since, p_now);
        v_status := case when p_now - v_passing_since >= make_interval(secs => s.hold_s)
                         then 'healthy' else 'recovering' end;
    end if;
    v_fallback := s.fallback_enabled and v_status <> 'healthy';

    update public.backend_health b
    set status = v_status,
        fallback_active = v_fallback,
        reasons = v_reasons,
        since = case when b.status = v_status then b.since else p_now end,
        checked_at = p_now,
        passing_since = v_passing_since
    where b.id;

    if v_status <> h.status then
        insert into backend.rollout_log (at, kind, subject, detail)
        values (p_now, 'health', h.status || ' -> ' || v_status,
                case when cardinality(v_reasons) > 0 then array_to_string(v_reasons, '; ')
                     else format('all checks passing since %s', v_passing_since) end);
    end if;
    if v_fallback <> h.fallback_active then
        perform backend.refresh_trader_modes();
    end if;

    status := v_status; fallback_active := v_fallback; reasons := v_reasons;
    return next;
end
$$;


--
-- Name: FUNCTION evaluate_health(p_now timestamp with time zone); Type: COMMENT; Schema: backend; Owner: -
--

COMMENT ON FUNCTION backend.evaluate_health(p_now timestamp with time zone) IS 'Check scheduler, market data, queue lag and workers; update public.backend_health with hysteresis (hold_s) and demote server traders to browser while unhealthy.';


--
-- Name: lock_user_traders(uuid); Type: FUNCTION; Schema: backend; Owner: -
--

CREATE FUNCTION backend.lock_user_traders(p_user_id uuid) RETURNS void
    LANGUAGE sql
    SET search_path TO ''
    AS $$
    select pg_catalog.pg_advisory_xact_lock(7411, pg_catalog.hashtext(p_user_id::text))
$$;


--
-- Name: FUNCTION lock_user_traders(p_user_id uuid); Type: COMMENT; Schema: backend; Owner: -
--

COMMENT ON FUNCTION backend.lock_user_traders(p_user_id uuid) IS 'Transaction-scoped advisory lock serializing changes to one user''s enabled traders.';


--
-- Name: prune_browser_runs(interval, integer); Type: FUNCTION; Schema: backend; Owner: -
--

CREATE FUNCTION backend.prune_browser_runs(p_age interval, p_batch integer DEFAULT 5000) RETURNS bigint
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
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


--
-- Name: FUNCTION prune_browser_runs(p_age interval, p_batch integer); Type: COMMENT; Schema: backend; Owner: -
--

COMMENT ON FUNCTION backend.prune_browser_runs(p_age interval, p_batch integer) IS 'Retention of browser run reports: delete up to p_batch older than p_age; call until 0.';


--
-- Name: prune_history(interval, interval, interval, integer); Type: FUNCTION; Schema: backend; Owner: -
--

CREATE FUNCTION backend.prune_history(p_jobs_age interval, p_runs_age interval, p_signals_age interval, p_batch integer DEFAULT 5000) RETURNS TABLE(jobs bigint, runs bigint, signals bigint)
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
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


--
-- Name: FUNCTION prune_history(p_jobs_age interval, p_runs_age interval, p_signals_age interval, p_batch integer); Type: COMMENT; Schema: backend; Owner: -
--

COMMENT ON FUNCTION backend.prune_history(p_jobs_age interval, p_runs_age interval, p_signals_age interval, p_batch integer) IS 'Retention: delete up to p_batch finished jobs older than p_jobs_age, signals older than p_signals_age, and runs older than p_runs_age without signals (or older than p_signals_age). Returns the counts; call until they are all 0.';


--
-- Name: recover_stalled_jobs(double precision, integer); Type: FUNCTION; Schema: backend; Owner: -
--

CREATE FUNCTION backend.recover_stalled_jobs(p_stalled_seconds double precision, p_max_attempts integer) RETURNS TABLE(job_id bigint, queue_name text, outcome text)
    LANGUAGE plpgsql
    SET search_path TO ''
    SET lock_timeout TO '200ms'
    AS $$
declare
    v_worker bigint;
begin
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

    for v_worker in
        select w.id
        from procrastinate.procrastinate_workers w
        where w.last_heartbeat < now() - make_interval(secs => p_stalled_seconds)
        order by w.id
        for update of w skip locked
    loop
        begin
            delete from procrastinate.procrastinate_workers w where w.id = v_worker;
        exception when lock_not_available then
            -- A session still locks one of its jobs (a frozen worker mid-commit): the
            -- row goes in a later round, once that session ends.
            null;
        end;
    end loop;
end
$$;


--
-- Name: FUNCTION recover_stalled_jobs(p_stalled_seconds double precision, p_max_attempts integer); Type: COMMENT; Schema: backend; Owner: -
--

COMMENT ON FUNCTION backend.recover_stalled_jobs(p_stalled_seconds double precision, p_max_attempts integer) IS 'Requeue (or fail, after p_max_attempts) every doing job left without a live worker, skipping jobs another session locks, then delete workers without a heartbeat for p_stalled_seconds that can be deleted without waiting. Safe to call concurrently.';


--
-- Name: refresh_trader_modes(uuid[]); Type: FUNCTION; Schema: backend; Owner: -
--

CREATE FUNCTION backend.refresh_trader_modes(p_trader_ids uuid[] DEFAULT NULL::uuid[]) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    SET jit TO 'off'
    AS $$
declare
    v_written integer;
begin
    with settings as (
        select s.default_mode, h.fallback_active and s.fallback_enabled as fallback_active
        from backend.rollout_settings s cross join public.backend_health h
    ),
    configured as (
        select
            t.id, t.user_id,
            case
                when o.mode is not null then o.mode
                when r.tier is null then s.default_mode
                when backend.rollout_bucket(t.user_id) < r.server_percent then 'server'
                when backend.rollout_bucket(t.user_id)
                     < greatest(r.shadow_percent, r.server_percent) then 'shadow'
                else 'browser'
            end as mode,
            case
                when o.mode is not null then 'override'
                when r.tier is null then 'default'
                else 'rule'
            end as source,
            case
                when o.mode is not null then 'per-user override'
                when r.tier is null then 'install default'
                else format('tier %s: %s%% server, %s%% shadow or server; user bucket %s',
                            r.tier, r.server_percent, greatest(r.shadow_percent, r.server_percent),
                            backend.rollout_bucket(t.user_id))
            end as reason,
            s.fallback_active
        from public.traders t
        cross join settings s
        left join backend.rollout_overrides o on o.user_id = t.user_id
        left join public.user_tiers ut on ut.user_id = t.user_id
        left join backend.rollout_rules r on r.tier = coalesce(ut.tier, 'free')
        where p_trader_ids is null or t.id = any(p_trader_ids)
    )
    insert into public.trader_modes as m (
        trader_id, user_id, mode, configured_mode, source, reason
    )
    select
        c.id, c.user_id,
        case when c.mode = 'server' and c.fallback_active then 'browser' else c.mode end,
        c.mode,
        case when c.mode = 'server' and c.fallback_active then 'fallback' else c.source end,
        case when c.mode = 'server' and c.fallback_active
             then 'backend unhealthy: the browser runs this trader until it recovers ('
                  || c.reason || ')'
             else c.reason end
    from configured c
    on conflict (trader_id) do update
        set user_id = excluded.user_id,
            mode = excluded.mode,
            configured_mode = excluded.configured_mode,
            source = excluded.source,
            reason = excluded.reason,
            updated_at = now()
        where (m.user_id, m.mode, m.configured_mode, m.source, m.reason)
              is distinct from
              (excluded.user_id, excluded.mode, excluded.configured_mode, excluded.source,
               excluded.reason);
    get diagnostics v_written = row_count;
    return v_written;
end
$$;


--
-- Name: FUNCTION refresh_trader_modes(p_trader_ids uuid[]); Type: COMMENT; Schema: backend; Owner: -
--

COMMENT ON FUNCTION backend.refresh_trader_modes(p_trader_ids uuid[]) IS 'Recompute effective execution modes (all traders, or the given ones); only changed rows are written, so Realtime streams transitions only.';


--
-- Name: release_trader_jobs(bigint[], bigint, timestamp with time zone, boolean, integer); Type: FUNCTION; Schema: backend; Owner: -
--

CREATE FUNCTION backend.release_trader_jobs(p_job_ids bigint[], p_worker_id bigint, p_retry_at timestamp with time zone, p_count_attempt boolean, p_max_attempts integer) RETURNS TABLE(job_id bigint, outcome text)
    LANGUAGE sql
    SET search_path TO ''
    AS $$
    select j.id, backend.requeue_job(j.id, p_retry_at, p_count_attempt, p_max_attempts)
    from procrastinate.procrastinate_jobs j
    where j.id = any(p_job_ids)
      and j.status = 'doing'
      and j.worker_id is not distinct from p_worker_id
    order by j.id
$$;


--
-- Name: FUNCTION release_trader_jobs(p_job_ids bigint[], p_worker_id bigint, p_retry_at timestamp with time zone, p_count_attempt boolean, p_max_attempts integer); Type: COMMENT; Schema: backend; Owner: -
--

COMMENT ON FUNCTION backend.release_trader_jobs(p_job_ids bigint[], p_worker_id bigint, p_retry_at timestamp with time zone, p_count_attempt boolean, p_max_attempts integer) IS 'Give back doing jobs held by p_worker_id: todo again at p_retry_at, or failed once p_max_attempts is reached (when attempts are counted).';


--
-- Name: requeue_job(bigint, timestamp with time zone, boolean, integer); Type: FUNCTION; Schema: backend; Owner: -
--

CREATE FUNCTION backend.requeue_job(p_job_id bigint, p_retry_at timestamp with time zone, p_count_attempt boolean, p_max_attempts integer) RETURNS text
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
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


--
-- Name: FUNCTION requeue_job(p_job_id bigint, p_retry_at timestamp with time zone, p_count_attempt boolean, p_max_attempts integer); Type: COMMENT; Schema: backend; Owner: -
--

COMMENT ON FUNCTION backend.requeue_job(p_job_id bigint, p_retry_at timestamp with time zone, p_count_attempt boolean, p_max_attempts integer) IS 'Move a doing job back to todo at p_retry_at (counting an attempt or not); with p_count_attempt and attempts reaching p_max_attempts it is marked failed instead. Returns requeued, failed or not_doing.';


--
-- Name: rollout_bucket(uuid); Type: FUNCTION; Schema: backend; Owner: -
--

CREATE FUNCTION backend.rollout_bucket(p_user_id uuid) RETURNS numeric
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path TO ''
    AS $$
    select (('x' || substr(md5(p_user_id::text), 1, 8))::bit(32)::bigint % 10000) / 100.0
$$;


--
-- Name: FUNCTION rollout_bucket(p_user_id uuid); Type: COMMENT; Schema: backend; Owner: -
--

COMMENT ON FUNCTION backend.rollout_bucket(p_user_id uuid) IS 'Stable bucket 0 <= b < 100 of a user: in a rule''s percentage when b < percent.';


--
-- Name: rollout_data_changed(); Type: FUNCTION; Schema: backend; Owner: -
--

CREATE FUNCTION backend.rollout_data_changed() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
    perform backend.refresh_trader_modes();
    return null;
end
$$;


--
-- Name: schedule_due_traders(timestamp with time zone); Type: FUNCTION; Schema: backend; Owner: -
--

CREATE FUNCTION backend.schedule_due_traders(at timestamp with time zone DEFAULT now()) RETURNS TABLE(refresh_interval text, outcome text, trader_count integer)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
#variable_conflict use_column
declare
    v_slot constant timestamptz := date_trunc('minute', at, 'UTC');
    v_hour constant timestamptz := date_trunc('hour', at, 'UTC');
    v_started constant timestamptz := clock_timestamp();
    v_last timestamptz;
    v_window_start timestamptz;
    v_invalid integer;
    v_counts jsonb;
begin
    if at is null then
        raise exception 'schedule_due_traders(at) needs a timestamp, got NULL'
            using errcode = 'null_value_not_allowed',
                  hint = 'Call it without arguments to schedule the current minute.';
    end if;

    -- Lock the watermark: a second tick for the same minute waits here, then sees it.
    select s.last_slot into v_last from backend.scheduler_state s where s.id for update;
    if not found then
        insert into backend.scheduler_state (id) values (true);
    end if;
    if v_last is not null and v_last >= v_slot then
        return;
    end if;
    v_window_start := greatest(
        coalesce(v_last + interval '1 minute', v_slot),
        v_slot - interval '1439 minutes'
    );

    -- The jobs are written by backend.enqueue_trader_runs(..., bulk => true): one call
    -- for every trader enqueued, which bypasses procrastinate's per-row INSERT triggers
    -- and writes their effects set-based (at 00:00 with 100,000 traders the triggers cost
    -- ~3.5 s of a 5 s budget, bench/bench_scheduler.py).
    -- tests/integration/test_scheduler.py pins the list of triggers it stands in for.
    with due as (
        -- Latest slot of each interval at or before v_slot: step back by the minutes
        -- elapsed since the interval's last UTC boundary (epoch minutes mod its length).
        select x.name, x.due_slot
        from (
            select
                i.name,
                v_slot - make_interval(
                    mins => ((extract(epoch from v_slot)::bigint / 60) % i.minutes)::integer
                ) as due_slot
            from backend.schedule_intervals i
        ) x
    ),
    waiting as (
        -- Traders with a job still waiting: served by procrastinate's unique partial index
        -- procrastinate_jobs_queueing_lock_idx_v1 (queueing_lock) WHERE status = 'todo'.
        select j.queueing_lock
        from procrastinate.procrastinate_jobs j
        where j.status = 'todo'
    ),
    candidate as (
        select
            t.id,
            t.user_id,
            t.created_at,
            d.name as iv,
            d.due_slot,
            tr.queue_priority,
            tr.max_executions_per_hour as cap,
            w.queueing_lock is not null as backlog
        from public.traders t
        -- Same rule as backend.schedule_problem(), inlined so the planner can hash-join.
        join due d
            on d.name = coalesce(nullif(t.filter ->> 'refreshInterval', ''), '1m')
            and d.due_slot >= v_window_start
        left join public.user_tiers ut on ut.user_id = t.user_id
        join public.tiers tr on tr.name = coalesce(ut.tier, 'free')
        left join waiting w on w.queueing_lock = backend.trader_lock(t.id)
        -- Only traders the backend runs: shadow or server (docs/rollout.md).
        join public.trader_modes m on m.trader_id = t.id and m.mode <> 'browser'
        where t.enabled
            -- Flagged filters (bad code, timeframes) wait until the user fixes them.
            and t.schedule_problem is null
            -- The browser runs only traders whose code is not blank.
            and (t.filter ->> 'code') ~ '\S'
    ),
    decided as (
        -- Uncapped owners (elite) or a waiting job: no ranking needed.
        select
            c.id, c.user_id, c.iv, c.due_slot, c.queue_priority,
            case when c.backlog then 'skipped_backlog' else 'enqueued' end as outcome
        from candidate c
        where c.cap is null or c.backlog
        union all
        -- Capped owners: their oldest traders get what is left of this hour's budget.
        -- (A separate branch so only these rows are sorted for row_number().)
        select
            c.id, c.user_id, c.iv, c.due_slot, c.queue_priority,
            case
                when row_number() over (partition by c.user_id order by c.created_at, c.id)
                    <= c.cap - coalesce(h.enqueued, 0) then 'enqueued'
                else 'skipped_hourly_cap'
            end
        from candidate c
        left join backend.user_hourly_executions h
            on h.user_id = c.user_id and h.hour = v_hour
        where c.cap is not null and not c.backlog
    ),
    inserted as (
        select e.job_id as id, e.queue_name, e.trader_id
        from (
            select
                array_agg(d.id) as ids,
                array_agg(d.iv) as ivs,
                array_agg(d.due_slot) as slots,
                array_agg(d.queue_priority) as priorities
            from decided d
            where d.outcome = 'enqueued'
        ) a
        -- A job that appeared since `waiting` was read (an immediate first run committed
        -- meanwhile) returns no row here: a backlog skip instead of a failed batch.
        cross join lateral backend.enqueue_trader_runs(
            a.ids, a.ivs, a.slots, a.priorities, scheduled_at => null, bulk => true
        ) e
        where a.ids is not null
    ),
    final as (
        select
            d.user_id,
            d.iv,
            case
                when d.outcome = 'enqueued' and i.trader_id is null then 'skipped_backlog'
                else d.outcome
            end as outcome
        from decided d
        left join inserted i on i.trader_id = d.id and d.outcome = 'enqueued'
    ),
    counted as (
        insert into backend.user_hourly_executions as h
            (user_id, hour, enqueued, skipped_hourly_cap)
        select
            f.user_id,
            v_hour,
            count(*) filter (where f.outcome = 'enqueued'),
            count(*) filter (where f.outcome = 'skipped_hourly_cap')
        from final f
        where f.outcome in ('enqueued', 'skipped_hourly_cap')
        group by f.user_id
        on conflict (user_id, hour) do update
            set enqueued = h.enqueued + excluded.enqueued,
                skipped_hourly_cap = h.skipped_hourly_cap + excluded.skipped_hourly_cap
    )
    select coalesce(jsonb_agg(jsonb_build_object(
            'refresh_interval', g.iv, 'outcome', g.outcome, 'trader_count', g.n)), '[]')
    from (
        select f.iv, f.outcome, count(*)::integer as n
        from final f
        group by f.iv, f.outcome
    ) g
    into v_counts;

    -- Enabled traders the scheduler cannot schedule: counted on every tick so the
    -- problem stays visible (served by traders_schedule_problem_idx).
    select count(*)::integer into v_invalid
    from public.traders t
    where t.schedule_problem is not null and t.enabled and (t.filter ->> 'code') ~ '\S';
    if v_invalid > 0 then
        v_counts := v_counts || jsonb_build_array(jsonb_build_object(
            'refresh_interval', null, 'outcome', 'skipped_invalid_interval',
            'trader_count', v_invalid));
    end if;

    update backend.scheduler_state s
    set last_slot = v_slot, updated_at = now()
    where s.id;

    insert into backend.scheduler_ticks (
        slot, window_start, enqueued, skipped_backlog, skipped_hourly_cap,
        skipped_invalid_interval, by_interval, duration_ms
    )
    select
        v_slot,
        v_window_start,
        coalesce(sum(c.n) filter (where c.o = 'enqueued'), 0),
        coalesce(sum(c.n) filter (where c.o = 'skipped_backlog'), 0),
        coalesce(sum(c.n) filter (where c.o = 'skipped_hourly_cap'), 0),
        v_invalid,
        coalesce(
            (select jsonb_object_agg(x.iv, x.outcomes) from (
                select e ->> 'refresh_interval' as iv,
                       jsonb_object_agg(e ->> 'outcome', (e ->> 'trader_count')::integer) as outcomes
                from jsonb_array_elements(v_counts) e
                where e ->> 'refresh_interval' is not null
                group by 1
            ) x),
            '{}'
        ),
        extract(epoch from clock_timestamp() - v_started) * 1000
    from (
        select e ->> 'outcome' as o, (e ->> 'trader_count')::integer as n
        from jsonb_array_elements(v_counts) e
    ) c;

    -- Keep the bookkeeping compact.
    delete from backend.user_hourly_executions h where h.hour < v_hour - interval '48 hours';
    delete from backend.scheduler_ticks k where k.slot < v_slot - interval '7 days';

    return query
    select r.refresh_interval, r.outcome, r.trader_count
    from jsonb_to_recordset(v_counts) as r(refresh_interval text, outcome text, trader_count integer)
    order by r.refresh_interval nulls last, r.outcome;
end
$$;


--
-- Name: FUNCTION schedule_due_traders(at timestamp with time zone); Type: COMMENT; Schema: backend; Owner: -
--

COMMENT ON FUNCTION backend.schedule_due_traders(at timestamp with time zone) IS 'Scheduler tick: enqueue one procrastinate job per enabled trader due since the last tick (coalesced to its latest slot, at most one day back) and return counts per interval and outcome (enqueued, skipped_backlog, skipped_hourly_cap, skipped_invalid_interval). Idempotent per minute. Called by pg_cron every minute, or by `traderctl tick`.';


--
-- Name: schedule_problem(jsonb); Type: FUNCTION; Schema: backend; Owner: -
--

CREATE FUNCTION backend.schedule_problem(filter jsonb) RETURNS text
    LANGUAGE sql STABLE
    SET search_path TO ''
    AS $$
    select case
        when jsonb_typeof(filter) is distinct from 'object' then format(
            'the filter must be a JSON object such as {"code": "return true;", '
            '"refreshInterval": "5m"}, got %s; save the trader with an object filter '
            '(the trader is not scheduled until fixed)',
            case when jsonb_typeof(filter) = 'null' then 'null'
                 else jsonb_typeof(filter) || ' ' || left(filter::text, 40) end)
        when jsonb_typeof(filter -> 'code') not in ('string', 'null') then format(
            'code must be a string of JavaScript, got %s %s; save the filter''s code as text '
            '(the trader is not scheduled until fixed)',
            jsonb_typeof(filter -> 'code'), left((filter -> 'code')::text, 40))
        when jsonb_typeof(filter -> 'refreshInterval') not in ('string', 'null') then format(
            'refreshInterval must be a string, got %s %s; use one of %s',
            jsonb_typeof(filter -> 'refreshInterval'), left((filter -> 'refreshInterval')::text, 40),
            known.names)
        when not exists (
            select from backend.schedule_intervals i
            where i.name = coalesce(nullif(filter ->> 'refreshInterval', ''), '1m')
        ) then format(
            'unknown refreshInterval %s; use one of %s (the trader is not scheduled until fixed)',
            quote_literal(left(filter ->> 'refreshInterval', 40)), known.names)
        when jsonb_typeof(filter -> 'requiredTimeframes') not in ('array', 'null') then format(
            'requiredTimeframes must be an array of intervals such as ["5m", "1h"], got %s %s; '
            'use intervals from %s, or leave it out to get the refreshInterval''s candles '
            '(the trader is not scheduled until fixed)',
            jsonb_typeof(filter -> 'requiredTimeframes'),
            left((filter -> 'requiredTimeframes')::text, 40), known.names)
        when filter -> 'requiredTimeframes' = '[]'::jsonb then format(
            'requiredTimeframes is empty, so the filter would get no candles and match '
            'nothing; list the intervals it reads, such as ["5m"], from %s, or leave it out '
            'to get the refreshInterval''s candles (the trader is not scheduled until fixed)',
            known.names)
        when bad.element is not null then format(
            'requiredTimeframes contains %s, which is not an interval; use only %s '
            '(the trader is not scheduled until fixed)',
            case jsonb_typeof(bad.element)
                when 'string' then quote_literal(left(bad.element #>> '{}', 40))
                when 'null' then 'null'
                else jsonb_typeof(bad.element) || ' ' || left(bad.element::text, 40)
            end,
            known.names)
    end
    from (
        select string_agg(i.name, ', ' order by i.minutes) as names
        from backend.schedule_intervals i
    ) as known
    left join lateral (
        -- The first element that is not the name of a known interval.
        select e.value as element
        from jsonb_array_elements(
            case when jsonb_typeof(filter) = 'object'
                      and jsonb_typeof(filter -> 'requiredTimeframes') = 'array'
                 then filter -> 'requiredTimeframes' else '[]'::jsonb end
        ) with ordinality as e(value, n)
        where jsonb_typeof(e.value) <> 'string'
            or not exists (
                select from backend.schedule_intervals i where i.name = e.value #>> '{}'
            )
        order by e.n
        limit 1
    ) as bad on true
$$;


--
-- Name: FUNCTION schedule_problem(filter jsonb); Type: COMMENT; Schema: backend; Owner: -
--

COMMENT ON FUNCTION backend.schedule_problem(filter jsonb) IS 'Why a trader with this filter cannot be scheduled (not an object, code not a string, unknown refreshInterval, bad requiredTimeframes), or NULL.';


--
-- Name: trader_context(uuid); Type: FUNCTION; Schema: backend; Owner: -
--

CREATE FUNCTION backend.trader_context(p_trader_id uuid) RETURNS TABLE(trader_id uuid, user_id uuid, name text, enabled boolean, filter jsonb, refresh_interval text, schedule_problem text, disabled_reason text, tier text, queue_priority integer, max_symbols integer, max_executions_per_hour integer, max_enabled_traders integer)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
    select
        t.id,
        t.user_id,
        t.name,
        t.enabled,
        t.filter,
        coalesce(nullif(t.filter ->> 'refreshInterval', ''), '1m'),
        t.schedule_problem,
        t.disabled_reason,
        tr.name,
        tr.queue_priority,
        tr.max_symbols,
        tr.max_executions_per_hour,
        tr.max_enabled_traders
    from public.traders t
    left join public.user_tiers ut on ut.user_id = t.user_id
    join public.tiers tr on tr.name = coalesce(ut.tier, 'free')
    where t.id = p_trader_id
$$;


--
-- Name: FUNCTION trader_context(p_trader_id uuid); Type: COMMENT; Schema: backend; Owner: -
--

COMMENT ON FUNCTION backend.trader_context(p_trader_id uuid) IS 'One row for the trader (none if it was deleted): scheduling fields plus the owner''s tier limits; max_symbols NULL = unlimited. Called by the worker before each run.';


--
-- Name: trader_job_slot(jsonb); Type: FUNCTION; Schema: backend; Owner: -
--

CREATE FUNCTION backend.trader_job_slot(args jsonb) RETURNS timestamp with time zone
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN ((args ->> 'slot'::text) ~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$'::text) THEN (('0001-01-01 00:00:00'::timestamp without time zone + make_interval(years => ((substr((args ->> 'slot'::text), 1, 4))::integer - 1), months => ((substr((args ->> 'slot'::text), 6, 2))::integer - 1), days => ((substr((args ->> 'slot'::text), 9, 2))::integer - 1), hours => (substr((args ->> 'slot'::text), 12, 2))::integer, mins => (substr((args ->> 'slot'::text), 15, 2))::integer, secs => ((substr((args ->> 'slot'::text), 18, 2))::integer)::double precision)) AT TIME ZONE 'UTC'::text) ELSE NULL::timestamp with time zone END;


--
-- Name: FUNCTION trader_job_slot(args jsonb); Type: COMMENT; Schema: backend; Owner: -
--

COMMENT ON FUNCTION backend.trader_job_slot(args jsonb) IS 'The slot of a run_trader job''s args (enqueue format), NULL if absent or malformed.';


--
-- Name: trader_lock(uuid); Type: FUNCTION; Schema: backend; Owner: -
--

CREATE FUNCTION backend.trader_lock(trader_id uuid) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN ('trader:'::text || (trader_id)::text);


--
-- Name: FUNCTION trader_lock(trader_id uuid); Type: COMMENT; Schema: backend; Owner: -
--

COMMENT ON FUNCTION backend.trader_lock(trader_id uuid) IS 'Lock and queueing lock of a trader''s jobs: ''trader:<uuid>''.';


--
-- Name: trader_queue(text); Type: FUNCTION; Schema: backend; Owner: -
--

CREATE FUNCTION backend.trader_queue(refresh_interval text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN ('traders.'::text || refresh_interval);


--
-- Name: FUNCTION trader_queue(refresh_interval text); Type: COMMENT; Schema: backend; Owner: -
--

COMMENT ON FUNCTION backend.trader_queue(refresh_interval text) IS 'Queue of the jobs of traders with this refresh interval: ''traders.<interval>''.';


--
-- Name: traders_assign_mode(); Type: FUNCTION; Schema: backend; Owner: -
--

CREATE FUNCTION backend.traders_assign_mode() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
    perform backend.refresh_trader_modes(array(select n.id from new_rows n));
    return null;
end
$$;


--
-- Name: traders_before_update(); Type: FUNCTION; Schema: backend; Owner: -
--

CREATE FUNCTION backend.traders_before_update() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
begin
    new.updated_at := now();
    if new.enabled and not old.enabled then
        new.disabled_reason := null;
    end if;
    return new;
end
$$;


--
-- Name: traders_create_stats(); Type: FUNCTION; Schema: backend; Owner: -
--

CREATE FUNCTION backend.traders_create_stats() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
    insert into public.trader_stats (trader_id, user_id)
    select n.id, n.user_id from new_traders n;
    return null;
end
$$;


--
-- Name: FUNCTION traders_create_stats(); Type: COMMENT; Schema: backend; Owner: -
--

COMMENT ON FUNCTION backend.traders_create_stats() IS 'Statement trigger of public.traders: one public.trader_stats row per new trader.';


--
-- Name: traders_enforce_tier_limit(); Type: FUNCTION; Schema: backend; Owner: -
--

CREATE FUNCTION backend.traders_enforce_tier_limit() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
    v_tier text;
    v_max integer;
    v_enabled integer;
begin
    -- Only a trader becoming enabled (or moving to another user while enabled) counts.
    if not new.enabled
        or (tg_op = 'UPDATE' and old.enabled and old.user_id = new.user_id) then
        return new;
    end if;

    select tr.name, tr.max_enabled_traders into v_tier, v_max
    from public.tiers tr
    where tr.name = coalesce(
        (select ut.tier from public.user_tiers ut where ut.user_id = new.user_id), 'free');
    if v_max is null then
        return new;  -- unlimited (elite): no lock, no count, so bulk loads stay fast
    end if;

    perform backend.lock_user_traders(new.user_id);
    -- Rows written earlier in the same statement are visible here (row-level BEFORE
    -- trigger), so a multi-row INSERT is counted row by row too.
    select count(*)::integer into v_enabled
    from public.traders t
    where t.user_id = new.user_id and t.enabled and t.id <> new.id;

    if v_enabled >= v_max then
        raise exception '% tier allows % enabled trader%; % % enabled',
                v_tier, v_max, case when v_max = 1 then '' else 's' end,
                v_enabled, case when v_enabled = 1 then 'is' else 'are' end
            using errcode = 'check_violation',
                  detail = format('User %s is on the %s tier (max_enabled_traders = %s); '
                                  'trader %s was not enabled.',
                                  new.user_id, v_tier, v_max, new.id),
                  hint = 'Disable another trader first, or upgrade the tier.';
    end if;
    return new;
end
$$;


--
-- Name: FUNCTION traders_enforce_tier_limit(); Type: COMMENT; Schema: backend; Owner: -
--

COMMENT ON FUNCTION backend.traders_enforce_tier_limit() IS 'BEFORE INSERT/UPDATE OF enabled, user_id on public.traders: refuses to exceed the owner''s tiers.max_enabled_traders (SQLSTATE 23514, with DETAIL and HINT).';


--
-- Name: traders_enqueue_first_run(); Type: FUNCTION; Schema: backend; Owner: -
--

CREATE FUNCTION backend.traders_enqueue_first_run() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
    v_slot timestamptz := date_trunc('minute', now(), 'UTC');
    v_scheduled_at timestamptz := null;
    v_hour constant timestamptz := date_trunc('hour', now(), 'UTC');
    v_lock constant text := backend.trader_lock(new.id);
    v_cap integer;
    v_reserved boolean := false;
    v_job_id bigint;
begin
    if coalesce(current_setting('traderctl.skip_first_run', true), '') = 'on' then
        return null;
    end if;
    if not new.enabled
        or new.schedule_problem is not null
        or not coalesce((new.filter ->> 'code') ~ '\S', false) then
        return null;
    end if;
    -- Updates: only enabling, or a change of the code itself, triggers a run.
    if tg_op = 'UPDATE' and old.enabled
        and (old.filter ->> 'code') is not distinct from (new.filter ->> 'code') then
        return null;
    end if;

    -- Only traders the backend runs (shadow or server). A new trader's mode row is
    -- written here: row triggers fire before traders_assign_mode (per statement).
    if tg_op = 'INSERT' then
        perform backend.refresh_trader_modes(array[new.id]);
    end if;
    if not exists (
        select from public.trader_modes m where m.trader_id = new.id and m.mode <> 'browser'
    ) then
        return null;
    end if;

    -- Backlog: a waiting job will run the current code anyway.
    if exists (
        select from procrastinate.procrastinate_jobs j
        where j.queueing_lock = v_lock and j.status = 'todo'
    ) then
        return null;
    end if;

    -- This minute's run already happened, or is running now with the old code: (trader,
    -- slot) is unique, so a job for this minute would commit nothing. Run at the next
    -- minute instead, so the new code shows its results within a minute.
    if exists (
        select from public.trader_runs r where r.trader_id = new.id and r.slot = v_slot
    ) or exists (
        select from procrastinate.procrastinate_jobs j
        where j.lock = v_lock and j.status = 'doing'
    ) then
        v_slot := v_slot + interval '1 minute';
        v_scheduled_at := v_slot;
    end if;

    select tr.max_executions_per_hour into v_cap
    from public.tiers tr
    where tr.name = coalesce(
        (select ut.tier from public.user_tiers ut where ut.user_id = new.user_id), 'free');

    if v_cap is not null then
        -- Reserve one execution of this hour's budget atomically: the conditional upsert
        -- increments only while under the cap (row locks serialize concurrent callers).
        if v_cap > 0 then
            insert into backend.user_hourly_executions as h (user_id, hour, enqueued)
            values (new.user_id, v_hour, 1)
            on conflict (user_id, hour) do update
                set enqueued = h.enqueued + 1
                where h.enqueued < v_cap
            returning true into v_reserved;
        end if;
        if not coalesce(v_reserved, false) then
            insert into backend.user_hourly_executions as h (user_id, hour, skipped_hourly_cap)
            values (new.user_id, v_hour, 1)
            on conflict (user_id, hour) do update
                set skipped_hourly_cap = h.skipped_hourly_cap + 1;
            return null;
        end if;
    end if;

    select e.job_id into v_job_id
    from backend.enqueue_trader_runs(
        array[new.id],
        array[coalesce(nullif(new.filter ->> 'refreshInterval', ''), '1m')],
        array[v_slot],
        array[100],
        scheduled_at => v_scheduled_at
    ) e;

    if v_job_id is null then
        -- A job appeared concurrently (the tick): give the reservation back.
        if v_reserved then
            update backend.user_hourly_executions h
            set enqueued = h.enqueued - 1
            where h.user_id = new.user_id and h.hour = v_hour;
        end if;
    elsif v_cap is null then
        insert into backend.user_hourly_executions as h (user_id, hour, enqueued)
        values (new.user_id, v_hour, 1)
        on conflict (user_id, hour) do update set enqueued = h.enqueued + 1;
    end if;
    return null;
end
$$;


--
-- Name: FUNCTION traders_enqueue_first_run(); Type: COMMENT; Schema: backend; Owner: -
--

COMMENT ON FUNCTION backend.traders_enqueue_first_run() IS 'AFTER INSERT/UPDATE OF enabled, filter on public.traders: enqueues a priority-100 run for the current minute (the next one if this minute already has a run) when a trader is created enabled, enabled, or its code changes (skipped when a job is waiting or the hourly cap is reached).';


--
-- Name: traders_reset_streak(); Type: FUNCTION; Schema: backend; Owner: -
--

CREATE FUNCTION backend.traders_reset_streak() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
    update public.trader_stats s
    set consecutive_errors = 0
    where s.trader_id = new.id and s.consecutive_errors <> 0;
    return null;
end
$$;


--
-- Name: FUNCTION traders_reset_streak(); Type: COMMENT; Schema: backend; Owner: -
--

COMMENT ON FUNCTION backend.traders_reset_streak() IS 'Row trigger of public.traders: enabling a trader resets its error streak.';


--
-- Name: traders_set_schedule_problem(); Type: FUNCTION; Schema: backend; Owner: -
--

CREATE FUNCTION backend.traders_set_schedule_problem() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
    new.schedule_problem := backend.schedule_problem(new.filter);
    return new;
end
$$;


--
-- Name: FUNCTION traders_set_schedule_problem(); Type: COMMENT; Schema: backend; Owner: -
--

COMMENT ON FUNCTION backend.traders_set_schedule_problem() IS 'BEFORE INSERT/UPDATE OF filter on public.traders: sets schedule_problem from the filter.';


--
-- Name: user_tiers_apply_downgrade(); Type: FUNCTION; Schema: backend; Owner: -
--

CREATE FUNCTION backend.user_tiers_apply_downgrade() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
    -- Deleting the row puts the user on free, unless the user itself is being deleted:
    -- the cascade from auth.users removes the traders, so leave them alone.
    if tg_op = 'DELETE' and not exists (select from auth.users u where u.id = old.user_id) then
        return null;
    end if;
    perform backend.apply_tier_to_traders(
        case when tg_op = 'DELETE' then old.user_id else new.user_id end);
    return null;
end
$$;


--
-- Name: FUNCTION user_tiers_apply_downgrade(); Type: COMMENT; Schema: backend; Owner: -
--

COMMENT ON FUNCTION backend.user_tiers_apply_downgrade() IS 'AFTER INSERT/UPDATE OF tier/DELETE on public.user_tiers: applies the new tier''s max_enabled_traders (see backend.apply_tier_to_traders).';


--
-- Name: user_tiers_refresh_modes(); Type: FUNCTION; Schema: backend; Owner: -
--

CREATE FUNCTION backend.user_tiers_refresh_modes() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
    perform backend.refresh_trader_modes(array(
        select t.id from public.traders t
        where t.user_id in (select n.user_id from new_rows n)
    ));
    return null;
end
$$;


--
-- Name: cron_job_health_rows(); Type: FUNCTION; Schema: ops; Owner: -
--

CREATE FUNCTION ops.cron_job_health_rows() RETURNS TABLE(jobid bigint, jobname text, schedule text, command text, active boolean, period_minutes integer, last_start timestamp with time zone, last_end timestamp with time zone, last_status text, last_message text, last_success timestamp with time zone, runs_1h bigint, failures_15m bigint, failures_1h bigint, missing boolean)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $_$
begin
    if to_regclass('cron.job_run_details') is null or to_regclass('cron.job') is null then
        return;
    end if;
    return query execute $sql$
        with jobs as (
            select
                j.jobid,
                j.jobname,
                j.schedule,
                j.command,
                j.active,
                case
                    when j.schedule ~ '^\s*\*\s+\*\s+\*\s+\*\s+\*\s*$' then 1
                    when j.schedule ~ '^\s*\*/[0-9]+\s+\*\s+\*\s+\*\s+\*\s*$'
                        then nullif(substring(j.schedule from '\*/([0-9]+)')::integer, 0)
                end as period_minutes
            from cron.job j
            where j.database = current_database()
        ),
        recent as (
            select
                d.jobid,
                count(*) filter (where d.start_time > now() - interval '1 hour') as runs_1h,
                count(*) filter (where d.status = 'failed'
                                 and d.start_time > now() - interval '15 minutes')
                    as failures_15m,
                count(*) filter (where d.status = 'failed'
                                 and d.start_time > now() - interval '1 hour') as failures_1h,
                max(d.end_time) filter (where d.status = 'succeeded') as last_success
            from cron.job_run_details d
            where d.jobid in (select jobid from jobs)
              and d.start_time > now() - interval '1 day'
            group by d.jobid
        )
        select
            j.jobid,
            j.jobname::text,
            j.schedule::text,
            j.command::text,
            j.active,
            j.period_minutes,
            l.start_time,
            l.end_time,
            l.status::text,
            left(l.return_message, 500),
            r.last_success,
            coalesce(r.runs_1h, 0)::bigint,
            coalesce(r.failures_15m, 0)::bigint,
            coalesce(r.failures_1h, 0)::bigint,
            j.active and j.period_minutes is not null
                and coalesce(l.start_time, pg_catalog.pg_postmaster_start_time())
                    < now() - make_interval(mins => j.period_minutes) - interval '90 seconds'
        from jobs j
        left join recent r on r.jobid = j.jobid
        left join lateral (
            select d.start_time, d.end_time, d.status, d.return_message
            from cron.job_run_details d
            where d.jobid = j.jobid
            order by d.start_time desc nulls last, d.runid desc
            limit 1
        ) l on true
        order by j.jobid
    $sql$;
end
$_$;


--
-- Name: FUNCTION cron_job_health_rows(); Type: COMMENT; Schema: ops; Owner: -
--

COMMENT ON FUNCTION ops.cron_job_health_rows() IS 'Rows of ops.cron_job_health; empty where pg_cron is not installed (checked at run time).';


--
-- Name: procrastinate_cancel_job_v1(bigint, boolean, boolean); Type: FUNCTION; Schema: procrastinate; Owner: -
--

CREATE FUNCTION procrastinate.procrastinate_cancel_job_v1(job_id bigint, abort boolean, delete_job boolean) RETURNS bigint
    LANGUAGE plpgsql
    SET search_path TO 'procrastinate', 'pg_catalog'
    AS $$
DECLARE
    _job_id bigint;
BEGIN
    IF delete_job THEN
        DELETE FROM procrastinate_jobs
        WHERE id = job_id AND status = 'todo'
        RETURNING id INTO _job_id;
    END IF;
    IF _job_id IS NULL THEN
        IF abort THEN
            UPDATE procrastinate_jobs
            SET abort_requested = true,
                status = CASE status
                    WHEN 'todo' THEN 'cancelled'::procrastinate_job_status ELSE status
                END
            WHERE id = job_id AND status IN ('todo', 'doing')
            RETURNING id INTO _job_id;
        ELSE
            UPDATE procrastinate_jobs
            SET status = 'cancelled'::procrastinate_job_status
            WHERE id = job_id AND status = 'todo'
            RETURNING id INTO _job_id;
        END IF;
    END IF;
    RETURN _job_id;
END;
$$;


--
-- Name: procrastinate_defer_jobs_v1(procrastinate.procrastinate_job_to_defer_v1[]); Type: FUNCTION; Schema: procrastinate; Owner: -
--

CREATE FUNCTION procrastinate.procrastinate_defer_jobs_v1(jobs procrastinate.procrastinate_job_to_defer_v1[]) RETURNS bigint[]
    LANGUAGE plpgsql
    SET search_path TO 'procrastinate', 'pg_catalog'
    AS $$
DECLARE
    job_ids bigint[];
BEGIN
    WITH inserted_jobs AS (
        INSERT INTO procrastinate_jobs (queue_name, task_name, priority, lock, queueing_lock, args, scheduled_at)
        SELECT (job).queue_name,
               (job).task_name,
               (job).priority,
               (job).lock,
               (job).queueing_lock,
               (job).args,
               (job).scheduled_at
        FROM unnest(jobs) AS job
        RETURNING id
    )
    SELECT array_agg(id) FROM inserted_jobs INTO job_ids;

    RETURN job_ids;
END;
$$;


--
-- Name: procrastinate_defer_periodic_job_v2(character varying, character varying, character varying, character varying, integer, character varying, bigint, jsonb); Type: FUNCTION; Schema: procrastinate; Owner: -
--

CREATE FUNCTION procrastinate.procrastinate_defer_periodic_job_v2(_queue_name character varying, _lock character varying, _queueing_lock character varying, _task_name character varying, _priority integer, _periodic_id character varying, _defer_timestamp bigint, _args jsonb) RETURNS bigint
    LANGUAGE plpgsql
    SET search_path TO 'procrastinate', 'pg_catalog'
    AS $$
DECLARE
	_job_id bigint;
	_defer_id bigint;
BEGIN
    INSERT
        INTO procrastinate_periodic_defers (task_name, periodic_id, defer_timestamp)
        VALUES (_task_name, _periodic_id, _defer_timestamp)
        ON CONFLICT DO NOTHING
        RETURNING id into _defer_id;

    IF _defer_id IS NULL THEN
        RETURN NULL;
    END IF;

    UPDATE procrastinate_periodic_defers
        SET job_id = (
            SELECT COALESCE((
                SELECT unnest(procrastinate_defer_jobs_v1(
                    ARRAY[
                        ROW(
                            _queue_name,
                            _task_name,
                            _priority,
                            _lock,
                            _queueing_lock,
                            _args,
                            NULL::timestamptz
                        )
                    ]::procrastinate_job_to_defer_v1[]
                ))
            ), NULL)
        )
        WHERE id = _defer_id
        RETURNING job_id INTO _job_id;

    DELETE
        FROM procrastinate_periodic_defers
        USING (
            SELECT id
            FROM procrastinate_periodic_defers
            WHERE procrastinate_periodic_defers.task_name = _task_name
            AND procrastinate_periodic_defers.periodic_id = _periodic_id
            AND procrastinate_periodic_defers.defer_timestamp < _defer_timestamp
            ORDER BY id
            FOR UPDATE
        ) to_delete
        WHERE procrastinate_periodic_defers.id = to_delete.id;

    RETURN _job_id;
END;
$$;


--
-- Name: procrastinate_fetch_job_v2(character varying[], bigint); Type: FUNCTION; Schema: procrastinate; Owner: -
--

CREATE FUNCTION procrastinate.procrastinate_fetch_job_v2(target_queue_names character varying[], p_worker_id bigint) RETURNS procrastinate.procrastinate_jobs
    LANGUAGE plpgsql
    SET search_path TO 'procrastinate', 'pg_catalog'
    SET plan_cache_mode TO 'force_custom_plan'
    AS $$
DECLARE
	found_jobs procrastinate_jobs;
BEGIN
    WITH candidate AS (
        SELECT jobs.*
            FROM procrastinate_jobs AS jobs
            WHERE
                -- reject the job if its lock has earlier or higher priority jobs
                NOT EXISTS (
                    SELECT 1
                        FROM procrastinate_jobs AS other_jobs
                        WHERE
                            jobs.lock IS NOT NULL
                            AND other_jobs.lock = jobs.lock
                            AND (
                                -- job with same lock is already running
                                other_jobs.status = 'doing'
                                OR
                                -- job with same lock is waiting and has higher priority (or same priority but was queued first)
                                (
                                    other_jobs.status = 'todo'
                                    AND (
                                        other_jobs.priority > jobs.priority
                                        OR (
                                        other_jobs.priority = jobs.priority
                                        AND other_jobs.id < jobs.id
                                        )
                                    )
                                )
                            )
                )
                AND jobs.status = 'todo'
                AND (target_queue_names IS NULL OR jobs.queue_name = ANY( target_queue_names ))
                AND (jobs.scheduled_at IS NULL OR jobs.scheduled_at <= now())
            ORDER BY jobs.priority DESC, jobs.id ASC LIMIT 1
            FOR UPDATE OF jobs SKIP LOCKED
    )
    UPDATE procrastinate_jobs
        SET status = 'doing', worker_id = p_worker_id
        FROM candidate
        WHERE procrastinate_jobs.id = candidate.id
        RETURNING procrastinate_jobs.* INTO found_jobs;

 RETURN found_jobs;
END;
$$;


--
-- Name: procrastinate_finish_job_v1(bigint, procrastinate.procrastinate_job_status, boolean); Type: FUNCTION; Schema: procrastinate; Owner: -
--

CREATE FUNCTION procrastinate.procrastinate_finish_job_v1(job_id bigint, end_status procrastinate.procrastinate_job_status, delete_job boolean) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'procrastinate', 'pg_catalog'
    AS $$
DECLARE
    _job_id bigint;
BEGIN
    IF end_status NOT IN ('succeeded', 'failed', 'aborted') THEN
        RAISE 'End status should be either "succeeded", "failed" or "aborted" (job id: %)', job_id;
    END IF;
    IF delete_job THEN
        DELETE FROM procrastinate_jobs
        WHERE id = job_id AND status IN ('todo', 'doing')
        RETURNING id INTO _job_id;
    ELSE
        UPDATE procrastinate_jobs
        SET status = end_status,
            abort_requested = false,
            attempts = CASE status
                WHEN 'doing' THEN attempts + 1 ELSE attempts
            END
        WHERE id = job_id AND status IN ('todo', 'doing')
        RETURNING id INTO _job_id;
    END IF;
    IF _job_id IS NULL THEN
        RAISE 'Job was not found or not in "doing" or "todo" status (job id: %)', job_id;
    END IF;
END;
$$;


--
-- Name: procrastinate_notify_queue_abort_job_v1(); Type: FUNCTION; Schema: procrastinate; Owner: -
--

CREATE FUNCTION procrastinate.procrastinate_notify_queue_abort_job_v1() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'procrastinate', 'pg_catalog'
    AS $$
DECLARE
    payload TEXT;
BEGIN
    SELECT json_build_object('type', 'abort_job_requested', 'job_id', NEW.id)::text INTO payload;
	PERFORM pg_notify('procrastinate_queue_v1#' || NEW.queue_name, payload);
	PERFORM pg_notify('procrastinate_any_queue_v1', payload);
	RETURN NEW;
END;
$$;


--
-- Name: procrastinate_notify_queue_job_inserted_v1(); Type: FUNCTION; Schema: procrastinate; Owner: -
--

CREATE FUNCTION procrastinate.procrastinate_notify_queue_job_inserted_v1() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'procrastinate', 'pg_catalog'
    AS $$
DECLARE
    payload TEXT;
BEGIN
    SELECT json_build_object('type', 'job_inserted', 'job_id', NEW.id)::text INTO payload;
	PERFORM pg_notify('procrastinate_queue_v1#' || NEW.queue_name, payload);
	PERFORM pg_notify('procrastinate_any_queue_v1', payload);
	RETURN NEW;
END;
$$;


--
-- Name: procrastinate_prune_stalled_workers_v1(double precision); Type: FUNCTION; Schema: procrastinate; Owner: -
--

CREATE FUNCTION procrastinate.procrastinate_prune_stalled_workers_v1(seconds_since_heartbeat double precision) RETURNS TABLE(worker_id bigint)
    LANGUAGE plpgsql
    SET search_path TO 'procrastinate', 'pg_catalog'
    AS $$
BEGIN
    RETURN QUERY
    DELETE FROM procrastinate_workers
    WHERE last_heartbeat < NOW() - (seconds_since_heartbeat || 'SECOND')::INTERVAL
    RETURNING procrastinate_workers.id;
END;
$$;


--
-- Name: procrastinate_register_worker_v1(); Type: FUNCTION; Schema: procrastinate; Owner: -
--

CREATE FUNCTION procrastinate.procrastinate_register_worker_v1() RETURNS TABLE(worker_id bigint)
    LANGUAGE plpgsql
    SET search_path TO 'procrastinate', 'pg_catalog'
    AS $$
BEGIN
    RETURN QUERY
    INSERT INTO procrastinate_workers DEFAULT VALUES
    RETURNING procrastinate_workers.id;
END;
$$;


--
-- Name: procrastinate_retry_job_v1(bigint, timestamp with time zone, integer, character varying, character varying); Type: FUNCTION; Schema: procrastinate; Owner: -
--

CREATE FUNCTION procrastinate.procrastinate_retry_job_v1(job_id bigint, retry_at timestamp with time zone, new_priority integer, new_queue_name character varying, new_lock character varying) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'procrastinate', 'pg_catalog'
    AS $$
DECLARE
    _job_id bigint;
    _abort_requested boolean;
BEGIN
    SELECT abort_requested FROM procrastinate_jobs
    WHERE id = job_id AND status = 'doing'
    FOR UPDATE
    INTO _abort_requested;
    IF _abort_requested THEN
        UPDATE procrastinate_jobs
        SET status = 'failed'::procrastinate_job_status
        WHERE id = job_id AND status = 'doing'
        RETURNING id INTO _job_id;
    ELSE
        UPDATE procrastinate_jobs
        SET status = 'todo'::procrastinate_job_status,
            attempts = attempts + 1,
            scheduled_at = retry_at,
            priority = COALESCE(new_priority, priority),
            queue_name = COALESCE(new_queue_name, queue_name),
            lock = COALESCE(new_lock, lock)
        WHERE id = job_id AND status = 'doing'
        RETURNING id INTO _job_id;
    END IF;

    IF _job_id IS NULL THEN
        RAISE 'Job was not found or not in "doing" status (job id: %)', job_id;
    END IF;
END;
$$;


--
-- Name: procrastinate_retry_job_v2(bigint, timestamp with time zone, integer, character varying, character varying); Type: FUNCTION; Schema: procrastinate; Owner: -
--

CREATE FUNCTION procrastinate.procrastinate_retry_job_v2(job_id bigint, retry_at timestamp with time zone, new_priority integer, new_queue_name character varying, new_lock character varying) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'procrastinate', 'pg_catalog'
    AS $$
DECLARE
    _job_id bigint;
    _abort_requested boolean;
    _current_status procrastinate_job_status;
BEGIN
    SELECT status, abort_requested FROM procrastinate_jobs
    WHERE id = job_id AND status IN ('doing', 'failed')
    FOR UPDATE
    INTO _current_status, _abort_requested;
    IF _current_status = 'doing' AND _abort_requested THEN
        UPDATE procrastinate_jobs
        SET status = 'failed'::procrastinate_job_status
        WHERE id = job_id AND status = 'doing'
        RETURNING id INTO _job_id;
    ELSE
        UPDATE procrastinate_jobs
        SET status = 'todo'::procrastinate_job_status,
            attempts = attempts + 1,
            scheduled_at = retry_at,
            priority = COALESCE(new_priority, priority),
            queue_name = COALESCE(new_queue_name, queue_name),
            lock = COALESCE(new_lock, lock)
        WHERE id = job_id AND status IN ('doing', 'failed')
        RETURNING id INTO _job_id;
    END IF;

    IF _job_id IS NULL THEN
        RAISE 'Job was not found or has an invalid status to retry (job id: %)', job_id;
    END IF;

END;
$$;


--
-- Name: procrastinate_trigger_abort_requested_events_procedure_v1(); Type: FUNCTION; Schema: procrastinate; Owner: -
--

CREATE FUNCTION procrastinate.procrastinate_trigger_abort_requested_events_procedure_v1() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'procrastinate', 'pg_catalog'
    AS $$
BEGIN
    INSERT INTO procrastinate_events(job_id, type)
        VALUES (NEW.id, 'abort_requested'::procrastinate_job_event_type);
    RETURN NEW;
END;
$$;


--
-- Name: procrastinate_trigger_function_scheduled_events_v1(); Type: FUNCTION; Schema: procrastinate; Owner: -
--

CREATE FUNCTION procrastinate.procrastinate_trigger_function_scheduled_events_v1() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'procrastinate', 'pg_catalog'
    AS $$
BEGIN
    INSERT INTO procrastinate_events(job_id, type, at)
        VALUES (NEW.id, 'scheduled'::procrastinate_job_event_type, NEW.scheduled_at);

	RETURN NEW;
END;
$$;


--
-- Name: procrastinate_trigger_function_status_events_insert_v1(); Type: FUNCTION; Schema: procrastinate; Owner: -
--

CREATE FUNCTION procrastinate.procrastinate_trigger_function_status_events_insert_v1() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'procrastinate', 'pg_catalog'
    AS $$
BEGIN
    INSERT INTO procrastinate_events(job_id, type)
        VALUES (NEW.id, 'deferred'::procrastinate_job_event_type);
	RETURN NEW;
END;
$$;


--
-- Name: procrastinate_trigger_function_status_events_update_v1(); Type: FUNCTION; Schema: procrastinate; Owner: -
--

CREATE FUNCTION procrastinate.procrastinate_trigger_function_status_events_update_v1() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'procrastinate', 'pg_catalog'
    AS $$
BEGIN
    WITH t AS (
        SELECT CASE
            WHEN OLD.status = 'todo'::procrastinate_job_status
                AND NEW.status = 'doing'::procrastinate_job_status
                THEN 'started'::procrastinate_job_event_type
            WHEN OLD.status = 'doing'::procrastinate_job_status
                AND NEW.status = 'todo'::procrastinate_job_status
                THEN 'deferred_for_retry'::procrastinate_job_event_type
            WHEN OLD.status = 'doing'::procrastinate_job_status
                AND NEW.status = 'failed'::procrastinate_job_status
                THEN 'failed'::procrastinate_job_event_type
            WHEN OLD.status = 'doing'::procrastinate_job_status
                AND NEW.status = 'succeeded'::procrastinate_job_status
                THEN 'succeeded'::procrastinate_job_event_type
            WHEN OLD.status = 'todo'::procrastinate_job_status
                AND (
                    NEW.status = 'cancelled'::procrastinate_job_status
                    OR NEW.status = 'failed'::procrastinate_job_status
                    OR NEW.status = 'succeeded'::procrastinate_job_status
                )
                THEN 'cancelled'::procrastinate_job_event_type
            WHEN OLD.status = 'doing'::procrastinate_job_status
                AND NEW.status = 'aborted'::procrastinate_job_status
                THEN 'aborted'::procrastinate_job_event_type
            WHEN OLD.status = 'failed'::procrastinate_job_status
                AND NEW.status = 'todo'::procrastinate_job_status
                THEN 'retried'::procrastinate_job_event_type
            ELSE NULL
        END as event_type
    )
    INSERT INTO procrastinate_events(job_id, type)
        SELECT NEW.id, t.event_type
        FROM t
        WHERE t.event_type IS NOT NULL;
	RETURN NEW;
END;
$$;


--
-- Name: procrastinate_unregister_worker_v1(bigint); Type: FUNCTION; Schema: procrastinate; Owner: -
--

CREATE FUNCTION procrastinate.procrastinate_unregister_worker_v1(worker_id bigint) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'procrastinate', 'pg_catalog'
    AS $$
BEGIN
    DELETE FROM procrastinate_workers
    WHERE id = worker_id;
END;
$$;


--
-- Name: procrastinate_update_heartbeat_v1(bigint); Type: FUNCTION; Schema: procrastinate; Owner: -
--

CREATE FUNCTION procrastinate.procrastinate_update_heartbeat_v1(worker_id bigint) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'procrastinate', 'pg_catalog'
    AS $$
BEGIN
    UPDATE procrastinate_workers
    SET last_heartbeat = NOW()
    WHERE id = worker_id;
END;
$$;


--
-- Name: users; Type: TABLE; Schema: auth; Owner: -
--

CREATE TABLE auth.users (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    email text,
    raw_app_meta_data jsonb DEFAULT '{}'::jsonb NOT NULL,
    raw_user_meta_data jsonb DEFAULT '{}'::jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);


--
-- Name: market_data_events; Type: TABLE; Schema: backend; Owner: -
--

CREATE TABLE backend.market_data_events (
    id bigint NOT NULL,
    at timestamp with time zone DEFAULT now() NOT NULL,
    kind text NOT NULL,
    severity text NOT NULL,
    symbol text,
    "interval" text,
    message text NOT NULL,
    detail jsonb DEFAULT '{}'::jsonb NOT NULL,
    CONSTRAINT market_data_events_kind_check CHECK ((kind = ANY (ARRAY['banned'::text, 'rate_limited'::text, 'malformed'::text, 'request_failed'::text, 'stale'::text, 'recovered'::text, 'universe'::text]))),
    CONSTRAINT market_data_events_severity_check CHECK ((severity = ANY (ARRAY['info'::text, 'warning'::text, 'critical'::text])))
);


--
-- Name: TABLE market_data_events; Type: COMMENT; Schema: backend; Owner: -
--

COMMENT ON TABLE backend.market_data_events IS 'Alerts of the market-data worker (418 bans, 429s, malformed answers, stale series).';


--
-- Name: market_data_events_id_seq; Type: SEQUENCE; Schema: backend; Owner: -
--

ALTER TABLE backend.market_data_events ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME backend.market_data_events_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: rollout_log; Type: TABLE; Schema: backend; Owner: -
--

CREATE TABLE backend.rollout_log (
    id bigint NOT NULL,
    at timestamp with time zone DEFAULT now() NOT NULL,
    kind text NOT NULL,
    subject text,
    detail text NOT NULL,
    CONSTRAINT rollout_log_kind_check CHECK ((kind = ANY (ARRAY['rule'::text, 'override'::text, 'settings'::text, 'health'::text])))
);


--
-- Name: TABLE rollout_log; Type: COMMENT; Schema: backend; Owner: -
--

COMMENT ON TABLE backend.rollout_log IS 'Audit log of rollout changes and health transitions (why modes changed).';


--
-- Name: rollout_log_id_seq; Type: SEQUENCE; Schema: backend; Owner: -
--

ALTER TABLE backend.rollout_log ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME backend.rollout_log_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: rollout_overrides; Type: TABLE; Schema: backend; Owner: -
--

CREATE TABLE backend.rollout_overrides (
    user_id uuid NOT NULL,
    mode text NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT rollout_overrides_mode_check CHECK ((mode = ANY (ARRAY['browser'::text, 'shadow'::text, 'server'::text])))
);


--
-- Name: TABLE rollout_overrides; Type: COMMENT; Schema: backend; Owner: -
--

COMMENT ON TABLE backend.rollout_overrides IS 'Per-user execution mode; wins over tier rules.';


--
-- Name: rollout_rules; Type: TABLE; Schema: backend; Owner: -
--

CREATE TABLE backend.rollout_rules (
    tier text NOT NULL,
    shadow_percent numeric(5,2) DEFAULT 0 NOT NULL,
    server_percent numeric(5,2) DEFAULT 0 NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT rollout_rules_server_percent_check CHECK (((server_percent >= (0)::numeric) AND (server_percent <= (100)::numeric))),
    CONSTRAINT rollout_rules_shadow_percent_check CHECK (((shadow_percent >= (0)::numeric) AND (shadow_percent <= (100)::numeric)))
);


--
-- Name: TABLE rollout_rules; Type: COMMENT; Schema: backend; Owner: -
--

COMMENT ON TABLE backend.rollout_rules IS 'Per tier: percent of users in server mode, and in shadow-or-server mode (stable hash).';


--
-- Name: rollout_settings; Type: TABLE; Schema: backend; Owner: -
--

CREATE TABLE backend.rollout_settings (
    id boolean DEFAULT true NOT NULL,
    default_mode text DEFAULT 'browser'::text NOT NULL,
    fallback_enabled boolean DEFAULT true NOT NULL,
    tick_missing_after_s integer DEFAULT 180 NOT NULL,
    lag_p99_threshold_s integer DEFAULT 120 NOT NULL,
    worker_alive_s integer DEFAULT 60 NOT NULL,
    hold_s integer DEFAULT 300 NOT NULL,
    parity_threshold double precision DEFAULT 0.99 NOT NULL,
    parity_min_sample integer DEFAULT 100 NOT NULL,
    report_max_symbols integer DEFAULT 1000 NOT NULL,
    report_max_per_minute integer DEFAULT 6 NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT rollout_settings_default_mode_check CHECK ((default_mode = ANY (ARRAY['browser'::text, 'shadow'::text, 'server'::text]))),
    CONSTRAINT rollout_settings_hold_s_check CHECK ((hold_s >= 0)),
    CONSTRAINT rollout_settings_id_check CHECK (id),
    CONSTRAINT rollout_settings_lag_p99_threshold_s_check CHECK ((lag_p99_threshold_s > 0)),
    CONSTRAINT rollout_settings_parity_min_sample_check CHECK ((parity_min_sample > 0)),
    CONSTRAINT rollout_settings_parity_threshold_check CHECK (((parity_threshold >= (0)::double precision) AND (parity_threshold <= (1)::double precision))),
    CONSTRAINT rollout_settings_report_max_per_minute_check CHECK ((report_max_per_minute > 0)),
    CONSTRAINT rollout_settings_report_max_symbols_check CHECK ((report_max_symbols > 0)),
    CONSTRAINT rollout_settings_tick_missing_after_s_check CHECK ((tick_missing_after_s >= 60)),
    CONSTRAINT rollout_settings_worker_alive_s_check CHECK ((worker_alive_s > 0))
);


--
-- Name: TABLE rollout_settings; Type: COMMENT; Schema: backend; Owner: -
--

COMMENT ON TABLE backend.rollout_settings IS 'Single row: default execution mode, fallback thresholds, parity and report limits.';


--
-- Name: schedule_intervals; Type: TABLE; Schema: backend; Owner: -
--

CREATE TABLE backend.schedule_intervals (
    name text NOT NULL,
    minutes integer NOT NULL,
    CONSTRAINT schedule_intervals_minutes_check CHECK (((minutes > 0) AND ((1440 % minutes) = 0))),
    CONSTRAINT schedule_intervals_queue_name_length CHECK ((octet_length(('traders.'::text || name)) <= 40))
);


--
-- Name: TABLE schedule_intervals; Type: COMMENT; Schema: backend; Owner: -
--

COMMENT ON TABLE backend.schedule_intervals IS 'Valid traders.filter->>''refreshInterval'' values; jobs go to queue ''traders.'' || name.';


--
-- Name: scheduler_state; Type: TABLE; Schema: backend; Owner: -
--

CREATE TABLE backend.scheduler_state (
    id boolean DEFAULT true NOT NULL,
    last_slot timestamp with time zone,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT scheduler_state_id_check CHECK (id)
);


--
-- Name: TABLE scheduler_state; Type: COMMENT; Schema: backend; Owner: -
--

COMMENT ON TABLE backend.scheduler_state IS 'Single row: last_slot = last UTC minute scheduled (the catch-up watermark).';


--
-- Name: scheduler_ticks; Type: TABLE; Schema: backend; Owner: -
--

CREATE TABLE backend.scheduler_ticks (
    id bigint NOT NULL,
    ticked_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL,
    slot timestamp with time zone NOT NULL,
    window_start timestamp with time zone NOT NULL,
    enqueued integer NOT NULL,
    skipped_backlog integer NOT NULL,
    skipped_hourly_cap integer NOT NULL,
    skipped_invalid_interval integer NOT NULL,
    by_interval jsonb NOT NULL,
    duration_ms double precision NOT NULL
);


--
-- Name: TABLE scheduler_ticks; Type: COMMENT; Schema: backend; Owner: -
--

COMMENT ON TABLE backend.scheduler_ticks IS 'One row per scheduler tick that advanced the watermark: counts per outcome and interval.';


--
-- Name: scheduler_ticks_id_seq; Type: SEQUENCE; Schema: backend; Owner: -
--

ALTER TABLE backend.scheduler_ticks ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME backend.scheduler_ticks_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: user_hourly_executions; Type: TABLE; Schema: backend; Owner: -
--

CREATE TABLE backend.user_hourly_executions (
    user_id uuid NOT NULL,
    hour timestamp with time zone NOT NULL,
    enqueued integer DEFAULT 0 NOT NULL,
    skipped_hourly_cap integer DEFAULT 0 NOT NULL
);


--
-- Name: TABLE user_hourly_executions; Type: COMMENT; Schema: backend; Owner: -
--

COMMENT ON TABLE backend.user_hourly_executions IS 'Per user and UTC hour: runs enqueued and runs skipped by the tier''s hourly cap.';


--
-- Name: cron_job_health; Type: VIEW; Schema: ops; Owner: -
--

CREATE VIEW ops.cron_job_health AS
 SELECT cron_job_health_rows.jobid,
    cron_job_health_rows.jobname,
    cron_job_health_rows.schedule,
    cron_job_health_rows.command,
    cron_job_health_rows.active,
    cron_job_health_rows.period_minutes,
    cron_job_health_rows.last_start,
    cron_job_health_rows.last_end,
    cron_job_health_rows.last_status,
    cron_job_health_rows.last_message,
    cron_job_health_rows.last_success,
    cron_job_health_rows.runs_1h,
    cron_job_health_rows.failures_15m,
    cron_job_health_rows.failures_1h,
    cron_job_health_rows.missing
   FROM ops.cron_job_health_rows() cron_job_health_rows(jobid, jobname, schedule, command, active, period_minutes, last_start, last_end, last_status, last_message, last_success, runs_1h, failures_15m, failures_1h, missing);


--
-- Name: VIEW cron_job_health; Type: COMMENT; Schema: ops; Owner: -
--

COMMENT ON VIEW ops.cron_job_health IS 'pg_cron jobs of this database: last run (start, end, status, message), last success, runs and failures in the last hour / 15 minutes, and missing = an every-N-minutes job that has not started for N minutes + 90 s. Empty where pg_cron is not installed.';


--
-- Name: procrastinate_events; Type: TABLE; Schema: procrastinate; Owner: -
--

CREATE TABLE procrastinate.procrastinate_events (
    id bigint NOT NULL,
    job_id bigint NOT NULL,
    type procrastinate.procrastinate_job_event_type,
    at timestamp with time zone DEFAULT now()
);


--
-- Name: trader_runs; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.trader_runs (
    id bigint NOT NULL,
    trader_id uuid NOT NULL,
    user_id uuid NOT NULL,
    slot timestamp with time zone NOT NULL,
    "interval" text NOT NULL,
    status text NOT NULL,
    error_type text,
    error_message text,
    started_at timestamp with time zone NOT NULL,
    finished_at timestamp with time zone DEFAULT now() NOT NULL,
    duration_ms double precision,
    symbols_evaluated integer DEFAULT 0 NOT NULL,
    symbol_errors integer DEFAULT 0 NOT NULL,
    matches integer DEFAULT 0 NOT NULL,
    signals integer DEFAULT 0 NOT NULL,
    data_as_of timestamp with time zone,
    data_age_ms double precision,
    worker text,
    shadow boolean DEFAULT false NOT NULL,
    matched_symbols text[],
    CONSTRAINT trader_runs_status_check CHECK ((status = ANY (ARRAY['ok'::text, 'error'::text])))
);


--
-- Name: TABLE trader_runs; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.trader_runs IS 'One row per (trader, slot) evaluated. status=error: the filter failed (see error_*).';


--
-- Name: COLUMN trader_runs.shadow; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.trader_runs.shadow IS 'Run of a trader in shadow mode: stored for comparison, never shown to its user.';


--
-- Name: COLUMN trader_runs.matched_symbols; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.trader_runs.matched_symbols IS 'Every symbol that matched (shadow runs only; parity with the browser''s reports).';


--
-- Name: failure_rate_by_interval; Type: VIEW; Schema: ops; Owner: -
--

CREATE VIEW ops.failure_rate_by_interval AS
 WITH runs AS (
         SELECT r_1."interval",
            count(*) FILTER (WHERE (r_1.finished_at > (now() - '00:15:00'::interval))) AS runs_15m,
            count(*) FILTER (WHERE ((r_1.finished_at > (now() - '00:15:00'::interval)) AND (r_1.status = 'error'::text))) AS errors_15m,
            count(*) AS runs_1h,
            count(*) FILTER (WHERE (r_1.status = 'error'::text)) AS errors_1h
           FROM public.trader_runs r_1
          WHERE (r_1.finished_at > (now() - '01:00:00'::interval))
          GROUP BY r_1."interval"
        ), failed_jobs AS (
         SELECT (j.queue_name)::text AS queue_name,
            count(*) FILTER (WHERE (e.at > (now() - '00:15:00'::interval))) AS failed_15m,
            count(*) AS failed_1h
           FROM (procrastinate.procrastinate_events e
             JOIN procrastinate.procrastinate_jobs j ON ((j.id = e.job_id)))
          WHERE ((e.type = 'failed'::procrastinate.procrastinate_job_event_type) AND (e.at > (now() - '01:00:00'::interval)))
          GROUP BY j.queue_name
        )
 SELECT i.name AS "interval",
    COALESCE(r.runs_15m, (0)::bigint) AS runs_15m,
    COALESCE(r.errors_15m, (0)::bigint) AS errors_15m,
    COALESCE(f.failed_15m, (0)::bigint) AS failed_jobs_15m,
    round((((COALESCE(r.errors_15m, (0)::bigint) + COALESCE(f.failed_15m, (0)::bigint)))::numeric / (NULLIF((COALESCE(r.runs_15m, (0)::bigint) + COALESCE(f.failed_15m, (0)::bigint)), 0))::numeric), 4) AS failure_rate_15m,
    COALESCE(r.runs_1h, (0)::bigint) AS runs_1h,
    COALESCE(r.errors_1h, (0)::bigint) AS errors_1h,
    COALESCE(f.failed_1h, (0)::bigint) AS failed_jobs_1h,
    round((((COALESCE(r.errors_1h, (0)::bigint) + COALESCE(f.failed_1h, (0)::bigint)))::numeric / (NULLIF((COALESCE(r.runs_1h, (0)::bigint) + COALESCE(f.failed_1h, (0)::bigint)), 0))::numeric), 4) AS failure_rate_1h
   FROM ((backend.schedule_intervals i
     LEFT JOIN runs r ON ((r."interval" = i.name)))
     LEFT JOIN failed_jobs f ON ((f.queue_name = ('traders.'::text || i.name))))
  ORDER BY i.minutes;


--
-- Name: VIEW failure_rate_by_interval; Type: COMMENT; Schema: ops; Owner: -
--

COMMENT ON VIEW ops.failure_rate_by_interval IS 'Per interval, last 15 minutes and last hour: runs, filter errors, failed jobs and failure_rate = (errors + failed jobs) / (runs + failed jobs), a fraction (0.05 = 5%).';


--
-- Name: traders; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.traders (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    user_id uuid DEFAULT auth.uid() NOT NULL,
    name text DEFAULT ''::text NOT NULL,
    enabled boolean DEFAULT true NOT NULL,
    filter jsonb DEFAULT '{}'::jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    disabled_reason text,
    schedule_problem text
);


--
-- Name: TABLE traders; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.traders IS 'Users'' traders. Users own id/user_id/name/enabled/filter; disabled_reason and schedule_problem are backend-maintained; run bookkeeping is in public.trader_stats.';


--
-- Name: COLUMN traders.disabled_reason; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.traders.disabled_reason IS 'Why the backend disabled this trader (tier downgrade, repeated filter errors); NULL if not.';


--
-- Name: COLUMN traders.schedule_problem; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.traders.schedule_problem IS 'Why the scheduler cannot schedule this trader (e.g. unknown refreshInterval); NULL if fine.';


--
-- Name: market_data_in_use; Type: VIEW; Schema: ops; Owner: -
--

CREATE VIEW ops.market_data_in_use AS
 WITH used AS (
         SELECT COALESCE(NULLIF((t.filter ->> 'refreshInterval'::text), ''::text), '1m'::text) AS "interval",
            t.id
           FROM public.traders t
          WHERE t.enabled
        UNION
         SELECT tf.value,
            t.id
           FROM (public.traders t
             CROSS JOIN LATERAL jsonb_array_elements_text(
                CASE
                    WHEN (jsonb_typeof((t.filter -> 'requiredTimeframes'::text)) = 'array'::text) THEN (t.filter -> 'requiredTimeframes'::text)
                    ELSE '[]'::jsonb
                END) tf(value))
          WHERE t.enabled
        )
 SELECT 'ticker'::text AS "interval",
    count(*) AS traders
   FROM public.traders t
  WHERE t.enabled
UNION ALL
 SELECT i.name AS "interval",
    count(u.id) AS traders
   FROM (backend.schedule_intervals i
     LEFT JOIN used u ON ((u."interval" = i.name)))
  GROUP BY i.name;


--
-- Name: VIEW market_data_in_use; Type: COMMENT; Schema: ops; Owner: -
--

COMMENT ON VIEW ops.market_data_in_use IS 'Per market_snapshots interval (ticker, 1m … 1d): how many enabled traders use it.';


--
-- Name: queue_depth; Type: VIEW; Schema: ops; Owner: -
--

CREATE VIEW ops.queue_depth AS
 WITH jobs AS (
         SELECT (j_1.queue_name)::text AS queue_name,
            j_1.status,
            j_1.scheduled_at,
                CASE
                    WHEN (j_1.status = 'todo'::procrastinate.procrastinate_job_status) THEN COALESCE(j_1.scheduled_at, ( SELECT max(e.at) AS max
                       FROM procrastinate.procrastinate_events e
                      WHERE ((e.job_id = j_1.id) AND (e.type = ANY (ARRAY['deferred'::procrastinate.procrastinate_job_event_type, 'deferred_for_retry'::procrastinate.procrastinate_job_event_type, 'retried'::procrastinate.procrastinate_job_event_type])))),
                    CASE
                        WHEN ((j_1.task_name)::text = 'run_trader'::text) THEN backend.trader_job_slot(j_1.args)
                        ELSE NULL::timestamp with time zone
                    END)
                    ELSE NULL::timestamp with time zone
                END AS waiting_since
           FROM procrastinate.procrastinate_jobs j_1
          WHERE (j_1.status = ANY (ARRAY['todo'::procrastinate.procrastinate_job_status, 'doing'::procrastinate.procrastinate_job_status]))
        ), queues AS (
         SELECT ('traders.'::text || i.name) AS queue_name,
            i.minutes AS sort_key
           FROM backend.schedule_intervals i
        UNION
         SELECT DISTINCT j_1.queue_name,
            NULL::integer AS int4
           FROM jobs j_1
          WHERE (NOT (EXISTS ( SELECT
                   FROM backend.schedule_intervals i
                  WHERE (('traders.'::text || i.name) = j_1.queue_name))))
        )
 SELECT q.queue_name,
    count(j.status) FILTER (WHERE ((j.status = 'todo'::procrastinate.procrastinate_job_status) AND ((j.scheduled_at IS NULL) OR (j.scheduled_at <= now())))) AS waiting,
    count(j.status) FILTER (WHERE ((j.status = 'todo'::procrastinate.procrastinate_job_status) AND (j.scheduled_at > now()))) AS delayed,
    count(j.status) FILTER (WHERE (j.status = 'doing'::procrastinate.procrastinate_job_status)) AS running,
    min(j.waiting_since) FILTER (WHERE ((j.status = 'todo'::procrastinate.procrastinate_job_status) AND ((j.scheduled_at IS NULL) OR (j.scheduled_at <= now())))) AS oldest_waiting_since,
    round(EXTRACT(epoch FROM (now() - min(j.waiting_since) FILTER (WHERE ((j.status = 'todo'::procrastinate.procrastinate_job_status) AND ((j.scheduled_at IS NULL) OR (j.scheduled_at <= now())))))), 1) AS oldest_waiting_age_s
   FROM (queues q
     LEFT JOIN jobs j ON ((j.queue_name = q.queue_name)))
  GROUP BY q.queue_name, q.sort_key
  ORDER BY q.sort_key, q.queue_name;


--
-- Name: VIEW queue_depth; Type: COMMENT; Schema: ops; Owner: -
--

COMMENT ON VIEW ops.queue_depth IS 'Per queue: waiting (todo, due), delayed (todo, scheduled later), running (doing), and the oldest waiting job''s waiting_since / age in seconds.';


--
-- Name: market_snapshots; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.market_snapshots (
    "interval" text NOT NULL,
    version bigint DEFAULT 0 NOT NULL,
    closed_through timestamp with time zone,
    refreshed_at timestamp with time zone,
    symbols integer DEFAULT 0 NOT NULL,
    stale_symbols integer DEFAULT 0 NOT NULL,
    CONSTRAINT market_snapshots_interval_check CHECK (("interval" = ANY (ARRAY['ticker'::text, '1m'::text, '5m'::text, '15m'::text, '30m'::text, '1h'::text, '4h'::text, '1d'::text])))
);


--
-- Name: TABLE market_snapshots; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.market_snapshots IS 'One row per interval: version bumps on every refresh; closed_through = newest closed boundary.';


--
-- Name: snapshot_freshness; Type: VIEW; Schema: ops; Owner: -
--

CREATE VIEW ops.snapshot_freshness AS
 WITH expected AS (
         SELECT 'ticker'::text AS "interval",
            0 AS sort_key,
            NULL::timestamp with time zone AS expected
        UNION ALL
         SELECT i.name,
            i.minutes,
            to_timestamp(((floor((EXTRACT(epoch FROM now()) / ((i.minutes * 60))::numeric)) * ((i.minutes * 60))::numeric))::double precision) AS to_timestamp
           FROM backend.schedule_intervals i
        ), joined AS (
         SELECT x."interval",
            x.sort_key,
            s.version,
            s.refreshed_at,
            s.closed_through,
            x.expected,
            COALESCE(s.symbols, 0) AS symbols,
            COALESCE(s.stale_symbols, 0) AS stale_symbols,
            COALESCE(u.traders, (0)::bigint) AS traders
           FROM ((expected x
             LEFT JOIN public.market_snapshots s ON ((s."interval" = x."interval")))
             LEFT JOIN ops.market_data_in_use u ON ((u."interval" = x."interval")))
        ), judged AS (
         SELECT j."interval",
            j.sort_key,
            j.version,
            j.refreshed_at,
            j.closed_through,
            j.expected,
            j.symbols,
            j.stale_symbols,
            j.traders,
                CASE
                    WHEN (j.refreshed_at IS NULL) THEN 'never published'::text
                    WHEN ((j."interval" = 'ticker'::text) AND (j.refreshed_at < (now() - '00:03:00'::interval))) THEN format('tickers not refreshed for %s s'::text, round(EXTRACT(epoch FROM (now() - j.refreshed_at))))
                    WHEN ((j."interval" <> 'ticker'::text) AND ((j.closed_through IS NULL) OR ((now() - (j.closed_through + make_interval(mins => j.sort_key))) > '00:02:00'::interval))) THEN format('candle closed at %s not loaded after %s s'::text, to_char((COALESCE((j.closed_through + make_interval(mins => j.sort_key)), j.expected) AT TIME ZONE 'UTC'::text), 'YYYY-MM-DD HH24:MI "UTC"'::text), round(EXTRACT(epoch FROM (now() - COALESCE((j.closed_through + make_interval(mins => j.sort_key)), j.expected)))))
                    ELSE NULL::text
                END AS stale_reason
           FROM joined j
        )
 SELECT judged."interval",
    judged.version,
    judged.refreshed_at,
    round(EXTRACT(epoch FROM (now() - judged.refreshed_at)), 1) AS refresh_age_s,
    judged.closed_through,
    judged.expected AS expected_closed_through,
    round(GREATEST(EXTRACT(epoch FROM (judged.expected - judged.closed_through)), (0)::numeric), 1) AS behind_s,
    judged.symbols,
    judged.stale_symbols,
    (judged.stale_reason IS NOT NULL) AS stale,
    judged.stale_reason,
    judged.traders
   FROM judged
  ORDER BY judged.sort_key;


--
-- Name: VIEW snapshot_freshness; Type: COMMENT; Schema: ops; Owner: -
--

COMMENT ON VIEW ops.snapshot_freshness IS 'Per market_snapshots interval: version, refresh age, closed_through vs the expected boundary (behind_s), stale symbols, stale flag and reason, traders using it.';


--
-- Name: procrastinate_workers; Type: TABLE; Schema: procrastinate; Owner: -
--

CREATE TABLE procrastinate.procrastinate_workers (
    id bigint NOT NULL,
    last_heartbeat timestamp with time zone DEFAULT now() NOT NULL
);


--
-- Name: stalled_jobs; Type: VIEW; Schema: ops; Owner: -
--

CREATE VIEW ops.stalled_jobs AS
 SELECT j.id AS job_id,
    (j.queue_name)::text AS queue_name,
    (j.task_name)::text AS task_name,
    j.args,
    j.attempts,
    j.worker_id,
    w.last_heartbeat,
    round(EXTRACT(epoch FROM (now() - w.last_heartbeat)), 1) AS heartbeat_age_s
   FROM (procrastinate.procrastinate_jobs j
     LEFT JOIN procrastinate.procrastinate_workers w ON ((w.id = j.worker_id)))
  WHERE ((j.status = 'doing'::procrastinate.procrastinate_job_status) AND ((w.id IS NULL) OR (w.last_heartbeat < (now() - '00:01:00'::interval))))
  ORDER BY j.id;


--
-- Name: VIEW stalled_jobs; Type: COMMENT; Schema: ops; Owner: -
--

COMMENT ON VIEW ops.stalled_jobs IS 'Doing jobs whose worker is gone or silent for 60 s (candidates for requeue --stalled).';


--
-- Name: alerts_core; Type: VIEW; Schema: ops; Owner: -
--

CREATE VIEW ops.alerts_core AS
 SELECT 'failure_rate'::text AS alert,
    'critical'::text AS severity,
    f."interval" AS subject,
    (f.failure_rate_15m)::double precision AS value,
    (0.05)::double precision AS threshold,
    format('%s%% of %s runs of %s traders failed in the last 15 minutes (%s filter errors, %s failed jobs); see `traderctl traders list --failing --interval %s`'::text, round((f.failure_rate_15m * (100)::numeric), 1), (f.runs_15m + f.failed_jobs_15m), f."interval", f.errors_15m, f.failed_jobs_15m, f."interval") AS detail
   FROM ops.failure_rate_by_interval f
  WHERE (f.failure_rate_15m > 0.05)
UNION ALL
 SELECT 'queue_backlog'::text AS alert,
    'critical'::text AS severity,
    q.queue_name AS subject,
    (q.oldest_waiting_age_s)::double precision AS value,
    120 AS threshold,
    format('oldest waiting job of %s has waited %s s (%s waiting, %s running): add workers for this queue or check they are alive (`traderctl stats`)'::text, q.queue_name, round(q.oldest_waiting_age_s), q.waiting, q.running) AS detail
   FROM ops.queue_depth q
  WHERE (q.oldest_waiting_age_s > (120)::numeric)
UNION ALL
 SELECT 'stale_market_data'::text AS alert,
    'critical'::text AS severity,
    s."interval" AS subject,
    (s.behind_s)::double precision AS value,
    NULL::double precision AS threshold,
    format('%s market data is stale: %s; %s enabled traders use it. Check the market-data worker and backend.market_data_events'::text, s."interval", s.stale_reason, s.traders) AS detail
   FROM ops.snapshot_freshness s
  WHERE (s.stale AND (s.traders > 0))
UNION ALL
 SELECT 'stale_symbols'::text AS alert,
    'warning'::text AS severity,
    s."interval" AS subject,
    (s.stale_symbols)::double precision AS value,
    0 AS threshold,
    format('%s of %s symbols of %s klines are stale (serving their last good data); see market_klines.stale_reason'::text, s.stale_symbols, s.symbols, s."interval") AS detail
   FROM ops.snapshot_freshness s
  WHERE ((s.stale_symbols > 0) AND (s.traders > 0))
UNION ALL
 SELECT 'cron_failing'::text AS alert,
    'critical'::text AS severity,
    COALESCE(c.jobname, (c.jobid)::text) AS subject,
    c.failures_15m AS value,
    0 AS threshold,
    format('pg_cron job %s failed %s time(s) in the last 15 minutes; last message: %s'::text, COALESCE(c.jobname, (c.jobid)::text), c.failures_15m, COALESCE(c.last_message, '(none)'::text)) AS detail
   FROM ops.cron_job_health c
  WHERE (c.failures_15m > 0)
UNION ALL
 SELECT 'cron_missing'::text AS alert,
    'critical'::text AS severity,
    COALESCE(c.jobname, (c.jobid)::text) AS subject,
    (EXTRACT(epoch FROM (now() - c.last_start)))::double precision AS value,
    (((c.period_minutes * 60) + 90))::double precision AS threshold,
    format('pg_cron job %s (%s) has not started since %s; check that pg_cron''s background worker runs (cron.database_name, shared_preload_libraries) and cron.log_run = on'::text, COALESCE(c.jobname, (c.jobid)::text), c.schedule, COALESCE(to_char((c.last_start AT TIME ZONE 'UTC'::text), 'YYYY-MM-DD HH24:MI:SS "UTC"'::text), 'it was scheduled'::text)) AS detail
   FROM ops.cron_job_health c
  WHERE c.missing
UNION ALL
 SELECT 'scheduler_behind'::text AS alert,
    'critical'::text AS severity,
    'scheduler'::text AS subject,
    (EXTRACT(epoch FROM (now() - s.last_slot)))::double precision AS value,
    120 AS threshold,
    format('the scheduler last scheduled the minute %s: nothing is enqueueing due traders. Check the pg_cron job traderctl-schedule-due-traders or run `traderctl scheduler`'::text, COALESCE(to_char((s.last_slot AT TIME ZONE 'UTC'::text), 'YYYY-MM-DD HH24:MI "UTC"'::text), '(never)'::text)) AS detail
   FROM backend.scheduler_state s
  WHERE ((s.last_slot IS NULL) OR (s.last_slot < (now() - '00:02:00'::interval)))
UNION ALL
 SELECT 'exchange_banned'::text AS alert,
    'critical'::text AS severity,
    'exchange'::text AS subject,
    (count(*))::double precision AS value,
    0 AS threshold,
    format('the exchange answered 418 (IP banned) %s time(s) in the last hour, last at %s: %s'::text, count(*), to_char((max(e.at) AT TIME ZONE 'UTC'::text), 'HH24:MI:SS "UTC"'::text), (array_agg(e.message ORDER BY e.at DESC))[1]) AS detail
   FROM backend.market_data_events e
  WHERE ((e.kind = 'banned'::text) AND (e.at > (now() - '01:00:00'::interval)))
 HAVING (count(*) > 0)
UNION ALL
 SELECT 'exchange_rate_limited'::text AS alert,
    'warning'::text AS severity,
    'exchange'::text AS subject,
    (count(*))::double precision AS value,
    0 AS threshold,
    format('the exchange answered 429 (rate limited) %s time(s) in the last 15 minutes, last at %s; lower MARKET_WEIGHT_BUDGET or MARKET_CONCURRENCY'::text, count(*), to_char((max(e.at) AT TIME ZONE 'UTC'::text), 'HH24:MI:SS "UTC"'::text)) AS detail
   FROM backend.market_data_events e
  WHERE ((e.kind = 'rate_limited'::text) AND (e.at > (now() - '00:15:00'::interval)))
 HAVING (count(*) > 0)
UNION ALL
 SELECT 'stalled_jobs'::text AS alert,
    'warning'::text AS severity,
    j.queue_name AS subject,
    (count(*))::double precision AS value,
    0 AS threshold,
    format('%s job(s) of %s are held by a worker silent for over 60 s; the workers'' recovery requeues them, or run `traderctl requeue --stalled`'::text, count(*), j.queue_name) AS detail
   FROM ops.stalled_jobs j
  GROUP BY j.queue_name;


--
-- Name: VIEW alerts_core; Type: COMMENT; Schema: ops; Owner: -
--

COMMENT ON VIEW ops.alerts_core IS 'Conditions needing an operator now (empty = healthy): alert, severity, subject, value, threshold, detail. See the migration header or docs/operations.md for each alert.';


--
-- Name: browser_runs; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.browser_runs (
    id bigint NOT NULL,
    trader_id uuid NOT NULL,
    user_id uuid DEFAULT auth.uid() NOT NULL,
    ran_at timestamp with time zone NOT NULL,
    candle_open_time timestamp with time zone NOT NULL,
    matched_symbols text[] NOT NULL,
    reported_at timestamp with time zone DEFAULT now() NOT NULL
);


--
-- Name: TABLE browser_runs; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.browser_runs IS 'Browser-side runs reported by the frontend for parity monitoring (own traders only).';


--
-- Name: user_tiers; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.user_tiers (
    user_id uuid NOT NULL,
    tier text DEFAULT 'free'::text NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL
);


--
-- Name: TABLE user_tiers; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.user_tiers IS 'Each user''s tier; users without a row are on free. Written only by the backend/admins.';


--
-- Name: parity_pairs; Type: VIEW; Schema: ops; Owner: -
--

CREATE VIEW ops.parity_pairs AS
 SELECT b.id AS report_id,
    b.trader_id,
    b.user_id,
    COALESCE(ut.tier, 'free'::text) AS tier,
    r."interval",
    b.candle_open_time,
    r.slot,
    r.id AS run_id,
    b.ran_at AS browser_ran_at,
    b.matched_symbols AS browser_symbols,
    r.matched_symbols AS server_symbols,
    ARRAY( SELECT unnest(b.matched_symbols) AS unnest
        EXCEPT
         SELECT unnest(r.matched_symbols) AS unnest
  ORDER BY 1) AS only_browser,
    ARRAY( SELECT unnest(r.matched_symbols) AS unnest
        EXCEPT
         SELECT unnest(b.matched_symbols) AS unnest
  ORDER BY 1) AS only_server,
    ((NOT (EXISTS ( SELECT unnest(b.matched_symbols) AS unnest
        EXCEPT
         SELECT unnest(r.matched_symbols) AS unnest))) AND (NOT (EXISTS ( SELECT unnest(r.matched_symbols) AS unnest
        EXCEPT
         SELECT unnest(b.matched_symbols) AS unnest)))) AS agree
   FROM ((public.browser_runs b
     JOIN public.trader_runs r ON (((r.trader_id = b.trader_id) AND (r.status = 'ok'::text) AND (r.matched_symbols IS NOT NULL) AND (r.slot = (b.candle_open_time + ( SELECT make_interval(mins => i.minutes) AS make_interval
           FROM backend.schedule_intervals i
          WHERE (i.name = r."interval")))))))
     LEFT JOIN public.user_tiers ut ON ((ut.user_id = b.user_id)));


--
-- Name: VIEW parity_pairs; Type: COMMENT; Schema: ops; Owner: -
--

COMMENT ON VIEW ops.parity_pairs IS 'Browser run reports paired with the server (shadow) run on the same closed candle.';


--
-- Name: backend_health; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.backend_health (
    id boolean DEFAULT true NOT NULL,
    status text DEFAULT 'healthy'::text NOT NULL,
    fallback_active boolean DEFAULT false NOT NULL,
    reasons text[] DEFAULT '{}'::text[] NOT NULL,
    since timestamp with time zone DEFAULT now() NOT NULL,
    checked_at timestamp with time zone,
    passing_since timestamp with time zone,
    CONSTRAINT backend_health_id_check CHECK (id),
    CONSTRAINT backend_health_status_check CHECK ((status = ANY (ARRAY['healthy'::text, 'unhealthy'::text, 'recovering'::text])))
);


--
-- Name: TABLE backend_health; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.backend_health IS 'Single row: backend health. fallback_active = browsers must run their server traders.';


--
-- Name: rollout_alerts; Type: VIEW; Schema: ops; Owner: -
--

CREATE VIEW ops.rollout_alerts AS
 SELECT 'backend_fallback'::text AS alert,
    'critical'::text AS severity,
    'backend'::text AS subject,
    (EXTRACT(epoch FROM (now() - h.since)))::double precision AS value,
    NULL::double precision AS threshold,
    format('backend %s since %s: %s. Server traders run in the browser until every check passes for %s s; see `traderctl rollout show`'::text, h.status, h.since, array_to_string(h.reasons, '; '::text), s.hold_s) AS detail
   FROM (public.backend_health h
     CROSS JOIN backend.rollout_settings s)
  WHERE h.fallback_active
UNION ALL
 SELECT 'parity_below_threshold'::text AS alert,
    'warning'::text AS severity,
    p.tier AS subject,
    (avg((p.agree)::integer))::double precision AS value,
    s.parity_threshold AS threshold,
    format('%s of %s paired runs of tier %s agreed with the browser in the last 24 h (%s%%, threshold %s%%); see `traderctl rollout parity --tier %s`'::text, count(*) FILTER (WHERE p.agree), count(*), p.tier, round((avg((p.agree)::integer) * (100)::numeric), 2), round(((s.parity_threshold * (100)::double precision))::numeric, 2), p.tier) AS detail
   FROM (ops.parity_pairs p
     CROSS JOIN backend.rollout_settings s)
  WHERE (p.slot > (now() - '24:00:00'::interval))
  GROUP BY p.tier, s.parity_threshold, s.parity_min_sample
 HAVING ((count(*) >= s.parity_min_sample) AND ((avg((p.agree)::integer))::double precision < s.parity_threshold));


--
-- Name: VIEW rollout_alerts; Type: COMMENT; Schema: ops; Owner: -
--

COMMENT ON VIEW ops.rollout_alerts IS 'Rollout alerts: backend fallback active; browser/server parity below threshold.';


--
-- Name: alerts; Type: VIEW; Schema: ops; Owner: -
--

CREATE VIEW ops.alerts AS
 SELECT alerts_core.alert,
    alerts_core.severity,
    alerts_core.subject,
    alerts_core.value,
    alerts_core.threshold,
    alerts_core.detail
   FROM ops.alerts_core
UNION ALL
 SELECT rollout_alerts.alert,
    rollout_alerts.severity,
    rollout_alerts.subject,
    rollout_alerts.value,
    rollout_alerts.threshold,
    rollout_alerts.detail
   FROM ops.rollout_alerts;


--
-- Name: VIEW alerts; Type: COMMENT; Schema: ops; Owner: -
--

COMMENT ON VIEW ops.alerts IS 'One row per condition that needs an operator now (ops.alerts_core + ops.rollout_alerts).';


--
-- Name: execution_time_by_interval; Type: VIEW; Schema: ops; Owner: -
--

CREATE VIEW ops.execution_time_by_interval AS
 SELECT i.name AS "interval",
    count(r.id) AS runs,
    round((avg(r.duration_ms))::numeric, 1) AS avg_ms,
    round((percentile_cont((0.5)::double precision) WITHIN GROUP (ORDER BY r.duration_ms))::numeric, 1) AS p50_ms,
    round((percentile_cont((0.95)::double precision) WITHIN GROUP (ORDER BY r.duration_ms))::numeric, 1) AS p95_ms,
    round((max(r.duration_ms))::numeric, 1) AS max_ms
   FROM (backend.schedule_intervals i
     LEFT JOIN public.trader_runs r ON (((r."interval" = i.name) AND (r.finished_at > (now() - '01:00:00'::interval)))))
  GROUP BY i.name, i.minutes
  ORDER BY i.minutes;


--
-- Name: VIEW execution_time_by_interval; Type: COMMENT; Schema: ops; Owner: -
--

COMMENT ON VIEW ops.execution_time_by_interval IS 'Per refresh interval, runs finished in the last hour: count, avg/p50/p95/max duration_ms.';


--
-- Name: executions_per_minute; Type: VIEW; Schema: ops; Owner: -
--

CREATE VIEW ops.executions_per_minute AS
 WITH runs AS (
         SELECT date_trunc('minute'::text, r_1.finished_at, 'UTC'::text) AS minute,
            count(*) AS runs,
            count(*) FILTER (WHERE (r_1.status = 'ok'::text)) AS ok,
            count(*) FILTER (WHERE (r_1.status = 'error'::text)) AS errors,
            sum(r_1.signals) AS signals,
            avg(r_1.duration_ms) AS avg_duration_ms
           FROM public.trader_runs r_1
          WHERE (r_1.finished_at >= (date_trunc('minute'::text, now(), 'UTC'::text) - '00:59:00'::interval))
          GROUP BY (date_trunc('minute'::text, r_1.finished_at, 'UTC'::text))
        )
 SELECT m.minute,
    COALESCE(r.runs, (0)::bigint) AS runs,
    COALESCE(r.ok, (0)::bigint) AS ok,
    COALESCE(r.errors, (0)::bigint) AS errors,
    COALESCE(r.signals, (0)::bigint) AS signals,
    round((r.avg_duration_ms)::numeric, 1) AS avg_duration_ms
   FROM (generate_series((date_trunc('minute'::text, now(), 'UTC'::text) - '00:59:00'::interval), date_trunc('minute'::text, now(), 'UTC'::text), '00:01:00'::interval) m(minute)
     LEFT JOIN runs r ON ((r.minute = m.minute)));


--
-- Name: VIEW executions_per_minute; Type: COMMENT; Schema: ops; Owner: -
--

COMMENT ON VIEW ops.executions_per_minute IS 'Runs finished per UTC minute over the last hour (60 rows, the current minute last and partial): runs, ok, errors, signals, avg_duration_ms.';


--
-- Name: parity_by_tier; Type: VIEW; Schema: ops; Owner: -
--

CREATE VIEW ops.parity_by_tier AS
 SELECT p.tier,
    date_trunc('day'::text, p.slot, 'UTC'::text) AS day,
    count(*) AS pairs,
    count(*) FILTER (WHERE p.agree) AS agreeing,
    (round(avg((p.agree)::integer), 4))::double precision AS agreement,
    count(DISTINCT p.trader_id) AS traders,
    count(DISTINCT p.trader_id) FILTER (WHERE (NOT p.agree)) AS traders_differing
   FROM ops.parity_pairs p
  GROUP BY p.tier, (date_trunc('day'::text, p.slot, 'UTC'::text));


--
-- Name: VIEW parity_by_tier; Type: COMMENT; Schema: ops; Owner: -
--

COMMENT ON VIEW ops.parity_by_tier IS 'Per tier and UTC day: paired runs, agreement and how many traders differed.';


--
-- Name: parity_by_trader; Type: VIEW; Schema: ops; Owner: -
--

CREATE VIEW ops.parity_by_trader AS
 WITH pairs AS (
         SELECT p_1.report_id,
            p_1.trader_id,
            p_1.user_id,
            p_1.tier,
            p_1."interval",
            p_1.candle_open_time,
            p_1.slot,
            p_1.run_id,
            p_1.browser_ran_at,
            p_1.browser_symbols,
            p_1.server_symbols,
            p_1.only_browser,
            p_1.only_server,
            p_1.agree,
            date_trunc('day'::text, p_1.slot, 'UTC'::text) AS day
           FROM ops.parity_pairs p_1
        ), differing AS (
         SELECT d_1.trader_id,
            d_1.day,
            array_agg(DISTINCT s.symbol ORDER BY s.symbol) AS symbols
           FROM pairs d_1,
            LATERAL unnest((d_1.only_browser || d_1.only_server)) s(symbol)
          GROUP BY d_1.trader_id, d_1.day
        )
 SELECT p.trader_id,
    p.user_id,
    p.tier,
    p.day,
    count(*) AS pairs,
    count(*) FILTER (WHERE p.agree) AS agreeing,
    (round(avg((p.agree)::integer), 4))::double precision AS agreement,
    COALESCE(d.symbols, '{}'::text[]) AS differing_symbols
   FROM (pairs p
     LEFT JOIN differing d ON (((d.trader_id = p.trader_id) AND (d.day = p.day))))
  GROUP BY p.trader_id, p.user_id, p.tier, p.day, d.symbols;


--
-- Name: VIEW parity_by_trader; Type: COMMENT; Schema: ops; Owner: -
--

COMMENT ON VIEW ops.parity_by_trader IS 'Per trader and UTC day: paired runs, agreeing runs, agreement and the differing symbols.';


--
-- Name: signals; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.signals (
    id bigint NOT NULL,
    trader_id uuid NOT NULL,
    user_id uuid NOT NULL,
    run_id bigint NOT NULL,
    slot timestamp with time zone NOT NULL,
    symbol text NOT NULL,
    "interval" text NOT NULL,
    price numeric,
    change_percent numeric,
    quote_volume numeric,
    data_as_of timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    shadow boolean DEFAULT false NOT NULL
);


--
-- Name: TABLE signals; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.signals IS 'Edge-triggered matches: symbol matched on this run and not on the trader''s previous run.';


--
-- Name: COLUMN signals.run_id; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.signals.run_id IS 'The run that raised it (trader_runs.id; same trader_id and slot). Not a foreign key: written only by backend.commit_trader_runs, from the run it inserts.';


--
-- Name: COLUMN signals.shadow; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.signals.shadow IS 'Signal of a shadow run: stored, never shown to its user (RLS).';


--
-- Name: schedule_lag; Type: VIEW; Schema: ops; Owner: -
--

CREATE VIEW ops.schedule_lag AS
 WITH runs AS (
         SELECT r_1."interval",
            count(*) AS runs,
            percentile_cont((0.5)::double precision) WITHIN GROUP (ORDER BY (((EXTRACT(epoch FROM (r_1.started_at - r_1.slot)) * (1000)::numeric))::double precision)) AS start_p50,
            percentile_cont((0.99)::double precision) WITHIN GROUP (ORDER BY (((EXTRACT(epoch FROM (r_1.started_at - r_1.slot)) * (1000)::numeric))::double precision)) AS start_p99,
            percentile_cont((0.5)::double precision) WITHIN GROUP (ORDER BY (((EXTRACT(epoch FROM (r_1.finished_at - r_1.slot)) * (1000)::numeric))::double precision)) AS commit_p50,
            percentile_cont((0.99)::double precision) WITHIN GROUP (ORDER BY (((EXTRACT(epoch FROM (r_1.finished_at - r_1.slot)) * (1000)::numeric))::double precision)) AS commit_p99
           FROM public.trader_runs r_1
          WHERE (r_1.finished_at > (now() - '01:00:00'::interval))
          GROUP BY r_1."interval"
        ), sigs AS (
         SELECT s_1."interval",
            count(*) AS signals,
            percentile_cont((0.5)::double precision) WITHIN GROUP (ORDER BY (((EXTRACT(epoch FROM (s_1.created_at - s_1.slot)) * (1000)::numeric))::double precision)) AS signal_p50,
            percentile_cont((0.99)::double precision) WITHIN GROUP (ORDER BY (((EXTRACT(epoch FROM (s_1.created_at - s_1.slot)) * (1000)::numeric))::double precision)) AS signal_p99
           FROM public.signals s_1
          WHERE (s_1.created_at > (now() - '01:00:00'::interval))
          GROUP BY s_1."interval"
        )
 SELECT i.name AS "interval",
    COALESCE(r.runs, (0)::bigint) AS runs,
    round((r.start_p50)::numeric, 1) AS start_lag_p50_ms,
    round((r.start_p99)::numeric, 1) AS start_lag_p99_ms,
    round((r.commit_p50)::numeric, 1) AS commit_lag_p50_ms,
    round((r.commit_p99)::numeric, 1) AS commit_lag_p99_ms,
    COALESCE(s.signals, (0)::bigint) AS signals,
    round((s.signal_p50)::numeric, 1) AS signal_lag_p50_ms,
    round((s.signal_p99)::numeric, 1) AS signal_lag_p99_ms
   FROM ((backend.schedule_intervals i
     LEFT JOIN runs r ON ((r."interval" = i.name)))
     LEFT JOIN sigs s ON ((s."interval" = i.name)))
  ORDER BY i.minutes;


--
-- Name: VIEW schedule_lag; Type: COMMENT; Schema: ops; Owner: -
--

COMMENT ON VIEW ops.schedule_lag IS 'Per interval, last hour: p50/p99 of slot->start, slot->run committed and slot->signal committed, in milliseconds.';


--
-- Name: skips_by_reason; Type: VIEW; Schema: ops; Owner: -
--

CREATE VIEW ops.skips_by_reason AS
 WITH ticks AS (
         SELECT k.slot,
            k.by_interval,
            k.skipped_invalid_interval
           FROM backend.scheduler_ticks k
          WHERE (k.slot > (now() - '01:00:00'::interval))
        ), latest AS (
         SELECT k.slot,
            k.by_interval,
            k.skipped_invalid_interval
           FROM backend.scheduler_ticks k
          ORDER BY k.slot DESC
         LIMIT 1
        ), per_interval AS (
         SELECT reason.name AS reason,
            i.name AS "interval",
            i.minutes AS sort_key,
            COALESCE(sum((((t.by_interval -> i.name) ->> reason.outcome))::integer) FILTER (WHERE (t.slot > (now() - '00:15:00'::interval))), (0)::bigint) AS skipped_15m,
            COALESCE(sum((((t.by_interval -> i.name) ->> reason.outcome))::integer), (0)::bigint) AS skipped_1h,
            max(t.slot) FILTER (WHERE ((((t.by_interval -> i.name) ->> reason.outcome))::integer > 0)) AS last_skip_slot,
            reason.sort_key AS reason_key
           FROM ((( VALUES ('backlog'::text,'skipped_backlog'::text,1), ('hourly_cap'::text,'skipped_hourly_cap'::text,2)) reason(name, outcome, sort_key)
             CROSS JOIN backend.schedule_intervals i)
             LEFT JOIN ticks t ON (true))
          GROUP BY reason.name, reason.outcome, reason.sort_key, i.name, i.minutes
        )
 SELECT p.reason,
    p."interval",
    p.skipped_15m,
    p.skipped_1h,
    (COALESCE(( SELECT (((l.by_interval -> p."interval") ->>
                CASE p.reason
                    WHEN 'backlog'::text THEN 'skipped_backlog'::text
                    ELSE 'skipped_hourly_cap'::text
                END))::integer AS int4
           FROM latest l), 0))::bigint AS latest,
    p.last_skip_slot
   FROM per_interval p
UNION ALL
 SELECT 'invalid_interval'::text AS reason,
    NULL::text AS "interval",
    COALESCE(sum(t.skipped_invalid_interval) FILTER (WHERE (t.slot > (now() - '00:15:00'::interval))), (0)::bigint) AS skipped_15m,
    COALESCE(sum(t.skipped_invalid_interval), (0)::bigint) AS skipped_1h,
    (COALESCE(( SELECT l.skipped_invalid_interval
           FROM latest l), 0))::bigint AS latest,
    max(t.slot) FILTER (WHERE (t.skipped_invalid_interval > 0)) AS last_skip_slot
   FROM ticks t;


--
-- Name: VIEW skips_by_reason; Type: COMMENT; Schema: ops; Owner: -
--

COMMENT ON VIEW ops.skips_by_reason IS 'Scheduler skips from backend.scheduler_ticks: per reason (backlog, hourly_cap per interval; invalid_interval overall) the sums over 15 minutes and 1 hour, the count at the latest tick, and the last slot with a skip.';


--
-- Name: snapshot_reuse; Type: VIEW; Schema: ops; Owner: -
--

CREATE VIEW ops.snapshot_reuse AS
 SELECT i.name AS "interval",
    count(r.id) AS runs,
    count(DISTINCT r.data_as_of) AS snapshot_versions,
    count(DISTINCT ROW(r.worker, r.data_as_of)) FILTER (WHERE (r.data_as_of IS NOT NULL)) AS loads,
    round(((1)::numeric - ((count(DISTINCT ROW(r.worker, r.data_as_of)) FILTER (WHERE (r.data_as_of IS NOT NULL)))::numeric / (NULLIF(count(r.id) FILTER (WHERE (r.data_as_of IS NOT NULL)), 0))::numeric)), 4) AS reuse_rate
   FROM (backend.schedule_intervals i
     LEFT JOIN public.trader_runs r ON (((r."interval" = i.name) AND (r.finished_at > (now() - '01:00:00'::interval)))))
  GROUP BY i.name, i.minutes
  ORDER BY i.minutes;


--
-- Name: VIEW snapshot_reuse; Type: COMMENT; Schema: ops; Owner: -
--

COMMENT ON VIEW ops.snapshot_reuse IS 'Per interval, last hour: runs, distinct snapshot versions (data_as_of), estimated loads (distinct worker x data_as_of) and reuse_rate = 1 - loads / runs.';


--
-- Name: procrastinate_events_id_seq; Type: SEQUENCE; Schema: procrastinate; Owner: -
--

CREATE SEQUENCE procrastinate.procrastinate_events_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: procrastinate_events_id_seq; Type: SEQUENCE OWNED BY; Schema: procrastinate; Owner: -
--

ALTER SEQUENCE procrastinate.procrastinate_events_id_seq OWNED BY procrastinate.procrastinate_events.id;


--
-- Name: procrastinate_jobs_id_seq; Type: SEQUENCE; Schema: procrastinate; Owner: -
--

CREATE SEQUENCE procrastinate.procrastinate_jobs_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: procrastinate_jobs_id_seq; Type: SEQUENCE OWNED BY; Schema: procrastinate; Owner: -
--

ALTER SEQUENCE procrastinate.procrastinate_jobs_id_seq OWNED BY procrastinate.procrastinate_jobs.id;


--
-- Name: procrastinate_periodic_defers; Type: TABLE; Schema: procrastinate; Owner: -
--

CREATE TABLE procrastinate.procrastinate_periodic_defers (
    id bigint NOT NULL,
    task_name character varying(128) NOT NULL,
    defer_timestamp bigint,
    job_id bigint,
    periodic_id character varying(128) DEFAULT ''::character varying NOT NULL
);


--
-- Name: procrastinate_periodic_defers_id_seq; Type: SEQUENCE; Schema: procrastinate; Owner: -
--

CREATE SEQUENCE procrastinate.procrastinate_periodic_defers_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: procrastinate_periodic_defers_id_seq; Type: SEQUENCE OWNED BY; Schema: procrastinate; Owner: -
--

ALTER SEQUENCE procrastinate.procrastinate_periodic_defers_id_seq OWNED BY procrastinate.procrastinate_periodic_defers.id;


--
-- Name: procrastinate_workers_id_seq; Type: SEQUENCE; Schema: procrastinate; Owner: -
--

ALTER TABLE procrastinate.procrastinate_workers ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME procrastinate.procrastinate_workers_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: browser_runs_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

ALTER TABLE public.browser_runs ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.browser_runs_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: market_klines; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.market_klines (
    symbol text NOT NULL,
    "interval" text NOT NULL,
    klines json NOT NULL,
    closed_through timestamp with time zone NOT NULL,
    stale boolean DEFAULT false NOT NULL,
    stale_reason text,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT market_klines_interval_check CHECK (("interval" = ANY (ARRAY['1m'::text, '5m'::text, '15m'::text, '30m'::text, '1h'::text, '4h'::text, '1d'::text])))
);
ALTER TABLE ONLY public.market_klines ALTER COLUMN klines SET COMPRESSION lz4;


--
-- Name: market_tickers; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.market_tickers (
    symbol text NOT NULL,
    ticker json NOT NULL,
    quote_volume double precision NOT NULL,
    rank integer NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL
);


--
-- Name: signals_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

ALTER TABLE public.signals ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.signals_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: tiers; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.tiers (
    name text NOT NULL,
    max_enabled_traders integer,
    max_executions_per_hour integer,
    queue_priority integer NOT NULL,
    max_symbols integer,
    CONSTRAINT tiers_max_enabled_traders_check CHECK ((max_enabled_traders >= 0)),
    CONSTRAINT tiers_max_executions_per_hour_check CHECK ((max_executions_per_hour >= 0)),
    CONSTRAINT tiers_max_symbols_check CHECK ((max_symbols > 0))
);


--
-- Name: TABLE tiers; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.tiers IS 'Per-tier limits (NULL = unlimited). queue_priority: higher runs first.';


--
-- Name: trader_matches; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.trader_matches (
    trader_id uuid NOT NULL,
    user_id uuid NOT NULL,
    symbols text[] DEFAULT '{}'::text[] NOT NULL,
    slot timestamp with time zone NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    shadow boolean DEFAULT false NOT NULL
);


--
-- Name: TABLE trader_matches; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.trader_matches IS 'Symbols that matched on each trader''s latest successful run: the edge-trigger state.';


--
-- Name: COLUMN trader_matches.shadow; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.trader_matches.shadow IS 'Match state last written by a shadow run: hidden from the user (RLS).';


--
-- Name: trader_modes; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.trader_modes (
    trader_id uuid NOT NULL,
    user_id uuid NOT NULL,
    mode text NOT NULL,
    configured_mode text NOT NULL,
    source text NOT NULL,
    reason text NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT trader_modes_configured_mode_check CHECK ((configured_mode = ANY (ARRAY['browser'::text, 'shadow'::text, 'server'::text]))),
    CONSTRAINT trader_modes_mode_check CHECK ((mode = ANY (ARRAY['browser'::text, 'shadow'::text, 'server'::text]))),
    CONSTRAINT trader_modes_source_check CHECK ((source = ANY (ARRAY['default'::text, 'rule'::text, 'override'::text, 'fallback'::text])))
);


--
-- Name: TABLE trader_modes; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.trader_modes IS 'Effective execution mode of each trader and why; browser = the browser must run it.';


--
-- Name: trader_runs_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

ALTER TABLE public.trader_runs ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.trader_runs_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: trader_stats; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.trader_stats (
    trader_id uuid NOT NULL,
    user_id uuid NOT NULL,
    last_slot timestamp with time zone,
    last_run_at timestamp with time zone,
    last_run_status text,
    last_error text,
    last_error_type text,
    last_error_at timestamp with time zone,
    consecutive_errors integer DEFAULT 0 NOT NULL,
    error_count bigint DEFAULT 0 NOT NULL,
    run_count bigint DEFAULT 0 NOT NULL,
    signal_count bigint DEFAULT 0 NOT NULL
)
WITH (fillfactor='80');


--
-- Name: TABLE trader_stats; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.trader_stats IS 'Backend-maintained run bookkeeping of each trader (last run, error streak, counters); one row per trader, read-only for users.';


--
-- Name: COLUMN trader_stats.last_slot; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.trader_stats.last_slot IS 'The latest slot (UTC minute) the trader ran for, shadow runs included.';


--
-- Name: COLUMN trader_stats.consecutive_errors; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.trader_stats.consecutive_errors IS 'Failed runs in a row; reset by a successful run or by enabling the trader.';


--
-- Name: schema_migrations; Type: TABLE; Schema: supabase_migrations; Owner: -
--

CREATE TABLE supabase_migrations.schema_migrations (
    version text NOT NULL,
    statements text[],
    name text
);


--
-- Name: procrastinate_events id; Type: DEFAULT; Schema: procrastinate; Owner: -
--

ALTER TABLE ONLY procrastinate.procrastinate_events ALTER COLUMN id SET DEFAULT nextval('procrastinate.procrastinate_events_id_seq'::regclass);


--
-- Name: procrastinate_jobs id; Type: DEFAULT; Schema: procrastinate; Owner: -
--

ALTER TABLE ONLY procrastinate.procrastinate_jobs ALTER COLUMN id SET DEFAULT nextval('procrastinate.procrastinate_jobs_id_seq'::regclass);


--
-- Name: procrastinate_periodic_defers id; Type: DEFAULT; Schema: procrastinate; Owner: -
--

ALTER TABLE ONLY procrastinate.procrastinate_periodic_defers ALTER COLUMN id SET DEFAULT nextval('procrastinate.procrastinate_periodic_defers_id_seq'::regclass);


--
-- Name: users users_email_key; Type: CONSTRAINT; Schema: auth; Owner: -
--

ALTER TABLE ONLY auth.users
    ADD CONSTRAINT users_email_key UNIQUE (email);


--
-- Name: users users_pkey; Type: CONSTRAINT; Schema: auth; Owner: -
--

ALTER TABLE ONLY auth.users
    ADD CONSTRAINT users_pkey PRIMARY KEY (id);


--
-- Name: market_data_events market_data_events_pkey; Type: CONSTRAINT; Schema: backend; Owner: -
--

ALTER TABLE ONLY backend.market_data_events
    ADD CONSTRAINT market_data_events_pkey PRIMARY KEY (id);


--
-- Name: rollout_log rollout_log_pkey; Type: CONSTRAINT; Schema: backend; Owner: -
--

ALTER TABLE ONLY backend.rollout_log
    ADD CONSTRAINT rollout_log_pkey PRIMARY KEY (id);


--
-- Name: rollout_overrides rollout_overrides_pkey; Type: CONSTRAINT; Schema: backend; Owner: -
--

ALTER TABLE ONLY backend.rollout_overrides
    ADD CONSTRAINT rollout_overrides_pkey PRIMARY KEY (user_id);


--
-- Name: rollout_rules rollout_rules_pkey; Type: CONSTRAINT; Schema: backend; Owner: -
--

ALTER TABLE ONLY backend.rollout_rules
    ADD CONSTRAINT rollout_rules_pkey PRIMARY KEY (tier);


--
-- Name: rollout_settings rollout_settings_pkey; Type: CONSTRAINT; Schema: backend; Owner: -
--

ALTER TABLE ONLY backend.rollout_settings
    ADD CONSTRAINT rollout_settings_pkey PRIMARY KEY (id);


--
-- Name: schedule_intervals schedule_intervals_minutes_key; Type: CONSTRAINT; Schema: backend; Owner: -
--

ALTER TABLE ONLY backend.schedule_intervals
    ADD CONSTRAINT schedule_intervals_minutes_key UNIQUE (minutes);


--
-- Name: schedule_intervals schedule_intervals_pkey; Type: CONSTRAINT; Schema: backend; Owner: -
--

ALTER TABLE ONLY backend.schedule_intervals
    ADD CONSTRAINT schedule_intervals_pkey PRIMARY KEY (name);


--
-- Name: scheduler_state scheduler_state_pkey; Type: CONSTRAINT; Schema: backend; Owner: -
--

ALTER TABLE ONLY backend.scheduler_state
    ADD CONSTRAINT scheduler_state_pkey PRIMARY KEY (id);


--
-- Name: scheduler_ticks scheduler_ticks_pkey; Type: CONSTRAINT; Schema: backend; Owner: -
--

ALTER TABLE ONLY backend.scheduler_ticks
    ADD CONSTRAINT scheduler_ticks_pkey PRIMARY KEY (id);


--
-- Name: user_hourly_executions user_hourly_executions_pkey; Type: CONSTRAINT; Schema: backend; Owner: -
--

ALTER TABLE ONLY backend.user_hourly_executions
    ADD CONSTRAINT user_hourly_executions_pkey PRIMARY KEY (user_id, hour);


--
-- Name: procrastinate_events procrastinate_events_pkey; Type: CONSTRAINT; Schema: procrastinate; Owner: -
--

ALTER TABLE ONLY procrastinate.procrastinate_events
    ADD CONSTRAINT procrastinate_events_pkey PRIMARY KEY (id);


--
-- Name: procrastinate_jobs procrastinate_jobs_pkey; Type: CONSTRAINT; Schema: procrastinate; Owner: -
--

ALTER TABLE ONLY procrastinate.procrastinate_jobs
    ADD CONSTRAINT procrastinate_jobs_pkey PRIMARY KEY (id);


--
-- Name: procrastinate_periodic_defers procrastinate_periodic_defers_pkey; Type: CONSTRAINT; Schema: procrastinate; Owner: -
--

ALTER TABLE ONLY procrastinate.procrastinate_periodic_defers
    ADD CONSTRAINT procrastinate_periodic_defers_pkey PRIMARY KEY (id);


--
-- Name: procrastinate_periodic_defers procrastinate_periodic_defers_unique; Type: CONSTRAINT; Schema: procrastinate; Owner: -
--

ALTER TABLE ONLY procrastinate.procrastinate_periodic_defers
    ADD CONSTRAINT procrastinate_periodic_defers_unique UNIQUE (task_name, periodic_id, defer_timestamp);


--
-- Name: procrastinate_workers procrastinate_workers_pkey; Type: CONSTRAINT; Schema: procrastinate; Owner: -
--

ALTER TABLE ONLY procrastinate.procrastinate_workers
    ADD CONSTRAINT procrastinate_workers_pkey PRIMARY KEY (id);


--
-- Name: backend_health backend_health_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.backend_health
    ADD CONSTRAINT backend_health_pkey PRIMARY KEY (id);


--
-- Name: browser_runs browser_runs_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.browser_runs
    ADD CONSTRAINT browser_runs_pkey PRIMARY KEY (id);


--
-- Name: market_klines market_klines_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.market_klines
    ADD CONSTRAINT market_klines_pkey PRIMARY KEY (symbol, "interval");


--
-- Name: market_snapshots market_snapshots_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.market_snapshots
    ADD CONSTRAINT market_snapshots_pkey PRIMARY KEY ("interval");


--
-- Name: market_tickers market_tickers_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.market_tickers
    ADD CONSTRAINT market_tickers_pkey PRIMARY KEY (symbol);


--
-- Name: signals signals_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.signals
    ADD CONSTRAINT signals_pkey PRIMARY KEY (id);


--
-- Name: signals signals_trader_slot_symbol_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.signals
    ADD CONSTRAINT signals_trader_slot_symbol_key UNIQUE (trader_id, slot, symbol);


--
-- Name: tiers tiers_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.tiers
    ADD CONSTRAINT tiers_pkey PRIMARY KEY (name);


--
-- Name: trader_matches trader_matches_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.trader_matches
    ADD CONSTRAINT trader_matches_pkey PRIMARY KEY (trader_id);


--
-- Name: trader_modes trader_modes_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.trader_modes
    ADD CONSTRAINT trader_modes_pkey PRIMARY KEY (trader_id);


--
-- Name: trader_runs trader_runs_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.trader_runs
    ADD CONSTRAINT trader_runs_pkey PRIMARY KEY (id);


--
-- Name: trader_runs trader_runs_trader_slot_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.trader_runs
    ADD CONSTRAINT trader_runs_trader_slot_key UNIQUE (trader_id, slot);


--
-- Name: trader_stats trader_stats_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.trader_stats
    ADD CONSTRAINT trader_stats_pkey PRIMARY KEY (trader_id);


--
-- Name: traders traders_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.traders
    ADD CONSTRAINT traders_pkey PRIMARY KEY (id);


--
-- Name: user_tiers user_tiers_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.user_tiers
    ADD CONSTRAINT user_tiers_pkey PRIMARY KEY (user_id);


--
-- Name: schema_migrations schema_migrations_pkey; Type: CONSTRAINT; Schema: supabase_migrations; Owner: -
--

ALTER TABLE ONLY supabase_migrations.schema_migrations
    ADD CONSTRAINT schema_migrations_pkey PRIMARY KEY (version);


--
-- Name: market_data_events_at_idx; Type: INDEX; Schema: backend; Owner: -
--

CREATE INDEX market_data_events_at_idx ON backend.market_data_events USING btree (at DESC);


--
-- Name: market_data_events_kind_at_idx; Type: INDEX; Schema: backend; Owner: -
--

CREATE INDEX market_data_events_kind_at_idx ON backend.market_data_events USING btree (kind, at DESC) WHERE (severity <> 'info'::text);


--
-- Name: rollout_log_at_idx; Type: INDEX; Schema: backend; Owner: -
--

CREATE INDEX rollout_log_at_idx ON backend.rollout_log USING btree (at);


--
-- Name: scheduler_ticks_slot_idx; Type: INDEX; Schema: backend; Owner: -
--

CREATE INDEX scheduler_ticks_slot_idx ON backend.scheduler_ticks USING btree (slot);


--
-- Name: user_hourly_executions_hour_idx; Type: INDEX; Schema: backend; Owner: -
--

CREATE INDEX user_hourly_executions_hour_idx ON backend.user_hourly_executions USING btree (hour);


--
-- Name: idx_procrastinate_jobs_worker_not_null; Type: INDEX; Schema: procrastinate; Owner: -
--

CREATE INDEX idx_procrastinate_jobs_worker_not_null ON procrastinate.procrastinate_jobs USING btree (worker_id) WHERE ((worker_id IS NOT NULL) AND (status = 'doing'::procrastinate.procrastinate_job_status));


--
-- Name: idx_procrastinate_workers_last_heartbeat; Type: INDEX; Schema: procrastinate; Owner: -
--

CREATE INDEX idx_procrastinate_workers_last_heartbeat ON procrastinate.procrastinate_workers USING btree (last_heartbeat);


--
-- Name: procrastinate_events_job_id_fkey_v1; Type: INDEX; Schema: procrastinate; Owner: -
--

CREATE INDEX procrastinate_events_job_id_fkey_v1 ON procrastinate.procrastinate_events USING btree (job_id);


--
-- Name: procrastinate_jobs_lock_idx_v1; Type: INDEX; Schema: procrastinate; Owner: -
--

CREATE UNIQUE INDEX procrastinate_jobs_lock_idx_v1 ON procrastinate.procrastinate_jobs USING btree (lock) WHERE (status = 'doing'::procrastinate.procrastinate_job_status);


--
-- Name: procrastinate_jobs_lock_lookup_idx; Type: INDEX; Schema: procrastinate; Owner: -
--

CREATE INDEX procrastinate_jobs_lock_lookup_idx ON procrastinate.procrastinate_jobs USING btree (lock);


--
-- Name: procrastinate_jobs_maintenance_todo_idx; Type: INDEX; Schema: procrastinate; Owner: -
--

CREATE INDEX procrastinate_jobs_maintenance_todo_idx ON procrastinate.procrastinate_jobs USING btree (priority DESC, id) WHERE ((status = 'todo'::procrastinate.procrastinate_job_status) AND ((queue_name)::text = 'traderctl.maintenance'::text));


--
-- Name: procrastinate_jobs_priority_idx_v1; Type: INDEX; Schema: procrastinate; Owner: -
--

CREATE INDEX procrastinate_jobs_priority_idx_v1 ON procrastinate.procrastinate_jobs USING btree (priority DESC, id) WHERE (status = 'todo'::procrastinate.procrastinate_job_status);


--
-- Name: procrastinate_jobs_queueing_lock_idx_v1; Type: INDEX; Schema: procrastinate; Owner: -
--

CREATE UNIQUE INDEX procrastinate_jobs_queueing_lock_idx_v1 ON procrastinate.procrastinate_jobs USING btree (queueing_lock) WHERE (status = 'todo'::procrastinate.procrastinate_job_status);


--
-- Name: procrastinate_periodic_defers_job_id_fkey_v1; Type: INDEX; Schema: procrastinate; Owner: -
--

CREATE INDEX procrastinate_periodic_defers_job_id_fkey_v1 ON procrastinate.procrastinate_periodic_defers USING btree (job_id);


--
-- Name: browser_runs_reported_at_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX browser_runs_reported_at_idx ON public.browser_runs USING btree (reported_at);


--
-- Name: browser_runs_trader_candle_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX browser_runs_trader_candle_idx ON public.browser_runs USING btree (trader_id, candle_open_time);


--
-- Name: browser_runs_trader_reported_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX browser_runs_trader_reported_idx ON public.browser_runs USING btree (trader_id, reported_at);


--
-- Name: browser_runs_user_id_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX browser_runs_user_id_idx ON public.browser_runs USING btree (user_id);


--
-- Name: market_tickers_rank_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX market_tickers_rank_idx ON public.market_tickers USING btree (rank);


--
-- Name: signals_created_at_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX signals_created_at_idx ON public.signals USING btree (created_at);


--
-- Name: signals_user_id_created_at_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX signals_user_id_created_at_idx ON public.signals USING btree (user_id, created_at DESC);


--
-- Name: trader_matches_user_id_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX trader_matches_user_id_idx ON public.trader_matches USING btree (user_id);


--
-- Name: trader_modes_user_id_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX trader_modes_user_id_idx ON public.trader_modes USING btree (user_id);


--
-- Name: trader_runs_finished_at_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX trader_runs_finished_at_idx ON public.trader_runs USING btree (finished_at);


--
-- Name: trader_runs_user_id_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX trader_runs_user_id_idx ON public.trader_runs USING btree (user_id);


--
-- Name: trader_stats_user_id_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX trader_stats_user_id_idx ON public.trader_stats USING btree (user_id);


--
-- Name: traders_schedule_problem_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX traders_schedule_problem_idx ON public.traders USING btree (user_id) WHERE (schedule_problem IS NOT NULL);


--
-- Name: traders_user_id_enabled_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX traders_user_id_enabled_idx ON public.traders USING btree (user_id, created_at) WHERE enabled;


--
-- Name: traders_user_id_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX traders_user_id_idx ON public.traders USING btree (user_id);


--
-- Name: rollout_overrides rollout_overrides_changed; Type: TRIGGER; Schema: backend; Owner: -
--

CREATE TRIGGER rollout_overrides_changed AFTER INSERT OR DELETE OR UPDATE ON backend.rollout_overrides FOR EACH STATEMENT EXECUTE FUNCTION backend.rollout_data_changed();


--
-- Name: rollout_rules rollout_rules_changed; Type: TRIGGER; Schema: backend; Owner: -
--

CREATE TRIGGER rollout_rules_changed AFTER INSERT OR DELETE OR UPDATE ON backend.rollout_rules FOR EACH STATEMENT EXECUTE FUNCTION backend.rollout_data_changed();


--
-- Name: rollout_settings rollout_settings_changed; Type: TRIGGER; Schema: backend; Owner: -
--

CREATE TRIGGER rollout_settings_changed AFTER UPDATE OF default_mode, fallback_enabled ON backend.rollout_settings FOR EACH STATEMENT EXECUTE FUNCTION backend.rollout_data_changed();


--
-- Name: procrastinate_jobs procrastinate_jobs_notify_queue_job_aborted_v1; Type: TRIGGER; Schema: procrastinate; Owner: -
--

CREATE TRIGGER procrastinate_jobs_notify_queue_job_aborted_v1 AFTER UPDATE OF abort_requested ON procrastinate.procrastinate_jobs FOR EACH ROW WHEN (((old.abort_requested = false) AND (new.abort_requested = true) AND (new.status = 'doing'::procrastinate.procrastinate_job_status))) EXECUTE FUNCTION procrastinate.procrastinate_notify_queue_abort_job_v1();


--
-- Name: procrastinate_jobs procrastinate_jobs_notify_queue_job_inserted_v1; Type: TRIGGER; Schema: procrastinate; Owner: -
--

CREATE TRIGGER procrastinate_jobs_notify_queue_job_inserted_v1 AFTER INSERT ON procrastinate.procrastinate_jobs FOR EACH ROW WHEN ((new.status = 'todo'::procrastinate.procrastinate_job_status)) EXECUTE FUNCTION procrastinate.procrastinate_notify_queue_job_inserted_v1();


--
-- Name: procrastinate_jobs procrastinate_trigger_abort_requested_events_v1; Type: TRIGGER; Schema: procrastinate; Owner: -
--

CREATE TRIGGER procrastinate_trigger_abort_requested_events_v1 AFTER UPDATE OF abort_requested ON procrastinate.procrastinate_jobs FOR EACH ROW WHEN ((new.abort_requested = true)) EXECUTE FUNCTION procrastinate.procrastinate_trigger_abort_requested_events_procedure_v1();


--
-- Name: procrastinate_jobs procrastinate_trigger_scheduled_events_v1; Type: TRIGGER; Schema: procrastinate; Owner: -
--

CREATE TRIGGER procrastinate_trigger_scheduled_events_v1 AFTER INSERT OR UPDATE ON procrastinate.procrastinate_jobs FOR EACH ROW WHEN (((new.scheduled_at IS NOT NULL) AND (new.status = 'todo'::procrastinate.procrastinate_job_status))) EXECUTE FUNCTION procrastinate.procrastinate_trigger_function_scheduled_events_v1();


--
-- Name: procrastinate_jobs procrastinate_trigger_status_events_insert_v1; Type: TRIGGER; Schema: procrastinate; Owner: -
--

CREATE TRIGGER procrastinate_trigger_status_events_insert_v1 AFTER INSERT ON procrastinate.procrastinate_jobs FOR EACH ROW WHEN (((new.status = 'todo'::procrastinate.procrastinate_job_status) AND ((new.task_name)::text <> 'run_trader'::text))) EXECUTE FUNCTION procrastinate.procrastinate_trigger_function_status_events_insert_v1();


--
-- Name: procrastinate_jobs procrastinate_trigger_status_events_update_v1; Type: TRIGGER; Schema: procrastinate; Owner: -
--

CREATE TRIGGER procrastinate_trigger_status_events_update_v1 AFTER UPDATE OF status ON procrastinate.procrastinate_jobs FOR EACH ROW WHEN ((NOT ((old.status = 'todo'::procrastinate.procrastinate_job_status) AND (new.status = 'doing'::procrastinate.procrastinate_job_status) AND ((new.task_name)::text = 'run_trader'::text)))) EXECUTE FUNCTION procrastinate.procrastinate_trigger_function_status_events_update_v1();


--
-- Name: browser_runs browser_runs_check_limits; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER browser_runs_check_limits BEFORE INSERT ON public.browser_runs FOR EACH ROW EXECUTE FUNCTION backend.browser_runs_check_limits();


--
-- Name: traders traders_assign_mode; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER traders_assign_mode AFTER INSERT ON public.traders REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION backend.traders_assign_mode();


--
-- Name: traders traders_before_update; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER traders_before_update BEFORE UPDATE ON public.traders FOR EACH ROW EXECUTE FUNCTION backend.traders_before_update();


--
-- Name: traders traders_create_stats; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER traders_create_stats AFTER INSERT ON public.traders REFERENCING NEW TABLE AS new_traders FOR EACH STATEMENT EXECUTE FUNCTION backend.traders_create_stats();


--
-- Name: traders traders_enforce_tier_limit; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER traders_enforce_tier_limit BEFORE INSERT OR UPDATE OF enabled, user_id ON public.traders FOR EACH ROW EXECUTE FUNCTION backend.traders_enforce_tier_limit();


--
-- Name: traders traders_enqueue_first_run; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER traders_enqueue_first_run AFTER INSERT OR UPDATE OF enabled, filter ON public.traders FOR EACH ROW EXECUTE FUNCTION backend.traders_enqueue_first_run();


--
-- Name: traders traders_reset_streak; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER traders_reset_streak AFTER UPDATE OF enabled ON public.traders FOR EACH ROW WHEN ((new.enabled AND (NOT old.enabled))) EXECUTE FUNCTION backend.traders_reset_streak();


--
-- Name: traders traders_set_schedule_problem; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER traders_set_schedule_problem BEFORE INSERT OR UPDATE OF filter ON public.traders FOR EACH ROW EXECUTE FUNCTION backend.traders_set_schedule_problem();


--
-- Name: user_tiers user_tiers_apply_downgrade; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER user_tiers_apply_downgrade AFTER INSERT OR DELETE OR UPDATE OF tier, user_id ON public.user_tiers FOR EACH ROW EXECUTE FUNCTION backend.user_tiers_apply_downgrade();


--
-- Name: user_tiers user_tiers_refresh_modes_insert; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER user_tiers_refresh_modes_insert AFTER INSERT ON public.user_tiers REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION backend.user_tiers_refresh_modes();


--
-- Name: user_tiers user_tiers_refresh_modes_update; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER user_tiers_refresh_modes_update AFTER UPDATE ON public.user_tiers REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION backend.user_tiers_refresh_modes();


--
-- Name: rollout_overrides rollout_overrides_user_id_fkey; Type: FK CONSTRAINT; Schema: backend; Owner: -
--

ALTER TABLE ONLY backend.rollout_overrides
    ADD CONSTRAINT rollout_overrides_user_id_fkey FOREIGN KEY (user_id) REFERENCES auth.users(id) ON DELETE CASCADE;


--
-- Name: rollout_rules rollout_rules_tier_fkey; Type: FK CONSTRAINT; Schema: backend; Owner: -
--

ALTER TABLE ONLY backend.rollout_rules
    ADD CONSTRAINT rollout_rules_tier_fkey FOREIGN KEY (tier) REFERENCES public.tiers(name) ON DELETE CASCADE;


--
-- Name: procrastinate_events procrastinate_events_job_id_fkey; Type: FK CONSTRAINT; Schema: procrastinate; Owner: -
--

ALTER TABLE ONLY procrastinate.procrastinate_events
    ADD CONSTRAINT procrastinate_events_job_id_fkey FOREIGN KEY (job_id) REFERENCES procrastinate.procrastinate_jobs(id) ON DELETE CASCADE;


--
-- Name: procrastinate_jobs procrastinate_jobs_worker_id_fkey; Type: FK CONSTRAINT; Schema: procrastinate; Owner: -
--

ALTER TABLE ONLY procrastinate.procrastinate_jobs
    ADD CONSTRAINT procrastinate_jobs_worker_id_fkey FOREIGN KEY (worker_id) REFERENCES procrastinate.procrastinate_workers(id) ON DELETE SET NULL;


--
-- Name: procrastinate_periodic_defers procrastinate_periodic_defers_job_id_fkey; Type: FK CONSTRAINT; Schema: procrastinate; Owner: -
--

ALTER TABLE ONLY procrastinate.procrastinate_periodic_defers
    ADD CONSTRAINT procrastinate_periodic_defers_job_id_fkey FOREIGN KEY (job_id) REFERENCES procrastinate.procrastinate_jobs(id) ON DELETE SET NULL;


--
-- Name: browser_runs browser_runs_trader_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.browser_runs
    ADD CONSTRAINT browser_runs_trader_id_fkey FOREIGN KEY (trader_id) REFERENCES public.traders(id) ON DELETE CASCADE;


--
-- Name: signals signals_trader_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.signals
    ADD CONSTRAINT signals_trader_id_fkey FOREIGN KEY (trader_id) REFERENCES public.trader_stats(trader_id) ON DELETE CASCADE;


--
-- Name: trader_matches trader_matches_trader_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.trader_matches
    ADD CONSTRAINT trader_matches_trader_id_fkey FOREIGN KEY (trader_id) REFERENCES public.trader_stats(trader_id) ON DELETE CASCADE;


--
-- Name: trader_modes trader_modes_trader_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.trader_modes
    ADD CONSTRAINT trader_modes_trader_id_fkey FOREIGN KEY (trader_id) REFERENCES public.traders(id) ON DELETE CASCADE;


--
-- Name: trader_runs trader_runs_trader_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.trader_runs
    ADD CONSTRAINT trader_runs_trader_id_fkey FOREIGN KEY (trader_id) REFERENCES public.trader_stats(trader_id) ON DELETE CASCADE;


--
-- Name: trader_stats trader_stats_trader_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.trader_stats
    ADD CONSTRAINT trader_stats_trader_id_fkey FOREIGN KEY (trader_id) REFERENCES public.traders(id) ON DELETE CASCADE;


--
-- Name: traders traders_user_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.traders
    ADD CONSTRAINT traders_user_id_fkey FOREIGN KEY (user_id) REFERENCES auth.users(id) ON DELETE CASCADE;


--
-- Name: user_tiers user_tiers_tier_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.user_tiers
    ADD CONSTRAINT user_tiers_tier_fkey FOREIGN KEY (tier) REFERENCES public.tiers(name);


--
-- Name: user_tiers user_tiers_user_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.user_tiers
    ADD CONSTRAINT user_tiers_user_id_fkey FOREIGN KEY (user_id) REFERENCES auth.users(id) ON DELETE CASCADE;


--
-- Name: market_data_events; Type: ROW SECURITY; Schema: backend; Owner: -
--

ALTER TABLE backend.market_data_events ENABLE ROW LEVEL SECURITY;

--
-- Name: schedule_intervals; Type: ROW SECURITY; Schema: backend; Owner: -
--

ALTER TABLE backend.schedule_intervals ENABLE ROW LEVEL SECURITY;

--
-- Name: scheduler_state; Type: ROW SECURITY; Schema: backend; Owner: -
--

ALTER TABLE backend.scheduler_state ENABLE ROW LEVEL SECURITY;

--
-- Name: scheduler_ticks; Type: ROW SECURITY; Schema: backend; Owner: -
--

ALTER TABLE backend.scheduler_ticks ENABLE ROW LEVEL SECURITY;

--
-- Name: user_hourly_executions; Type: ROW SECURITY; Schema: backend; Owner: -
--

ALTER TABLE backend.user_hourly_executions ENABLE ROW LEVEL SECURITY;

--
-- Name: backend_health; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.backend_health ENABLE ROW LEVEL SECURITY;

--
-- Name: browser_runs; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.browser_runs ENABLE ROW LEVEL SECURITY;

--
-- Name: market_klines market data is readable by signed-in users; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY "market data is readable by signed-in users" ON public.market_klines FOR SELECT TO authenticated USING (true);


--
-- Name: market_snapshots market data is readable by signed-in users; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY "market data is readable by signed-in users" ON public.market_snapshots FOR SELECT TO authenticated USING (true);


--
-- Name: market_tickers market data is readable by signed-in users; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY "market data is readable by signed-in users" ON public.market_tickers FOR SELECT TO authenticated USING (true);


--
-- Name: market_klines; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.market_klines ENABLE ROW LEVEL SECURITY;

--
-- Name: market_snapshots; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.market_snapshots ENABLE ROW LEVEL SECURITY;

--
-- Name: market_tickers; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.market_tickers ENABLE ROW LEVEL SECURITY;

--
-- Name: signals; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.signals ENABLE ROW LEVEL SECURITY;

--
-- Name: backend_health signed-in users read the backend health; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY "signed-in users read the backend health" ON public.backend_health FOR SELECT TO authenticated USING (true);


--
-- Name: tiers; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.tiers ENABLE ROW LEVEL SECURITY;

--
-- Name: tiers tiers are readable by signed-in users; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY "tiers are readable by signed-in users" ON public.tiers FOR SELECT TO authenticated USING (true);


--
-- Name: trader_matches; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.trader_matches ENABLE ROW LEVEL SECURITY;

--
-- Name: trader_modes; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.trader_modes ENABLE ROW LEVEL SECURITY;

--
-- Name: trader_runs; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.trader_runs ENABLE ROW LEVEL SECURITY;

--
-- Name: trader_stats; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.trader_stats ENABLE ROW LEVEL SECURITY;

--
-- Name: traders; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.traders ENABLE ROW LEVEL SECURITY;

--
-- Name: user_tiers; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.user_tiers ENABLE ROW LEVEL SECURITY;

--
-- Name: traders users create their own traders; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY "users create their own traders" ON public.traders FOR INSERT TO authenticated WITH CHECK ((( SELECT auth.uid() AS uid) = user_id));


--
-- Name: browser_runs users delete their own browser runs; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY "users delete their own browser runs" ON public.browser_runs FOR DELETE TO authenticated USING ((( SELECT auth.uid() AS uid) = user_id));


--
-- Name: traders users delete their own traders; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY "users delete their own traders" ON public.traders FOR DELETE TO authenticated USING ((( SELECT auth.uid() AS uid) = user_id));


--
-- Name: browser_runs users read their own browser runs; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY "users read their own browser runs" ON public.browser_runs FOR SELECT TO authenticated USING ((( SELECT auth.uid() AS uid) = user_id));


--
-- Name: trader_matches users read their own match state; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY "users read their own match state" ON public.trader_matches FOR SELECT TO authenticated USING (((( SELECT auth.uid() AS uid) = user_id) AND (NOT shadow)));


--
-- Name: trader_runs users read their own runs; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY "users read their own runs" ON public.trader_runs FOR SELECT TO authenticated USING (((( SELECT auth.uid() AS uid) = user_id) AND (NOT shadow)));


--
-- Name: signals users read their own signals; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY "users read their own signals" ON public.signals FOR SELECT TO authenticated USING (((( SELECT auth.uid() AS uid) = user_id) AND (NOT shadow)));


--
-- Name: user_tiers users read their own tier; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY "users read their own tier" ON public.user_tiers FOR SELECT TO authenticated USING ((( SELECT auth.uid() AS uid) = user_id));


--
-- Name: traders users read their own traders; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY "users read their own traders" ON public.traders FOR SELECT TO authenticated USING ((( SELECT auth.uid() AS uid) = user_id));


--
-- Name: trader_modes users read their own traders' modes; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY "users read their own traders' modes" ON public.trader_modes FOR SELECT TO authenticated USING ((( SELECT auth.uid() AS uid) = user_id));


--
-- Name: trader_stats users read their own traders' stats; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY "users read their own traders' stats" ON public.trader_stats FOR SELECT TO authenticated USING ((( SELECT auth.uid() AS uid) = user_id));


--
-- Name: browser_runs users report runs of their own traders; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY "users report runs of their own traders" ON public.browser_runs FOR INSERT TO authenticated WITH CHECK (((( SELECT auth.uid() AS uid) = user_id) AND (EXISTS ( SELECT
   FROM public.traders t
  WHERE ((t.id = browser_runs.trader_id) AND (t.user_id = ( SELECT auth.uid() AS uid)))))));


--
-- Name: traders users update their own traders; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY "users update their own traders" ON public.traders FOR UPDATE TO authenticated USING ((( SELECT auth.uid() AS uid) = user_id)) WITH CHECK ((( SELECT auth.uid() AS uid) = user_id));


--
-- Name: supabase_realtime; Type: PUBLICATION; Schema: -; Owner: -
--

CREATE PUBLICATION supabase_realtime WITH (publish = 'insert, update, delete, truncate');


--
-- Name: supabase_realtime backend_health; Type: PUBLICATION TABLE; Schema: public; Owner: -
--

ALTER PUBLICATION supabase_realtime ADD TABLE ONLY public.backend_health;


--
-- Name: supabase_realtime signals; Type: PUBLICATION TABLE; Schema: public; Owner: -
--

ALTER PUBLICATION supabase_realtime ADD TABLE ONLY public.signals;


--
-- Name: supabase_realtime trader_modes; Type: PUBLICATION TABLE; Schema: public; Owner: -
--

ALTER PUBLICATION supabase_realtime ADD TABLE ONLY public.trader_modes;


--
-- PostgreSQL database dump complete
--
