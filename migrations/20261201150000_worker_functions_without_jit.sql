-- The batch worker's claim and commit functions run with jit = off.
--
-- Why: these statements are planned without their parameter values (the claim is a SQL
-- function, so its LIMIT and queue list are unknown to the planner; the commit's
-- statements are plpgsql's cached plans), so their estimated cost follows the table
-- statistics, not the 32 rows a batch touches. Once an autoanalyze in the middle of a
-- large tick has seen tens of thousands of waiting jobs, the claim's generic plan is
-- costed above jit_above_cost (100,000 by default) and every claim compiles it with LLVM
-- first: ~24 ms of JIT (emission ~20 ms) for a statement that runs in ~4 ms. That was the
-- "claim excursion" of the 100,000-trader bench (claims at 22-34 ms for 10-30 s mid-tick,
-- until the next ANALYZE brought the estimate back under the threshold). Reproduced on
-- demand: 100,000 waiting jobs and a fresh ANALYZE make claims of 32 take 27-30 ms with
-- jit = on and 3.8-4.0 ms with jit = off, same plan. The commit functions get the same
-- setting so that their cost cannot take that cliff as signals and runs grow. The
-- rollout functions (20261201000010_create_rollout.sql) already run this way, for the
-- same reason. A later `create or replace` of these functions must repeat `set jit = off`
-- (it replaces the function's settings); tests/integration/test_worker_faults.py checks.

alter function backend.claim_trader_jobs(character varying[], bigint, integer)
    set jit = off;

alter function backend.commit_trader_runs(jsonb, text, integer, bigint, bigint[], boolean)
    set jit = off;

alter function backend.commit_held_trader_runs(jsonb, text, integer, bigint, bigint[], boolean)
    set jit = off;
