-- Are the pg_cron jobs of this database running and succeeding?
--
-- One row per cron.job of the current database with its last run (start, end, status,
-- message), last success, runs and failures in the last hour / 15 minutes. `missing`
-- is true for an active `* * * * *` or `*/N * * * *` job whose last start is older
-- than N minutes + 90 s (pg_cron never replays missed runs, so a stopped scheduler only
-- shows as an old last_start). Empty where pg_cron is not installed: only the database
-- named by cron.database_name has it (Supabase: postgres). The scheduler tick is the job
-- 'traderctl-schedule-due-traders'.
select jobid, jobname, schedule, active, period_minutes, last_start, last_status,
       last_message, last_success, runs_1h, failures_15m, failures_1h, missing
from ops.cron_job_health;
