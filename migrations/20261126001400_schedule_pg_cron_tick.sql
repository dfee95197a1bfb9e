-- Register the scheduler tick with pg_cron: every minute, `select backend.schedule_due_traders()`.
--
-- pg_cron can be created only in the database named by cron.database_name (Supabase:
-- `postgres`, where this migration runs). Everywhere else (the test suite's template
-- databases, a server without pg_cron in shared_preload_libraries) this migration only
-- raises a NOTICE and changes nothing: run `traderctl scheduler` there instead, which
-- calls the same function once a minute.
--
-- Re-running is safe: cron.schedule(job_name, …) with an existing name updates that job
-- in place (pg_cron >= 1.3; checked with Debian's 1.4), so there is only ever one job
-- named 'traderctl-schedule-due-traders'. Missed minutes are not replayed by pg_cron; the
-- function's watermark coalesces them at the next tick.

do $$
declare
    v_cron_db text := current_setting('cron.database_name', true);
begin
    if exists (select from pg_catalog.pg_extension where extname = 'pg_cron')
        or current_database() = v_cron_db then
        create extension if not exists pg_cron;
        perform cron.schedule(
            'traderctl-schedule-due-traders',
            '* * * * *',
            'select * from backend.schedule_due_traders()'
        );
    else
        raise notice 'pg_cron is not available in database % (cron.database_name = %); '
                     'the scheduler tick was not registered',
                current_database(), coalesce(v_cron_db, '(pg_cron not preloaded)')
            using hint = 'Run `traderctl scheduler` against this database, or apply this '
                         'migration in the cron.database_name database.';
    end if;
end
$$;
