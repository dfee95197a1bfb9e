-- Which running jobs belong to a worker that stopped sending heartbeats?
--
-- 'doing' jobs whose worker is gone or has been silent for over 60 seconds. The trader
-- workers requeue these themselves every TRADERCTL_WORKER_RECOVERY_SECONDS once the heartbeat is
-- TRADERCTL_WORKER_STALLED_SECONDS old; rows that stay here mean no worker is running recovery.
-- `traderctl requeue --stalled` does it now (--dry-run lists what it would touch).
select job_id, queue_name, task_name, args, attempts, worker_id, last_heartbeat,
       heartbeat_age_s
from ops.stalled_jobs;
