"""The queue contract: queue names, task name, job arguments, locks, and procrastinate's connector."""
