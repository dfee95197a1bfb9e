-- How deep is each queue, and how long has its oldest job waited?
--
-- waiting  = todo jobs due now (the backlog a worker would claim next)
-- delayed  = todo jobs scheduled later (retries backing off)
-- running  = doing
-- oldest_waiting_age_s: seconds since the oldest waiting job became claimable. Under 60 s
-- is normal right after a tick; above 120 s raises the queue_backlog alert: add workers
-- for that queue (`traderctl worker --queues traders.1m`) or check they are alive. Every
-- traders.<interval> queue is listed, with zeros when empty. The same numbers are the
-- Prometheus gauges traderctl_queue_*{queue} used for autoscaling.
select queue_name, waiting, delayed, running, oldest_waiting_since, oldest_waiting_age_s
from ops.queue_depth;
