-- pg_cron job health: ops.cron_job_health, over cron.job and cron.job_run_details.
--
-- pg_cron exists only in the database named by cron.database_name (Supabase: postgres).
-- Elsewhere (the test suite's per-test databases, a server without pg_cron) the `cron`
-- schema is missing and a view naming cron.job_run_details could not even be created.
-- So the view reads a function that checks to_regclass('cron.job_run_details') and
-- queries it with dynamic SQL only when it exists; otherwise the view is empty. (When
-- pg_cron is installed later, the view starts returning rows without a new migration.)
--
-- SECURITY DEFINER: cron.job_run_details is readable by its owner only (and each user's
-- own jobs), and service_role must see every job. The function is owned by the migration
-- role, has an empty search_path, qualifies every name and is executable by service_role
-- alone.
--
-- "missing": pg_cron does not replay missed runs, so a job that stopped running shows
-- only as an old last start. For schedules of the form `* * * * *` and `*/N * * * *` the
-- expected period is known (1 and N minutes); such a job is overdue when its last start
-- is older than the period plus 90 seconds. A job that never started counts from the
-- server's start (pg_cron runs jobs only while the server is up), so a fresh install does
-- not raise cron_missing in its first minute. Other schedules
-- get period_minutes NULL and are never flagged missing. cron.log_run = off (no run
-- details at all) makes every active job look missing: keep it on.

create function ops.cron_job_health_rows()
returns table (
    jobid bigint,
    jobname text,
    schedule text,
    command text,
    active boolean,
    period_minutes integer,
    last_start timestamptz,
    last_end timestamptz,
    last_status text,
    last_message text,
    last_success timestamptz,
    runs_1h bigint,
    failures_15m bigint,
    failures_1h bigint,
    missing boolean
)
language plpgsql
stable
security definer
set search_path = ''
as $$
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
$$;
comment on function ops.cron_job_health_rows() is
    'Rows of ops.cron_job_health; empty where pg_cron is not installed (checked at run time).';

revoke all on function ops.cron_job_health_rows() from public, anon, authenticated;

create view ops.cron_job_health as
select * from ops.cron_job_health_rows();
comment on view ops.cron_job_health is
    'pg_cron jobs of this database: last run (start, end, status, message), last success, '
    'runs and failures in the last hour / 15 minutes, and missing = an every-N-minutes job '
    'that has not started for N minutes + 90 s. Empty where pg_cron is not installed.';

revoke all on ops.cron_job_health from public, anon, authenticated;
do $$
begin
    if exists (select from pg_roles where rolname = 'service_role') then
        grant execute on function ops.cron_job_health_rows() to service_role;
        grant select on ops.cron_job_health to service_role;
    end if;
end
$$;
