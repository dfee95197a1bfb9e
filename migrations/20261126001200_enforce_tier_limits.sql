-- Tier limits enforced by the database, whoever writes: the frontend (role authenticated),
-- the service role, an admin in the SQL editor.
--
--   * max_enabled_traders: inserting an enabled trader, or enabling one, fails when the
--     owner already has that many enabled ("free tier allows 3 enabled traders; 3 are
--     enabled"), SQLSTATE 23514 (check_violation) with DETAIL and HINT, which PostgREST
--     returns to the browser as a 400 with the message.
--   * Downgrades: when a user's tier changes (or their user_tiers row is deleted, which
--     means free) and they have more enabled traders than the new tier allows, the newest
--     extra traders are disabled with disabled_reason set; the oldest ones keep running.
--     Re-enabling one is then refused until another is disabled (the limit applies).
--
-- Concurrency: two transactions enabling a free user's 3rd and 4th trader at once would
-- each count 2 and both pass. The trigger takes a transaction-scoped advisory lock per
-- user first, so the second waits for the first to commit and then counts 3. (The count
-- runs in a fresh statement snapshot, as plpgsql does under READ COMMITTED, the default.)
-- The lock key is (classid 7411, hashtext(user_id)); 7411 namespaces it from other
-- advisory locks of the project.

create function backend.lock_user_traders(p_user_id uuid) returns void
language sql
volatile
set search_path = ''
as $$
    select pg_catalog.pg_advisory_xact_lock(7411, pg_catalog.hashtext(p_user_id::text))
$$;
comment on function backend.lock_user_traders(uuid) is
    'Transaction-scoped advisory lock serializing changes to one user''s enabled traders.';

create function backend.traders_enforce_tier_limit() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_tier text;
    v_max integer;
    v_enabled integer;
begin
    -- Only a trader becoming enabled (or moving to another user while enabled) counts.
    if not new.enabled
        or (tg_op = 'UPDATE' and old.enabled and old.user_id = new.user_id) then
        return new;
    end if;

    select tr.name, tr.max_enabled_traders into v_tier, v_max
    from public.tiers tr
    where tr.name = coalesce(
        (select ut.tier from public.user_tiers ut where ut.user_id = new.user_id), 'free');
    if v_max is null then
        return new;  -- unlimited (elite): no lock, no count, so bulk loads stay fast
    end if;

    perform backend.lock_user_traders(new.user_id);
    -- Rows written earlier in the same statement are visible here (row-level BEFORE
    -- trigger), so a multi-row INSERT is counted row by row too.
    select count(*)::integer into v_enabled
    from public.traders t
    where t.user_id = new.user_id and t.enabled and t.id <> new.id;

    if v_enabled >= v_max then
        raise exception '% tier allows % enabled trader%; % % enabled',
                v_tier, v_max, case when v_max = 1 then '' else 's' end,
                v_enabled, case when v_enabled = 1 then 'is' else 'are' end
            using errcode = 'check_violation',
                  detail = format('User %s is on the %s tier (max_enabled_traders = %s); '
                                  'trader %s was not enabled.',
                                  new.user_id, v_tier, v_max, new.id),
                  hint = 'Disable another trader first, or upgrade the tier.';
    end if;
    return new;
end
$$;
comment on function backend.traders_enforce_tier_limit() is
    'BEFORE INSERT/UPDATE OF enabled, user_id on public.traders: refuses to exceed the owner''s '
    'tiers.max_enabled_traders (SQLSTATE 23514, with DETAIL and HINT).';

create trigger traders_enforce_tier_limit
    before insert or update of enabled, user_id on public.traders
    for each row execute function backend.traders_enforce_tier_limit();


-- Downgrade policy: keep the oldest max_enabled_traders enabled, disable the newest rest.
create function backend.apply_tier_to_traders(p_user_id uuid) returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_tier text;
    v_max integer;
    v_disabled integer;
begin
    select tr.name, tr.max_enabled_traders into v_tier, v_max
    from public.tiers tr
    where tr.name = coalesce(
        (select ut.tier from public.user_tiers ut where ut.user_id = p_user_id), 'free');
    if v_max is null then
        return 0;
    end if;
    perform backend.lock_user_traders(p_user_id);

    with ranked as (
        -- Served by traders_user_id_enabled_idx (user_id, created_at) WHERE enabled.
        select t.id, row_number() over (order by t.created_at, t.id) as rn
        from public.traders t
        where t.user_id = p_user_id and t.enabled
    )
    update public.traders t
    set enabled = false,
        disabled_reason = format(
            'tier limit: the %s tier allows %s enabled trader%s; the newest extra traders '
            'were disabled when the tier changed on %s',
            v_tier, v_max, case when v_max = 1 then '' else 's' end,
            to_char(now() at time zone 'UTC', 'YYYY-MM-DD HH24:MI "UTC"'))
    from ranked r
    where t.id = r.id and r.rn > v_max;
    get diagnostics v_disabled = row_count;
    return v_disabled;
end
$$;
comment on function backend.apply_tier_to_traders(uuid) is
    'Disable the user''s newest enabled traders beyond their tier''s max_enabled_traders, '
    'setting disabled_reason; returns how many were disabled.';

create function backend.user_tiers_apply_downgrade() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    -- Deleting the row puts the user on free, unless the user itself is being deleted:
    -- the cascade from auth.users removes the traders, so leave them alone.
    if tg_op = 'DELETE' and not exists (select from auth.users u where u.id = old.user_id) then
        return null;
    end if;
    perform backend.apply_tier_to_traders(
        case when tg_op = 'DELETE' then old.user_id else new.user_id end);
    return null;
end
$$;
comment on function backend.user_tiers_apply_downgrade() is
    'AFTER INSERT/UPDATE OF tier/DELETE on public.user_tiers: applies the new tier''s '
    'max_enabled_traders (see backend.apply_tier_to_traders).';

create trigger user_tiers_apply_downgrade
    after insert or update of tier, user_id or delete on public.user_tiers
    for each row execute function backend.user_tiers_apply_downgrade();

revoke all on function backend.lock_user_traders(uuid) from public, anon, authenticated;
revoke all on function backend.apply_tier_to_traders(uuid) from public, anon, authenticated;
revoke all on function backend.traders_enforce_tier_limit() from public, anon, authenticated;
revoke all on function backend.user_tiers_apply_downgrade() from public, anon, authenticated;
