"""Bulk-create benchmark users spread over the tiers (shared by the scheduler and e2e benches)."""

from __future__ import annotations

from typing import Any

import psycopg

__all__ = ["create_bench_users"]


def create_bench_users(conn: psycopg.Connection[Any], *, free: int, pro: int, elite: int) -> None:
    """Insert free+pro+elite users and their tiers inside the caller's transaction.

    Leaves a temp table ``bench_users(id, n)`` (dropped at commit) numbering them 1..N:
    the first ``free`` are free, the next ``pro`` are pro, the rest elite.
    """
    conn.execute(
        "insert into auth.users (id, email)"
        " select gen_random_uuid(), 'bench' || i || '@example.com'"
        " from generate_series(1, %s) i",
        (free + pro + elite,),
    )
    conn.execute(
        "create temp table bench_users on commit drop as"
        " select id, row_number() over (order by id) as n from auth.users"
    )
    conn.execute(
        "insert into public.user_tiers (user_id, tier)"
        " select id, case when n <= %s then 'free' when n <= %s then 'pro' else 'elite' end"
        " from bench_users",
        (free, free + pro),
    )
