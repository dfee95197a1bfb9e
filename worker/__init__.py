"""The traderctl runtime: config, database access, scheduler glue, JS sandbox, workers."""
