"""A rollout end to end: real scheduler ticks, real workers, real V8, users' own view.

The steps of docs/rollout.md on a small population: everyone in the browser (nothing
runs), everyone in shadow (everything runs, nobody sees it), free tier 50 % on the server
(those users see their signals, the rest do not), everyone on the server. At each step
the test checks which traders the tick enqueued and which signals each user can read
through RLS, as the frontend would.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.factories import make_trader, make_user, publish_market
from tests.worker_support import minute, wait_until, worker_procs
from traderctl.worker.admin.rollout import set_default_mode, set_tier_mode

pytestmark = pytest.mark.slow

Conn = psycopg.Connection[Any]
#: Matches symbols whose last price is above 100.
ABOVE_100 = "return parseFloat(ticker.c) > 100;"


def _tick(conn: Conn, at: datetime) -> set[uuid.UUID]:
    """Run the scheduler for minute ``at``; the traders it enqueued (a job a worker already
    committed is gone, deleted with the commit: its run row stands for it)."""
    conn.execute("select * from backend.schedule_due_traders(%s)", (at,))
    rows = conn.execute(
        "select (args ->> 'trader_id')::uuid from procrastinate.procrastinate_jobs "
        "where args ->> 'slot' = %s"
        " union select trader_id from public.trader_runs where slot = %s",
        (at.strftime("%Y-%m-%dT%H:%M:%S+00:00"), at),
    ).fetchall()
    return {r[0] for r in rows}


def _all_done(conn: Conn) -> bool:
    row = conn.execute(
        "select count(*) from procrastinate.procrastinate_jobs where status in ('todo', 'doing')"
    ).fetchone()
    return row == (0,)


def _visible_signals(conn: Conn, user: uuid.UUID) -> set[tuple[datetime, str]]:
    """What the frontend of ``user`` reads from public.signals (RLS applies)."""
    with conn.transaction():
        conn.execute("set local role authenticated")
        conn.execute(
            "select set_config('request.jwt.claims', %s, true)",
            (json.dumps({"sub": str(user), "role": "authenticated"}),),
        )
        rows = conn.execute("select slot, symbol from public.signals").fetchall()
    return {(r[0], r[1]) for r in rows}


def test_rollout_from_browser_to_server(conn: Conn, db_url: str, tmp_path: Path) -> None:
    conn.execute(
        "update backend.rollout_settings set default_mode = 'browser', fallback_enabled = false"
    )
    free = [make_user(conn) for _ in range(16)]
    pro = [make_user(conn, tier="pro") for _ in range(4)]
    trader_of = {u: make_trader(conn, user_id=u, code=ABOVE_100) for u in free + pro}
    everyone = set(trader_of.values())

    start = minute(datetime.now(UTC)) - timedelta(minutes=30)
    steps = [start + timedelta(minutes=i) for i in range(4)]
    prices = {"AAAUSDT": 50.0, "BBBUSDT": 50.0, "CCCUSDT": 50.0}

    with worker_procs(db_url, tmp_path) as procs:
        worker = procs.start("--intervals", "1m")

        # 1. Fresh install: everyone in the browser, the backend runs nothing.
        publish_market(conn, prices, closed_through=steps[0])
        assert _tick(conn, steps[0]) == set()

        # 2. Everyone in shadow: every trader runs, nobody sees a signal.
        set_default_mode(conn, "shadow")
        prices["AAAUSDT"] = 150.0
        publish_market(conn, prices, closed_through=steps[1])
        assert _tick(conn, steps[1]) == everyone
        wait_until(lambda: _all_done(conn), timeout=60)
        shadow_runs = conn.execute(
            "select count(*) from public.trader_runs where shadow and slot = %s", (steps[1],)
        ).fetchone()
        assert shadow_runs == (len(everyone),)
        assert all(_visible_signals(conn, u) == set() for u in free + pro)

        # 3. Free tier: half on the server, the rest stays in shadow; pro untouched.
        set_tier_mode(conn, "free", "shadow", 100)
        set_tier_mode(conn, "free", "server", 50)
        on_server = {
            r[0]
            for r in conn.execute(
                "select user_id from public.trader_modes where mode = 'server'"
            ).fetchall()
        }
        assert on_server < set(free) and 3 <= len(on_server) <= 13
        prices["BBBUSDT"] = 150.0
        publish_market(conn, prices, closed_through=steps[2])
        assert _tick(conn, steps[2]) == everyone
        wait_until(lambda: _all_done(conn), timeout=60)
        for user in free + pro:
            # AAA matched in shadow at step 2, so the only new edge is BBB.
            expected = {(steps[2], "BBBUSDT")} if user in on_server else set()
            assert _visible_signals(conn, user) == expected, user

        # 4. Everyone on the server.
        set_default_mode(conn, "server")
        set_tier_mode(conn, "free", "server", 100)
        prices["CCCUSDT"] = 150.0
        publish_market(conn, prices, closed_through=steps[3])
        assert _tick(conn, steps[3]) == everyone
        wait_until(lambda: _all_done(conn), timeout=60)
        for user in free + pro:
            expected = {(steps[3], "CCCUSDT")}
            if user in on_server:
                expected.add((steps[2], "BBBUSDT"))
            assert _visible_signals(conn, user) == expected, user
        assert procs.stop(worker) == 0

    # Every (trader, slot) ran exactly once, and nothing failed.
    counts = conn.execute(
        "select count(*), count(distinct (trader_id, slot)), count(*) filter "
        "(where status <> 'ok') from public.trader_runs"
    ).fetchone()
    assert counts == (3 * len(everyone), 3 * len(everyone), 0)
