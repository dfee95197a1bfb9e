"""What the worker reads per batch: claimed jobs and their traders, the usual case fast.

A claimed job's args in the form the enqueue function writes are read with one regular
expression (worker/runner/job.py), and ``load_traders`` hands a filter's
``refreshInterval`` and ``requiredTimeframes`` over as plain text when they are strings
(worker/runner/spec.py); anything else takes the full, slower reading. These tests hold the
two paths to one meaning: every job and filter reads the same as it did when the worker
decoded all of them in full.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

import psycopg
import pytest

from tests.factories import make_trader, make_user
from tests.worker_support import base_slot, enqueue, enqueue_raw, slot_text
from traderctl.worker.errors import InvalidJob
from traderctl.worker.queue import manager
from traderctl.worker.queue.contract import trader_queue
from traderctl.worker.runner import job as job_module
from traderctl.worker.runner.job import TraderJob
from traderctl.worker.runner.spec import load_specs


def _claim_all(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    worker_id = manager.register_worker(conn)
    return manager.claim_jobs(conn, [trader_queue("1m")], worker_id, 100)


def _parsed_in_python(row: Mapping[str, Any], args: Any) -> TraderJob:
    """The job as the worker read every job before Postgres decoded the common case."""
    return TraderJob.from_args(
        job_id=int(row["id"]),
        args=args,
        queue_name=str(row["queue_name"]),
        task_name=row["task_name"],
        attempts=int(row["attempts"]),
        priority=int(row["priority"]),
    )


def test_claimed_jobs_read_the_same_on_both_paths(conn: psycopg.Connection[Any]) -> None:
    user = make_user(conn, tier="elite")
    trader = make_trader(conn, user_id=user)
    slot = base_slot()
    tid, text = str(trader), slot_text(slot)
    sent = {
        enqueue(conn, trader, slot): {"trader_id": tid, "slot": text},
        # Valid, but not how the enqueue function writes them: the full check reads them.
        enqueue_raw(conn, json.dumps({"trader_id": tid.upper(), "slot": text})): {
            "trader_id": tid.upper(),
            "slot": text,
        },
        enqueue_raw(conn, json.dumps({"slot": text.replace("+00:00", "Z"), "trader_id": tid})): {
            "slot": text.replace("+00:00", "Z"),
            "trader_id": tid,
        },
    }
    rows = {int(r["id"]): r for r in _claim_all(conn)}
    assert set(rows) == set(sent)
    usual = [job for job, row in rows.items() if job_module._USUAL.fullmatch(row["args_text"])]
    assert usual == [min(sent)], "the enqueue function's own format is read by the regex"
    for job, args in sent.items():
        assert TraderJob.from_row(rows[job]) == _parsed_in_python(rows[job], args)
        assert TraderJob.from_row(rows[job]).slot_text == text


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        # Shaped like the enqueue function's slot, but no such day: the full check says so.
        ({"slot": "2026-02-30T10:00:00+00:00"}, "is not an ISO-8601 timestamp"),
        ({"slot": "2026-12-01T10:00:30+00:00"}, "is not on a minute boundary"),
        ({"extra": 1}, "unexpected extra"),
        ({"trader_id": 7}, "is not a UUID string"),
        ({"slot": {"$date": "2026-12-01T10:00:00+00:00"}}, "is not an ISO-8601 string"),
        ({"trader_id": '"' + str(uuid.UUID(int=1))}, "is not a UUID"),
    ],
)
def test_claimed_jobs_that_are_malformed_still_fail_with_their_reason(
    conn: psycopg.Connection[Any], args: dict[str, Any], problem: str
) -> None:
    full = {"trader_id": str(uuid.uuid4()), "slot": slot_text(base_slot())} | args
    job = enqueue_raw(conn, json.dumps(full))
    (row,) = _claim_all(conn)
    assert row["id"] == job
    with pytest.raises(InvalidJob, match=problem):
        TraderJob.from_row(row)


def test_claimed_args_nested_too_deep_for_json_fail_alone(conn: psycopg.Connection[Any]) -> None:
    """Postgres stores nesting deeper than Python's json module reads back: such a job is
    malformed like any other, not a crash of the worker that claimed it."""
    job = enqueue_raw(conn, "[" * 3000 + "]" * 3000)
    (row,) = _claim_all(conn)
    assert row["id"] == job
    with pytest.raises(InvalidJob, match="nested too deeply"):
        TraderJob.from_row(row)


def test_claimed_args_with_a_number_json_cannot_read_fail_alone(
    conn: psycopg.Connection[Any],
) -> None:
    """jsonb keeps integers of any length; Python's json refuses those past 4,300 digits."""
    job = enqueue_raw(conn, '{"slot": 1' + "0" * 5000 + "}")
    (row,) = _claim_all(conn)
    assert row["id"] == job
    with pytest.raises(InvalidJob, match=r"cannot be read back as JSON .*4300 digits"):
        TraderJob.from_row(row)


@pytest.mark.parametrize(
    ("extra", "interval", "timeframes"),
    [
        ({"refreshInterval": "5m", "requiredTimeframes": ["1h", "4h"]}, "5m", ["1h", "4h"]),
        ({"refreshInterval": ""}, "1m", None),  # empty: the queue's interval
        ({"refreshInterval": None}, "1m", None),
        ({"refreshInterval": 15}, "15", None),  # not a string: read by the worker itself
        ({"requiredTimeframes": "1h"}, "1m", None),  # not a list: the default
        ({"requiredTimeframes": []}, "1m", []),
        ({"requiredTimeframes": ["1h", 5, None]}, "1m", ["1h", "5", "None"]),
    ],
)
def test_trader_filters_read_the_same_on_both_paths(
    conn: psycopg.Connection[Any],
    extra: dict[str, Any],
    interval: str,
    timeframes: list[str] | None,
) -> None:
    user = make_user(conn, tier="elite")
    trader = make_trader(conn, user_id=user, interval=None, extra=extra)
    slot = base_slot()
    enqueue(conn, trader, slot)
    (row,) = _claim_all(conn)
    (spec,) = load_specs(conn, [TraderJob.from_row(row)])
    assert spec.refresh_interval == interval
    assert spec.required_timeframes == timeframes
    assert spec.user_id == str(user)
    assert spec.code == "return true;"
