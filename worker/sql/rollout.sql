-- Rollout: execution modes by tier, per-user overrides, health and parity
-- (worker/admin/rollout.py, `traderctl rollout`).

-- name: rollout_settings
-- The single settings row (default mode, fallback thresholds, parity and report limits).
select default_mode, fallback_enabled, tick_missing_after_s, lag_p99_threshold_s,
       worker_alive_s, hold_s, parity_threshold, parity_min_sample, report_max_symbols,
       report_max_per_minute, updated_at
from backend.rollout_settings;

-- name: rollout_rules
-- Every tier with its rule (NULL percentages: no rule, the default mode applies).
select t.name as tier, r.shadow_percent::float8 as shadow_percent,
       r.server_percent::float8 as server_percent, r.updated_at
from public.tiers t
left join backend.rollout_rules r on r.tier = t.name
order by t.queue_priority;

-- name: rollout_mode_counts
-- Users and traders per tier and effective mode.
select coalesce(ut.tier, 'free') as tier, m.mode, count(distinct m.user_id)::int as users,
       count(*)::int as traders,
       count(*) filter (where m.source = 'fallback')::int as in_fallback
from public.trader_modes m
left join public.user_tiers ut on ut.user_id = m.user_id
group by 1, 2
order by 1, 2;

-- name: rollout_health
-- The backend health row the frontend reads.
select status, fallback_active, reasons, since, checked_at, passing_since
from public.backend_health;

-- name: rollout_evaluate_health
-- Evaluate health now (what the pg_cron job does every minute).
select status, fallback_active, reasons from backend.evaluate_health();

-- name: rollout_tier_exists
-- Is %(tier)s a tier?
select exists (select from public.tiers where name = %(tier)s) as found;

-- name: rollout_snapshot_modes
-- Remember every trader's mode in this transaction, to report who moves.
create temp table rollout_before on commit drop as
select trader_id, user_id, mode from public.trader_modes;

-- name: rollout_moves
-- Traders and users whose effective mode differs from rollout_before.
select b.mode as from_mode, m.mode as to_mode, count(*)::int as traders,
       count(distinct m.user_id)::int as users
from rollout_before b
join public.trader_modes m on m.trader_id = b.trader_id
where m.mode <> b.mode
group by 1, 2
order by 1, 2;

-- name: rollout_upsert_rule
-- Set a tier's percentages (NULL keeps the current value; a new rule starts at 0/0).
insert into backend.rollout_rules as r (tier, shadow_percent, server_percent)
values (%(tier)s, coalesce(%(shadow)s, 0), coalesce(%(server)s, 0))
on conflict (tier) do update
    set shadow_percent = coalesce(%(shadow)s, r.shadow_percent),
        server_percent = coalesce(%(server)s, r.server_percent),
        updated_at = now()
returning tier, shadow_percent::float8 as shadow_percent, server_percent::float8 as server_percent;

-- name: rollout_upsert_override
-- Set one user's mode.
insert into backend.rollout_overrides as o (user_id, mode)
values (%(user_id)s, %(mode)s)
on conflict (user_id) do update set mode = excluded.mode, updated_at = now();

-- name: rollout_delete_override
-- Remove one user's override (tier rules apply again).
delete from backend.rollout_overrides where user_id = %(user_id)s;

-- name: rollout_set_default_mode
-- The mode of traders whose tier has no rule and whose user has no override.
update backend.rollout_settings set default_mode = %(mode)s, updated_at = now();

-- name: rollout_update_settings
-- Change health and parity thresholds (NULL keeps a value).
update backend.rollout_settings
set fallback_enabled = coalesce(%(fallback_enabled)s, fallback_enabled),
    tick_missing_after_s = coalesce(%(tick_missing_after_s)s, tick_missing_after_s),
    lag_p99_threshold_s = coalesce(%(lag_p99_threshold_s)s, lag_p99_threshold_s),
    worker_alive_s = coalesce(%(worker_alive_s)s, worker_alive_s),
    hold_s = coalesce(%(hold_s)s, hold_s),
    parity_threshold = coalesce(%(parity_threshold)s, parity_threshold),
    parity_min_sample = coalesce(%(parity_min_sample)s, parity_min_sample),
    updated_at = now();

-- name: rollout_log
-- Record a rollout change with its cause.
insert into backend.rollout_log (kind, subject, detail) values (%(kind)s, %(subject)s, %(detail)s);

-- name: rollout_recent_log
-- The latest rollout changes and health transitions.
select at, kind, subject, detail from backend.rollout_log order by at desc, id desc limit %(limit)s;

-- name: rollout_parity_by_tier
-- Agreement per tier since %(since)s (paired browser reports and shadow runs).
select p.tier, count(*)::int as pairs, count(*) filter (where p.agree)::int as agreeing,
       round(avg(p.agree::int)::numeric, 4)::float8 as agreement,
       count(distinct p.trader_id)::int as traders,
       count(distinct p.trader_id) filter (where not p.agree)::int as traders_differing
from ops.parity_pairs p
where p.slot >= %(since)s and (%(tier)s::text is null or p.tier = %(tier)s)
group by p.tier
order by p.tier;

-- name: rollout_parity_by_trader
-- Agreement per trader since %(since)s, least agreeing first, with the differing symbols.
with pairs as (
    select * from ops.parity_pairs p
    where p.slot >= %(since)s and (%(tier)s::text is null or p.tier = %(tier)s)
)
select p.trader_id, p.tier, count(*)::int as pairs,
       count(*) filter (where p.agree)::int as agreeing,
       round(avg(p.agree::int)::numeric, 4)::float8 as agreement,
       coalesce((select array_agg(distinct s.symbol order by s.symbol)
                 from pairs q, unnest(q.only_browser || q.only_server) as s(symbol)
                 where q.trader_id = p.trader_id), '{}') as differing_symbols
from pairs p
group by p.trader_id, p.tier
order by agreement, pairs desc, p.trader_id
limit %(limit)s;

-- name: rollout_mode_metrics
-- Traders per tier and effective mode, and parity agreement per tier over the last day.
select 'mode' as kind, coalesce(ut.tier, 'free') as tier, m.mode as label,
       count(*)::float8 as value
from public.trader_modes m
left join public.user_tiers ut on ut.user_id = m.user_id
group by 2, 3
union all
select 'parity', p.tier, null, avg(p.agree::int)::float8
from ops.parity_pairs p
where p.slot > now() - interval '1 day'
group by p.tier;
