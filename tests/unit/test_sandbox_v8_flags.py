"""V8 accepts every flag the runtime starts it with.

V8 reads its flags once per process. A flag it does not know (one renamed or removed by a
mini-racer upgrade) is not an error to the caller: V8 prints "unrecognized flag" on stderr,
ignores that flag **and every flag after it**, and runs on. Nothing else would notice; only
the benchmarks would, as CPU or memory lost (docs/sandbox.md, "V8 flags"). So each check
starts a fresh interpreter (the flags only apply to a process's first isolate), creates an
isolate the way the worker does, and reads what V8 printed.
"""

from __future__ import annotations

import subprocess
import sys

from traderctl.worker.sandbox.isolate import V8_FLAGS

#: Creates one isolate through our module, with ``V8_FLAGS`` replaced by argv[1:] if given.
_CREATE_ISOLATE = """
import sys
from traderctl.worker.sandbox import isolate
if len(sys.argv) > 1:
    isolate.V8_FLAGS = tuple(sys.argv[1:])
runner = isolate.Isolate(helpers_js=None, memory_mb=64, memo=True)
runner.close()
print("isolate ok")
"""

#: What V8 prints for a flag it does not know, and for the flags it then drops.
_REFUSALS = ("unrecognized flag", "remaining arguments were ignored")


def _start_isolate(*flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _CREATE_ISOLATE, *flags],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _refusals(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if any(r in line.lower() for r in _REFUSALS)]


def test_v8_accepts_every_flag_the_runtime_sets() -> None:
    result = _start_isolate()
    assert result.returncode == 0, result.stderr
    assert "isolate ok" in result.stdout
    assert _refusals(result.stderr) == [], (
        f"V8 refused a flag of V8_FLAGS {V8_FLAGS}; it then ignores every flag after it. "
        f"Find the flag's new name in this V8 (`--help`) or drop it. stderr:\n{result.stderr}"
    )


def test_a_flag_v8_does_not_know_is_seen_by_the_check() -> None:
    """The check above would see a renamed flag: V8's refusal reaches the child's stderr."""
    unknown = "--traderctl-no-such-flag"
    result = _start_isolate(V8_FLAGS[0], unknown, *V8_FLAGS[1:])
    assert result.returncode == 0, result.stderr
    refused = _refusals(result.stderr)
    assert any(unknown in line for line in refused), result.stderr
    # The flags after it are dropped, which is why one rename costs them all.
    assert any("ignored" in line.lower() for line in refused), result.stderr
