"""backend.commit_trader_runs on whole batches: the edges a set-based commit must keep.

The function commits a batch with one statement per table (several rounds when a batch
holds several slots of one trader). These tests pin what a per-run loop gave for free:
slots of one trader applied oldest first, duplicates inside a batch, out-of-order runs
after an unchanged match set, and match state rewritten only when it changes.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.factories import make_trader, make_user, run_record
from tests.worker_support import signals_of
from traderctl.worker.admin.rollout import set_user_mode

Conn = psycopg.Connection[Any]
SLOT = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def _commit(conn: Conn, records: list[dict[str, Any]], disable_after: int = 10) -> dict[int, Any]:
    rows = conn.execute(
        "select job_id, trader_id, run_id, outcome, signals"
        " from backend.commit_trader_runs(%s::jsonb, 'test', %s, null, '{}')",
        (json.dumps(records), disable_after),
    ).fetchall()
    assert len(rows) == len(records)
    return {r[0]: (r[3], r[4]) for r in rows}


def _state(conn: Conn, trader: uuid.UUID) -> tuple[Any, ...] | None:
    return conn.execute(
        "select symbols, slot, xmin::text from public.trader_matches where trader_id = %s",
        (trader,),
    ).fetchone()


@pytest.fixture
def traders(conn: Conn) -> list[uuid.UUID]:
    user = make_user(conn, tier="elite")
    return [make_trader(conn, user_id=user, name=f"t{i}", code="return true;") for i in range(3)]


def test_several_slots_of_one_trader_in_a_batch_apply_oldest_first(
    conn: Conn, traders: list[uuid.UUID]
) -> None:
    a, b, _ = traders
    s1, s2, s3 = SLOT, SLOT + timedelta(minutes=1), SLOT + timedelta(minutes=2)
    # Given out of order, with another trader in between and a duplicate slot.
    out = _commit(
        conn,
        [
            run_record(a, s3, 3, ["X"]),
            run_record(b, s1, 10, ["Y"]),
            run_record(a, s1, 1, ["X", "Y"]),
            run_record(a, s2, 2, ["Y", "Z"]),
            run_record(a, s2, 4, ["Q"]),
        ],
    )
    assert out[1] == ("committed", 2)  # X, Y
    assert out[2] == ("committed", 1)  # Z (Y was already matching)
    assert out[3] == ("committed", 1)  # X again after a slot without it
    assert out[4] == ("duplicate", 0)  # same slot as job 2: nothing written
    assert out[10] == ("committed", 1)
    assert signals_of(conn, a) == [(s1, "X"), (s1, "Y"), (s2, "Z"), (s3, "X")]
    state = _state(conn, a)
    assert state is not None and state[:2] == (["X"], s3)
    counters = conn.execute(
        "select run_count, signal_count, last_slot from public.trader_stats where trader_id = %s",
        (a,),
    ).fetchone()
    assert counters == (3, 4, s3)


def test_unchanged_match_set_is_not_rewritten_and_late_runs_still_do_not_signal(
    conn: Conn, traders: list[uuid.UUID]
) -> None:
    a = traders[0]
    s1, s2, s3 = SLOT, SLOT + timedelta(minutes=1), SLOT + timedelta(minutes=2)
    _commit(conn, [run_record(a, s1, 1, ["A", "B"])])
    before = _state(conn, a)
    # Same set, other order: no signal, and the stored state is left as it was.
    assert _commit(conn, [run_record(a, s3, 3, ["B", "A"])]) == {3: ("committed", 0)}
    assert _state(conn, a) == before
    # s2 arrives late (a retried job). The state's slot is still s1, but s3 ran: no
    # signal for C and no rewind, as if the state had moved to s3.
    assert _commit(conn, [run_record(a, s2, 2, ["A", "C"])]) == {2: ("committed", 0)}
    assert _state(conn, a) == before
    assert signals_of(conn, a) == [(s1, "A"), (s1, "B")]
    # The next slot compares with the latest successful run's set.
    s4 = s3 + timedelta(minutes=1)
    assert _commit(conn, [run_record(a, s4, 4, ["A", "C"])]) == {4: ("committed", 1)}
    state = _state(conn, a)
    assert state is not None and state[:2] == (["A", "C"], s4)


def test_failed_runs_do_not_move_the_edge_trigger(conn: Conn, traders: list[uuid.UUID]) -> None:
    a = traders[0]
    s1, s2, s3 = SLOT, SLOT + timedelta(minutes=1), SLOT + timedelta(minutes=2)
    _commit(conn, [run_record(a, s1, 1, ["A"])])
    _commit(conn, [run_record(a, s3, 3, [], status="error")])
    # s2 after a failed s3: still in order for the edge trigger (errors store no state).
    assert _commit(conn, [run_record(a, s2, 2, ["A", "B"])]) == {2: ("committed", 1)}
    assert signals_of(conn, a)[-1] == (s2, "B")


def test_batch_mixes_deleted_traders_errors_and_auto_disable(
    conn: Conn, traders: list[uuid.UUID]
) -> None:
    a, b, c = traders
    conn.execute("delete from public.traders where id = %s", (c,))
    _commit(
        conn,
        [run_record(b, SLOT, 1, [], status="error", error_message="TypeError: boom")],
        disable_after=2,
    )
    s2 = SLOT + timedelta(minutes=1)
    out = _commit(
        conn,
        [
            run_record(a, s2, 2, ["A"]),
            run_record(b, s2, 3, [], status="error", error_message="TypeError: boom"),
            run_record(c, s2, 4, ["A"]),
        ],
        disable_after=2,
    )
    assert out == {2: ("committed", 1), 3: ("committed", 0), 4: ("trader_deleted", 0)}
    rows = {
        r[0]: r[1:]
        for r in conn.execute(
            "select id, enabled, consecutive_errors, disabled_reason is not null"
            " from public.traders t join public.trader_stats s on s.trader_id = t.id where t.id = any(%s)",
            ([a, b],),
        ).fetchall()
    }
    assert rows[a] == (True, 0, False)
    assert rows[b] == (False, 2, True)
    reason = conn.execute(
        "select disabled_reason from public.traders where id = %s", (b,)
    ).fetchone()
    assert reason is not None and "2 consecutive failed runs" in reason[0]
    assert "TypeError: boom" in reason[0]


def test_moving_from_shadow_to_server_unhides_an_unchanged_match_state(conn: Conn) -> None:
    conn.execute("update backend.rollout_settings set default_mode = 'browser'")
    user = make_user(conn)
    trader = make_trader(conn, user_id=user, name="flip")
    set_user_mode(conn, str(user), "shadow")
    _commit(conn, [run_record(trader, SLOT, 1, ["A"])])
    set_user_mode(conn, str(user), "server")
    # Same set, no signal, but the state must now be the user's (shadow = false).
    assert _commit(conn, [run_record(trader, SLOT + timedelta(minutes=1), 2, ["A"])]) == {
        2: ("committed", 0)
    }
    row = conn.execute(
        "select symbols, shadow from public.trader_matches where trader_id = %s", (trader,)
    ).fetchone()
    assert row == (["A"], False)


def test_a_symbol_listed_twice_signals_once(conn: Conn, traders: list[uuid.UUID]) -> None:
    a = traders[0]
    out = _commit(conn, [run_record(a, SLOT, 1, ["A", "B", "A"])])
    assert out == {1: ("committed", 2)}
    assert signals_of(conn, a) == [(SLOT, "A"), (SLOT, "B")]
    run = conn.execute("select matches, signals from public.trader_runs").fetchone()
    assert run == (3, 2)
