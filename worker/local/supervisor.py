"""Start, watch and stop the product's processes for `traderctl up`.

Each child is a `traderctl` subprocess in its own process group, so Ctrl-C in the
terminal reaches only us: we then send SIGTERM to each child by PID (workers finish or
release in-flight jobs), wait for a grace period, and SIGKILL whatever is left. A child
that dies on its own is restarted with backoff; one that keeps dying is reported and left
down rather than restarted in a tight loop.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from traderctl.worker.runner.lifeline import PARENT_DEATH_SIGNAL, parent_death_hook

__all__ = ["Child", "Supervisor"]

log = logging.getLogger(__name__)

_MAX_RESTARTS = 5


@dataclass
class Child:
    """One supervised `traderctl` subprocess."""

    name: str
    args: Sequence[str]
    env: Mapping[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start: float = 0.0
    given_up: bool = False
    history: list[int] = field(default_factory=list)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Supervisor:
    """Owns a set of children: start them, keep them up, stop them all."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.children: list[Child] = []

    def add(self, name: str, args: Sequence[str], env: Mapping[str, str]) -> Child:
        """Register and start `traderctl ARGS` as child `name` (its output goes to a log file)."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        child = Child(
            name=name, args=list(args), env=dict(env), log_path=self.log_dir / f"{name}.log"
        )
        self.children.append(child)
        self._spawn(child)
        return child

    def _spawn(self, child: Child) -> None:
        with child.log_path.open("ab") as out:
            child.process = subprocess.Popen(
                [sys.executable, "-m", "traderctl", *child.args],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=dict(child.env),
                start_new_session=True,  # Ctrl-C in the terminal is ours to forward
                # If we die (even kill -9) the child stops cleanly instead of running on
                # as an orphan; the signal may come more than once (lifeline).
                preexec_fn=parent_death_hook(PARENT_DEATH_SIGNAL),
            )
        log.info("started %s (pid %s), log: %s", child.name, child.pid, child.log_path)

    def poll(self) -> list[str]:
        """Restart children that exited, with backoff; return a note per event."""
        notes: list[str] = []
        now = time.monotonic()
        for child in self.children:
            if child.alive or child.given_up or child.process is None:
                continue
            code = child.process.returncode
            if child.next_start == 0.0:
                child.history.append(code)
                if child.restarts >= _MAX_RESTARTS:
                    child.given_up = True
                    notes.append(
                        f"{child.name} exited {_MAX_RESTARTS + 1} times (last code {code}); "
                        f"left down, see {child.log_path}"
                    )
                    continue
                delay = min(30.0, 2.0**child.restarts)
                child.next_start = now + delay
                notes.append(f"{child.name} exited with code {code}; restarting in {delay:.0f}s")
            elif now >= child.next_start:
                child.restarts += 1
                child.next_start = 0.0
                self._spawn(child)
        return notes

    def stop(self, grace_seconds: float = 20.0) -> None:
        """SIGTERM every child by PID, wait up to the grace period, then SIGKILL the rest."""
        for child in self.children:
            if child.alive and child.process is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_seconds
        for child in self.children:
            if child.process is None:
                continue
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop within %.0fs; killing it", child.name, grace_seconds)
                # The child leads its own process group (start_new_session): this reaches
                # its worker subprocesses too, and nothing we did not start.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.process.pid, signal.SIGKILL)
                child.process.wait(timeout=10)

    @property
    def pids(self) -> list[int]:
        return [child.pid for child in self.children if child.pid is not None]
