-- Immediate first run: inserting an enabled trader, enabling one, or changing its filter
-- code enqueues a run for the current minute at top priority (100), so the user's first
-- signal arrives in seconds instead of at the next due slot (up to a day for 1d traders).
-- This is what the browser does: every trader runs once immediately, then on its timer.
--
-- The trigger fires on the user's own INSERT/UPDATE through the Data API (role
-- authenticated, which has no privileges on the procrastinate schema), hence SECURITY
-- DEFINER with an empty search_path and fully qualified names.
--
-- Rules, the same as the tick's:
--   * a job for the trader already waiting (queueing_lock) -> nothing is enqueued;
--   * the run counts against the tier's max_executions_per_hour; over the cap it is
--     skipped and counted in backend.user_hourly_executions.skipped_hourly_cap;
--   * traders with blank code or a schedule_problem are not run;
--   * if this minute already has a run for the trader (or one is in flight with the old
--     code), the job is for the next minute (scheduled_at = that minute): (trader_id,
--     slot) is unique, so a job for this minute would commit nothing and an edited filter
--     would wait for its next due slot, up to a day for 1d.
-- Bulk loads (benchmarks, imports) may skip it for their transaction with
--   set local traderctl.skip_first_run = 'on';
-- which only withholds a run, so it is harmless to let anyone set it.

create function backend.traders_enqueue_first_run() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_slot timestamptz := date_trunc('minute', now(), 'UTC');
    v_scheduled_at timestamptz := null;
    v_hour constant timestamptz := date_trunc('hour', now(), 'UTC');
    v_lock constant text := 'trader:' || new.id::text;
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

    insert into procrastinate.procrastinate_jobs
        (queue_name, task_name, priority, lock, queueing_lock, args, status, scheduled_at)
    values (
        'traders.' || coalesce(nullif(new.filter ->> 'refreshInterval', ''), '1m'),
        'run_trader',
        100,
        v_lock,
        v_lock,
        jsonb_build_object(
            'trader_id', new.id,
            'slot', to_char(v_slot at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"+00:00"')
        ),
        'todo',
        v_scheduled_at
    )
    on conflict (queueing_lock) where status = 'todo' do nothing
    returning id into v_job_id;

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
comment on function backend.traders_enqueue_first_run() is
    'AFTER INSERT/UPDATE OF enabled, filter on public.traders: enqueues a priority-100 run for '
    'the current minute (the next one if this minute already has a run) when a trader is '
    'created enabled, enabled, or its code changes (skipped when a job is waiting or the '
    'hourly cap is reached).';

-- Named to sort after the other traders triggers (AFTER triggers fire alphabetically).
create trigger traders_enqueue_first_run
    after insert or update of enabled, filter on public.traders
    for each row execute function backend.traders_enqueue_first_run();

revoke all on function backend.traders_enqueue_first_run() from public, anon, authenticated;
