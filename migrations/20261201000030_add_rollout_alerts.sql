-- Two alerts of the rollout, added to ops.alerts without restating its other conditions.
--
--   backend_fallback        critical  the backend is unhealthy and server traders run in
--                                     the browser (public.backend_health.reasons says why)
--   parity_below_threshold  warning   a tier's browser/server agreement over the last 24 h
--                                     is below rollout_settings.parity_threshold, over at
--                                     least parity_min_sample paired runs
--
-- The existing view is renamed to ops.alerts_core (its definition is unchanged) and
-- ops.alerts becomes the union of it and ops.rollout_alerts: same columns, same contract
-- for `traderctl stats --check`.

alter view ops.alerts rename to alerts_core;

create view ops.rollout_alerts as
select
    'backend_fallback'::text as alert,
    'critical'::text as severity,
    'backend'::text as subject,
    extract(epoch from now() - h.since)::double precision as value,
    null::double precision as threshold,
    format('backend %s since %s: %s. Server traders run in the browser until every check '
           'passes for %s s; see `traderctl rollout show`',
           h.status, h.since, array_to_string(h.reasons, '; '), s.hold_s) as detail
from public.backend_health h
cross join backend.rollout_settings s
where h.fallback_active

union all
select
    'parity_below_threshold', 'warning', p.tier,
    avg(p.agree::int)::double precision, s.parity_threshold,
    format('%s of %s paired runs of tier %s agreed with the browser in the last 24 h '
           '(%s%%, threshold %s%%); see `traderctl rollout parity --tier %s`',
           count(*) filter (where p.agree), count(*), p.tier,
           round(avg(p.agree::int) * 100, 2), round((s.parity_threshold * 100)::numeric, 2),
           p.tier)
from ops.parity_pairs p
cross join backend.rollout_settings s
where p.slot > now() - interval '24 hours'
group by p.tier, s.parity_threshold, s.parity_min_sample
having count(*) >= s.parity_min_sample and avg(p.agree::int) < s.parity_threshold;
comment on view ops.rollout_alerts is
    'Rollout alerts: backend fallback active; browser/server parity below threshold.';

create view ops.alerts as
select alert, severity, subject, value, threshold, detail from ops.alerts_core
union all
select alert, severity, subject, value, threshold, detail from ops.rollout_alerts;
comment on view ops.alerts is
    'One row per condition that needs an operator now (ops.alerts_core + ops.rollout_alerts).';

-- Same privileges as the other ops views: service_role reads them, the API roles never.
revoke all on ops.rollout_alerts, ops.alerts, ops.parity_pairs, ops.parity_by_trader,
    ops.parity_by_tier from public, anon, authenticated;
do $$
begin
    if exists (select from pg_roles where rolname = 'service_role') then
        grant select on ops.rollout_alerts, ops.alerts, ops.parity_pairs,
            ops.parity_by_trader, ops.parity_by_tier to service_role;
    end if;
end
$$;
