"""A claimed trader job, parsed and checked against the queue contract.

The args format is the queue contract's (:mod:`traderctl.worker.queue.contract`). Anything
else (args that are not an object, missing or extra keys, a trader id that is not a UUID,
a slot that is not an ISO-8601 UTC minute, a task name other than ``run_trader``) raises
:class:`~traderctl.worker.errors.InvalidJob` naming the job and what is wrong, and nothing
else: the loop fails that job alone, without retrying it, and runs the rest of its batch.
A malformed job is a bug in whatever enqueued it; rerunning it cannot fix it, and it must
never cost its batch-mates their run.

The claim query (``claim_trader_jobs`` in worker/sql/worker.sql) returns the args as the
text Postgres writes for a jsonb value. Args exactly as ``backend.enqueue_trader_runs``
writes them (a lowercase canonical UUID and a slot like ``2026-12-01T18:00:00+00:00``, no
other key) have one text form, which one regular expression recognizes (:data:`_USUAL`);
:meth:`TraderJob.from_row` then only parses the slot. Anything else is decoded as JSON and
takes the full check below. Decoding every job's args and checking them key by key was
~6 % of a worker's Python time (py-spy, 10,000 runs); checking the same in SQL cost the
claim more than it saved.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from traderctl.worker.errors import InvalidJob
from traderctl.worker.intervals import INTERVAL_MS
from traderctl.worker.queue.contract import ARG_SLOT, ARG_TRADER_ID, TRADER_TASK, queue_interval

__all__ = ["TraderJob"]

#: What a valid job's args look like, for error messages.
_EXPECTED = f'{{"{ARG_TRADER_ID}": "<uuid>", "{ARG_SLOT}": "<ISO-8601 UTC minute>"}}'
#: Longest excerpt of bad args quoted in an error message.
_QUOTE_CHARS = 200
#: jsonb's text of well-formed args: keys in jsonb's order (shorter first), its separators.
#: Only exactly this object can print as a match: any other key, value type or escape
#: would show in the text.
_USUAL = re.compile(
    r'\{"slot": "([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:00\+00:00)", '
    r'"trader_id": "([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"\}'
)


def _excerpt(text: str) -> str:
    """At most _QUOTE_CHARS of ``text``, marked when cut."""
    return text if len(text) <= _QUOTE_CHARS else text[:_QUOTE_CHARS] + "…"


def _quote(value: Any) -> str:
    """Bad args as short JSON text for the error message (whatever their type)."""
    try:
        text = json.dumps(value, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return _excerpt(text)


def _malformed(job_id: int, queue_name: str, problem: str) -> InvalidJob:
    """The error of a job that breaks the queue contract, saying what to do about it."""
    return InvalidJob(
        f"job {job_id} on {queue_name} is malformed: {problem}. It is failed without "
        f"retry; whatever enqueued it must write args {_EXPECTED} through "
        "backend.enqueue_trader_runs."
    )


def _problem(task_name: str | None, args: Any) -> str | None:
    """What is wrong with a job's task name and args, or None when they are valid."""
    if task_name is not None and task_name != TRADER_TASK:
        return f"task {task_name!r} is not {TRADER_TASK!r}, the only task of a trader queue"
    if not isinstance(args, Mapping):
        return f"args {_quote(args)} are a JSON {type(args).__name__}, not an object"
    keys = set(args)
    missing = sorted({ARG_TRADER_ID, ARG_SLOT} - keys)
    extra = sorted(str(k) for k in keys - {ARG_TRADER_ID, ARG_SLOT})
    if missing or extra:
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + (
            [f"unexpected {', '.join(extra)}"] if extra else []
        )
        return f"args {_quote(args)}: {'; '.join(parts)}"
    trader_id, slot = args[ARG_TRADER_ID], args[ARG_SLOT]
    if not isinstance(trader_id, str):
        return f"{ARG_TRADER_ID} {_quote(trader_id)} is not a UUID string"
    try:
        uuid.UUID(trader_id)
    except ValueError:
        return f"{ARG_TRADER_ID} {_quote(trader_id)} is not a UUID"
    if not isinstance(slot, str):
        return f"{ARG_SLOT} {_quote(slot)} is not an ISO-8601 string"
    try:
        parsed = datetime.fromisoformat(slot.replace("Z", "+00:00"))
    except ValueError:
        return f"{ARG_SLOT} {_quote(slot)} is not an ISO-8601 timestamp"
    if parsed.second or parsed.microsecond:
        return f"{ARG_SLOT} {_quote(slot)} is not on a minute boundary"
    return None


