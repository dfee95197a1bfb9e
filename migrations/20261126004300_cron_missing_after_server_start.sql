-- ops.cron_job_health: a job that never ran is "missing" only once pg_cron has had its
-- chance since the server started.
--
-- The first version flagged an active every-N-minutes job with no run at all as missing
-- at once, so every fresh install (and `traderctl up` on a new data dir) started with a
-- critical cron_missing alert for its first minute. pg_cron runs jobs only while the
-- server is up, so a job without runs is now overdue when the server has been up for its
-- period plus 90 seconds; a job with runs is judged by its last start, as before.
-- Same function, same columns: replaced in place.

create or replace function ops.cron_job_health_rows()
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
