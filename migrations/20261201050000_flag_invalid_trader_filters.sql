-- Flag trader filters the backend cannot run, instead of accepting them silently.
--
-- Why: backend.schedule_problem(filter) only checked refreshInterval. Three other shapes
-- got through and cost the user without telling them anything:
--   * code that is a JSON number, object, array or boolean passes the tick's
--     `(filter ->> 'code') ~ '\S'` test, so the trader was enqueued every tick and used
--     the owner's hourly cap, while the worker could not run it and recorded no run;
--   * requiredTimeframes naming no known interval ran "ok" with no symbol evaluated;
--   * requiredTimeframes = [] ran "ok" with every symbol in error (in the browser such a
--     filter never matches anything).
-- A filter that is not a JSON object at all had no rule either.
--
-- Now each of these is a schedule_problem: the BEFORE trigger stores the message in
-- public.traders.schedule_problem, where the user sees it, and the tick and the
-- first-run trigger skip flagged traders (20261201000100_create_enqueue_trader_runs.sql),
-- so they are never enqueued and cost no hourly cap. Fixing the filter clears the flag.
--
-- The checks, in order (the first that applies is reported):
--   1. the filter is a JSON object;
--   2. code, when present and not null, is a JSON string (blank or missing code is not a
--      problem: such a trader is simply not run, in the browser too);
--   3. refreshInterval: unchanged rules and messages (a string naming a known interval;
--      missing, null or '' means 1m);
--   4. requiredTimeframes, when present and not null: an array, not empty, whose every
--      element is a string naming a row of backend.schedule_intervals.
-- Every message says what is wrong, what was found and what to use instead.

create or replace function backend.schedule_problem(filter jsonb) returns text
language sql
stable
set search_path = ''
as $$
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
comment on function backend.schedule_problem(jsonb) is
    'Why a trader with this filter cannot be scheduled (not an object, code not a string, '
    'unknown refreshInterval, bad requiredTimeframes), or NULL.';

-- Flag the traders saved before this migration.
update public.traders
set schedule_problem = backend.schedule_problem(filter)
where schedule_problem is distinct from backend.schedule_problem(filter);