@dataclass(frozen=True, kw_only=True)
class TraderJob:
    """One claimed run_trader job: run ``trader_id`` for ``slot``."""

    job_id: int
    trader_id: str
    slot: datetime
    queue_name: str
    attempts: int = 0
    priority: int = 0
    #: ``slot`` as ISO-8601 text ('2026-12-01T18:00:00+00:00'), the form queries take;
    #: worked out once here rather than by every query and run record.
    slot_text: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "slot_text", self.slot.isoformat())

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> TraderJob:
        """From a claimed row: ``args_text`` as the claim returns it, or ``args`` already
        decoded; raise InvalidJob."""
        known: dict[str, Any] = {
            "job_id": int(row["id"]),
            "queue_name": str(row["queue_name"]),
            "attempts": int(row.get("attempts") or 0),
            "priority": int(row.get("priority") or 0),
        }
        task_name = row.get("task_name")
        text = row.get("args_text")
        if text is None:
            args = row["args"]
        else:
            usual = _USUAL.fullmatch(text) if task_name == TRADER_TASK else None
            if usual is not None:
                slot_text, trader_id = usual.groups()
                try:
                    slot = datetime.fromisoformat(slot_text)
                except ValueError:  # shaped like a timestamp, but no such day or hour
                    pass
                else:
                    return cls(trader_id=trader_id, slot=slot, **known)
            # jsonb's text is valid JSON, but it holds what Python's json cannot read back:
            # nesting past the recursion limit, integers past 4,300 digits.
            try:
                args = json.loads(text)
            except (RecursionError, ValueError) as exc:
                problem = (
                    "are nested too deeply to read"
                    if isinstance(exc, RecursionError)
                    else f"cannot be read back as JSON ({exc})"
                )
                raise _malformed(
                    known["job_id"], known["queue_name"], f"args {_excerpt(text)} {problem}"
                ) from None
        return cls.from_args(args=args, task_name=task_name, **known)

    @classmethod
    def unparsable(cls, row: Mapping[str, Any]) -> TraderJob:
        """A stand-in for a row that does not parse, so it can be failed by its id."""
        return cls(
            job_id=int(row["id"]),
            trader_id="",
            slot=datetime.now(UTC),
            queue_name=str(row["queue_name"]),
        )

    @classmethod
    def from_args(
        cls,
        *,
        job_id: int,
        args: Any,
        queue_name: str,
        task_name: str | None = None,
        attempts: int = 0,
        priority: int = 0,
    ) -> TraderJob:
        """Check task name and args against the queue contract; raise InvalidJob.

        ``task_name`` None skips the task check (callers that built the args themselves).
        """
        problem = _problem(task_name, args)
        if problem is not None:
            raise _malformed(job_id, queue_name, problem)
        slot = datetime.fromisoformat(str(args[ARG_SLOT]).replace("Z", "+00:00"))
        if slot.tzinfo is None:
            slot = slot.replace(tzinfo=UTC)
        return cls(
            job_id=job_id,
            trader_id=str(uuid.UUID(str(args[ARG_TRADER_ID]))),
            slot=slot.astimezone(UTC),
            queue_name=queue_name,
            attempts=attempts,
            priority=priority,
        )

    @property
    def queue_interval(self) -> str | None:
        """'5m' for queue 'traders.5m', else None."""
        interval = queue_interval(self.queue_name)
        return interval if interval in INTERVAL_MS else None
