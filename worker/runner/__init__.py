"""The trader worker: batch claim, evaluate, commit loop, the process pool, and queue maintenance."""
