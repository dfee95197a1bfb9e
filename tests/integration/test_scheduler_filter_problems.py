"""Filters the backend cannot run are flagged (schedule_problem), never enqueued, never charged.

A code that is not a string, a filter that is not an object, or requiredTimeframes that
name no interval used to be enqueued every tick (using the owner's hourly cap) or to run
"ok" on nothing. backend.schedule_problem(filter) now flags them; the tick and the
first-run trigger skip flagged traders.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import psycopg
import pytest

from tests.factories import make_trader, make_user
from tests.integration.test_rls import acting_as
from tests.integration.test_scheduler import job_for, jobs, tick_only

Conn = psycopg.Connection[Any]

INTERVALS = "1m, 5m, 15m, 30m, 1h, 4h, 1d"
NOT_SCHEDULED = "(the trader is not scheduled until fixed)"

BAD_FILTERS = [
    (
        "[1, 2]",
        'the filter must be a JSON object such as {"code": "return true;", '
        '"refreshInterval": "5m"}, got array [1, 2]; save the trader with an object filter',
    ),
    ('"return true;"', "the filter must be a JSON object such as {"),
    (
        "null",
        'the filter must be a JSON object such as {"code": "return true;", '
        '"refreshInterval": "5m"}, got null; save the trader with an object filter',
    ),
    ('{"code": 42}', "code must be a string of JavaScript, got number 42; save the filter's code"),
    ('{"code": {"a": 1}}', 'code must be a string of JavaScript, got object {"a": 1};'),
    ('{"code": ["return true;"]}', "code must be a string of JavaScript, got array"),
    ('{"code": true}', "code must be a string of JavaScript, got boolean true;"),
    (
        '{"code": "return true;", "requiredTimeframes": "5m"}',
        'requiredTimeframes must be an array of intervals such as ["5m", "1h"], got string "5m"',
    ),
    (
        '{"code": "return true;", "requiredTimeframes": {"5m": true}}',
        "requiredTimeframes must be an array of intervals such as",
    ),
    (
        '{"code": "return true;", "requiredTimeframes": []}',
        "requiredTimeframes is empty, so the filter would get no candles and match nothing",
    ),
    (
        '{"code": "return true;", "requiredTimeframes": ["garbage"]}',
        f"requiredTimeframes contains 'garbage', which is not an interval; use only {INTERVALS}",
    ),
    (
        '{"code": "return true;", "requiredTimeframes": ["5m", "2m", "x"]}',
        "requiredTimeframes contains '2m', which is not an interval",
    ),
    (
        '{"code": "return true;", "requiredTimeframes": ["5m", 5]}',
        "requiredTimeframes contains number 5, which is not an interval",
    ),
    (
        '{"code": "return true;", "requiredTimeframes": ["1h", null]}',
        "requiredTimeframes contains null, which is not an interval",
    ),
]


def insert_raw(conn: Conn, user: uuid.UUID, filter_json: str) -> uuid.UUID:
    """A trader with exactly this filter JSON; the immediate first-run trigger stays on."""
    row = conn.execute(
        "insert into public.traders (user_id, name, enabled, filter)"
        " values (%s, 'bad', true, %s::jsonb) returning id",
        (user, filter_json),
    ).fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


def problem(conn: Conn, trader: uuid.UUID) -> str | None:
    row = conn.execute(
        "select schedule_problem from public.traders where id = %s", (trader,)
    ).fetchone()
    assert row is not None
    return row[0]


def hourly(conn: Conn, user: uuid.UUID) -> list[tuple[Any, ...]]:
    rows = conn.execute(
        "select hour, enqueued, skipped_hourly_cap from backend.user_hourly_executions"
        " where user_id = %s order by hour",
        (user,),
    ).fetchall()
    return [tuple(r) for r in rows]


@pytest.mark.parametrize(("filter_json", "message"), BAD_FILTERS)
def test_bad_filter_is_flagged_never_enqueued_and_costs_no_cap(
    conn: Conn, filter_json: str, message: str
) -> None:
    user = make_user(conn, tier="free")  # capped: every enqueue is counted
    bad = insert_raw(conn, user, filter_json)
    flagged = problem(conn, bad)
    assert flagged is not None and flagged.startswith(message), flagged
    assert flagged.endswith(NOT_SCHEDULED)
    # The first-run trigger did not enqueue it nor count it.
    assert job_for(conn, bad) == [] and hourly(conn, user) == []

    good = make_trader(conn, user_id=user, interval="1m")
    tick_only(conn, "2026-11-27T00:00:00Z")  # every interval is due at midnight
    assert [j["args"]["trader_id"] for j in jobs(conn)] == [str(good)]
    assert [row[1:] for row in hourly(conn, user)] == [(1, 0)]  # the good trader only


def test_good_filters_are_not_flagged(conn: Conn) -> None:
    user = make_user(conn, tier="elite")
    fine = [
        '{"code": "return true;"}',
        '{"code": "return true;", "requiredTimeframes": null}',
        '{"code": "return true;", "requiredTimeframes": ["1m", "5m", "30m", "1d"]}',
        '{"code": "return true;", "refreshInterval": "", "requiredTimeframes": ["4h"]}',
        '{"code": null}',  # no code: not run, but nothing for the user to fix
        '{"code": "   "}',
        "{}",
    ]
    for filter_json in fine:
        assert problem(conn, insert_raw(conn, user, filter_json)) is None, filter_json


def test_refresh_interval_messages_are_unchanged(conn: Conn) -> None:
    user = make_user(conn, tier="elite")
    bad = insert_raw(conn, user, '{"code": "return true;", "refreshInterval": "2m"}')
    assert (
        problem(conn, bad)
        == f"unknown refreshInterval '2m'; use one of {INTERVALS} {NOT_SCHEDULED}"
    )
    numeric = insert_raw(conn, user, '{"code": "return true;", "refreshInterval": 5}')
    assert (
        problem(conn, numeric)
        == f"refreshInterval must be a string, got number 5; use one of {INTERVALS}"
    )
    # A bad interval is reported before bad timeframes; a bad code before both.
    both = insert_raw(conn, user, '{"code": 1, "refreshInterval": "2m", "requiredTimeframes": []}')
    assert (problem(conn, both) or "").startswith("code must be a string")


def test_user_saving_a_bad_filter_sees_the_problem_and_clears_it(conn: Conn) -> None:
    user = make_user(conn, tier="free")
    with acting_as(conn, "authenticated", user):
        row = conn.execute(
            "insert into public.traders (name, filter) values ('mine', %s)"
            " returning id, schedule_problem",
            (json.dumps({"code": "return true;", "requiredTimeframes": []}),),
        ).fetchone()
        assert row is not None
        trader, flagged = row
        assert flagged.startswith("requiredTimeframes is empty")
        row = conn.execute(
            "update public.traders set filter = %s where id = %s returning schedule_problem",
            (json.dumps({"code": 7}), trader),
        ).fetchone()
        assert row is not None and row[0].startswith("code must be a string of JavaScript")
        row = conn.execute(
            "update public.traders set filter = %s where id = %s returning schedule_problem",
            (json.dumps({"code": "return true;", "requiredTimeframes": ["5m"]}), trader),
        ).fetchone()
        assert row == (None,)
