"""The current filter sandbox against the sandbox of an older git revision, side by side.

Why: hardening the sandbox (frozen intrinsics, private stores, copies, deadlines on every V8
call) costs CPU per trader-run, and that cost has to be quoted as one reproducible figure,
"new/old", on machines that are shared and noisy. Both runtimes therefore run in ONE process
on the same data and the same requests, alternating which goes first every round, and the
figures are medians over many rounds. By default the old side is revision 2267174, the
runtime before the hardening.

How the old side is loaded: ``worker/sandbox/`` of the revision (Python files and ``js/``) is
copied from git into a temporary package ``sandbox_ref`` whose imports of itself
(``traderctl.worker.sandbox`` or ``worker.sandbox``) are rewritten to ``sandbox_ref``; every
other import (config, errors) resolves to the current package. The current side is
``traderctl.worker.sandbox.runtime`` as it is in the working tree.

Scenarios (each: 2 untimed warm-up passes, then ``--rounds`` timed rounds per side):

- ``memo``: every demo filter x 4 users over all 100 symbols, memo on, a new snapshot
  version (cold memo) per round, one ``run_traders`` call;
- ``nomemo``: the same with the memo off;
- ``distinct``: every demo filter once, memo on, new version per round;
- ``tiers``: the end-to-end bench's mix, 120 traders cycling through the demo filters, 30 %
  on the first 20 symbols, 50 % on the first 50, 20 % on all 100; memo on and warm (the same
  version every round, as a worker running many batches per candle), 40 traders per call;
- ``fixed``: 200 traders ``return false;`` over 20 symbols, same version, 40 per call: the
  fixed cost per trader.

How to read it: per scenario, ``old`` and ``new`` are median ms per trader-run of process CPU
time (all threads, so V8's background compiler and GC count) and of wall time. ``new/old``
is the ratio of those medians; ``paired`` is the median of the per-round ratios (each round
runs both sides back to back, so load from other processes mostly cancels), with their
min-max range. When the two ratios disagree or the range is wide, the machine was too busy:
run more rounds. In the scenarios with a new version per round the snapshot load is timed
with the runs (a version costs its load plus its runs, and the two runtimes collect the
previous version's data at different moments: during the load, or during the next runs);
elsewhere loading is not timed. Both sides must give identical matches for
every trader and no errors, otherwise the run fails. The last line is JSON.

    python -m bench.sandbox_compare [--ref 2267174] [--rounds 9] [--only memo,tiers]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from traderctl.worker.config import Settings
from traderctl.worker.local.demo_filters import DEMO_FILTERS
from traderctl.worker.local.synthetic_market import DEFAULT_INTERVALS, generate_snapshot
from traderctl.worker.sandbox import runtime as new_runtime

REPO = Path(__file__).resolve().parents[1]
DEFAULT_REF = "2267174"
SANDBOX_DIR = "worker/sandbox"
PACKAGE = "sandbox_ref"
SCENARIOS = ("memo", "nomemo", "distinct", "tiers", "fixed")
WARMUP_PASSES = 2
BATCH = 40

# Order matters: the packaged name first, then the older top-level one; then the remaining
# ``worker.*`` imports of an old layout go to the current package.
_REWRITES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\btraderctl\.worker\.sandbox\b"), PACKAGE),
    (re.compile(r"(?<![\w.])worker\.sandbox\b"), PACKAGE),
    (re.compile(r"^(\s*)(from|import) worker\.", re.MULTILINE), r"\1\2 traderctl.worker."),
)


@dataclass(frozen=True, kw_only=True)
class Spec:
    """One trader, independent of either runtime's TraderRequest class."""

    trader_id: str
    code: str
    refresh_interval: str | None
    required_timeframes: list[str] | None
    symbols: list[str]


@dataclass(frozen=True, kw_only=True)
class Scenario:
    name: str
    label: str
    memo: bool
    specs: list[Spec]
    batch: int | None  # traders per run_traders call; None = all in one call
    fresh_version: bool  # a new snapshot version (cold memo) every pass


@dataclass(frozen=True)
class Market:
    tickers: str
    series: dict[str, str]


# -- loading the old revision -----------------------------------------------------------------


def _git(*args: str) -> bytes:
    proc = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, check=False)
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip()
        raise SystemExit(f"git {' '.join(args)} failed: {err}")
    return proc.stdout


def _rewrite(source: str) -> str:
    for pattern, replacement in _REWRITES:
        source = pattern.sub(replacement, source)
    return source


def load_ref_runtime(ref: str, tmp: Path) -> tuple[str, ModuleType]:
    """Copy ``worker/sandbox/`` of ``ref`` to ``tmp/sandbox_ref`` and import its runtime."""
    commit = _git("rev-parse", "--verify", f"{ref}^{{commit}}").decode().strip()
    names = _git("ls-tree", "-r", "--name-only", commit, "--", SANDBOX_DIR).decode().splitlines()
    if not names:
        raise SystemExit(
            f"revision {ref} has no {SANDBOX_DIR}/ package (the sandbox was worker/sandbox.py "
            "before it became a package); pick a later revision"
        )
    root = tmp / PACKAGE
    for name in names:
        rel = Path(name).relative_to(SANDBOX_DIR)
        data = _git("show", f"{commit}:{name}")
        if rel.suffix == ".py":
            data = _rewrite(data.decode("utf-8")).encode("utf-8")
        dest = root / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
    if PACKAGE in sys.modules:
        raise SystemExit(f"a module named {PACKAGE} is already imported")
    sys.path.insert(0, str(tmp))
    importlib.invalidate_caches()
    try:
        module = importlib.import_module(f"{PACKAGE}.runtime")
    except ImportError as exc:  # the message names the missing module or name
        raise SystemExit(
            f"the sandbox of {ref} does not import against the current package: {exc}"
        ) from exc
    for attr in ("FilterRuntime", "TraderRequest"):
        if not hasattr(module, attr):
            raise SystemExit(f"{PACKAGE}.runtime of {ref} has no {attr}")
    return commit, module


def _v8_flags(module_name: str) -> list[str] | None:
    isolate = sys.modules.get(module_name)
    flags = getattr(isolate, "V8_FLAGS", None)
    return None if flags is None else list(flags)


# -- scenarios ---------------------------------------------------------------------------------


def _demo(trader_id: str, key: str, symbols: list[str]) -> Spec:
    f = DEMO_FILTERS[key]
    return Spec(
        trader_id=trader_id,
        code=f.code,
        refresh_interval=f.refresh_interval,
        required_timeframes=list(f.required_timeframes),
        symbols=symbols,
    )


def _tier_specs(symbols: list[str], traders: int = 120) -> list[Spec]:
    keys = list(DEMO_FILTERS)
    free, pro = round(traders * 0.3), round(traders * 0.5)
    specs = []
    for i in range(traders):
        universe = symbols[:20] if i < free else symbols[:50] if i < free + pro else symbols
        specs.append(_demo(f"{keys[i % len(keys)]}#{i}", keys[i % len(keys)], universe))
    return specs


def build_scenarios(symbols: list[str]) -> dict[str, Scenario]:
    users4 = [_demo(f"{k}#{u}", k, symbols) for u in range(4) for k in DEMO_FILTERS]
    distinct = [_demo(f"{k}#0", k, symbols) for k in DEMO_FILTERS]
    fixed = [
        Spec(
            trader_id=f"false#{i}",
            code="return false;",
            refresh_interval="1m",
            required_timeframes=["1m"],
            symbols=symbols[:20],
        )
        for i in range(200)
    ]
    n = len(DEMO_FILTERS)
    return {
        s.name: s
        for s in (
            Scenario(
                name="memo",
                label=f"{n} filters x 4 users, {len(symbols)} symbols, memo cold, load timed",
                memo=True,
                specs=users4,
                batch=None,
                fresh_version=True,
            ),
            Scenario(
                name="nomemo",
                label=f"{n} filters x 4 users, {len(symbols)} symbols, memo off",
                memo=False,
                specs=users4,
                batch=None,
                fresh_version=True,
            ),
            Scenario(
                name="distinct",
                label=f"{n} filters once, {len(symbols)} symbols, memo cold, load timed",
                memo=True,
                specs=distinct,
                batch=None,
                fresh_version=True,
            ),
            Scenario(
                name="tiers",
                label=f"120 traders, 20/50/{len(symbols)} symbols 30/50/20 %, memo warm, {BATCH} per call",
                memo=True,
                specs=_tier_specs(symbols),
                batch=BATCH,
                fresh_version=False,
            ),
            Scenario(
                name="fixed",
                label=f"200 x 'return false;', 20 symbols, {BATCH} per call",
                memo=True,
                specs=fixed,
                batch=BATCH,
                fresh_version=False,
            ),
        )
    }


# -- running -----------------------------------------------------------------------------------


class Side:
    """One runtime (old or new) with its requests for one scenario."""

    def __init__(self, module: ModuleType, scenario: Scenario, settings: Settings) -> None:
        self.rt: Any = module.FilterRuntime(settings, memo=scenario.memo)
        request: Callable[..., Any] = module.TraderRequest
        reqs = [
            request(
                trader_id=s.trader_id,
                code=s.code,
                refresh_interval=s.refresh_interval,
                required_timeframes=s.required_timeframes,
                symbols=s.symbols,
            )
            for s in scenario.specs
        ]
        size = scenario.batch or len(reqs)
        self.batches = [reqs[i : i + size] for i in range(0, len(reqs), size)]
        self.scenario = scenario
        self.passes = 0

    def load(self, market: Market, version: str) -> None:
        self.rt.set_tickers(version, market.tickers)
        for interval, text in market.series.items():
            self.rt.set_series(interval, version, text)

    def run(self, market: Market) -> tuple[float, float, dict[str, tuple[str, ...]]]:
        """One pass: (CPU ms, wall ms) per trader-run and the matches per trader."""
        self.passes += 1
        if not self.scenario.fresh_version and self.passes == 1:
            self.load(market, "v1")
        out: list[Any] = []
        cpu0, wall0 = time.process_time(), time.perf_counter()
        if self.scenario.fresh_version:
            # Timed with the runs: a new version's cost is its load plus its runs, and where
            # V8 collects the previous version's data (during the load or during the next
            # runs) differs between runtimes.
            self.load(market, f"v{self.passes}")
        for batch in self.batches:
            out.extend(self.rt.run_traders(batch))
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        bad = [r for r in out if r.error is not None or r.symbol_errors]
        if bad:
            raise SystemExit(f"{self.scenario.name}: a trader failed: {bad[0]}")
        n = len(out)
        return (
            cpu * 1000 / n,
            wall * 1000 / n,
            {r.trader_id: tuple(r.filtered_symbols) for r in out},
        )


def run_scenario(
    scenario: Scenario,
    sides: dict[str, ModuleType],
    market: Market,
    settings: Settings,
    rounds: int,
) -> dict[str, dict[str, list[float]]]:
    """Per metric (cpu, wall) and side (old, new): ms per trader-run of each round."""
    times: dict[str, dict[str, list[float]]] = {m: {"old": [], "new": []} for m in ("cpu", "wall")}
    with contextlib.ExitStack() as stack:
        runners: dict[str, Side] = {}
        for name, module in sides.items():
            side = Side(module, scenario, settings)
            stack.callback(side.rt.close)
            runners[name] = side
        for _ in range(WARMUP_PASSES):
            for side in runners.values():
                side.run(market)
        for r in range(rounds):
            order = ("old", "new") if r % 2 == 0 else ("new", "old")
            matches = {}
            for name in order:
                cpu, wall, matches[name] = runners[name].run(market)
                times["cpu"][name].append(cpu)
                times["wall"][name].append(wall)
            if matches["old"] != matches["new"]:
                differ = sorted(
                    t for t in matches["old"] if matches["old"][t] != matches["new"].get(t)
                )
                differ += sorted(set(matches["new"]) - set(matches["old"]))
                raise SystemExit(
                    f"{scenario.name}: old and new give different matches for {differ[:5]}"
                    f"{' ...' if len(differ) > 5 else ''} ({len(differ)} traders)"
                )
    return times


def summarize(old: list[float], new: list[float]) -> dict[str, Any]:
    paired = [n / o for o, n in zip(old, new, strict=True)]
    old_med, new_med = statistics.median(old), statistics.median(new)
    return {
        "old_ms": round(old_med, 3),
        "new_ms": round(new_med, 3),
        "ratio_of_medians": round(new_med / old_med, 3),
        "paired_median": round(statistics.median(paired), 3),
        "paired_min": round(min(paired), 3),
        "paired_max": round(max(paired), 3),
        "rounds_old_ms": [round(x, 3) for x in old],
        "rounds_new_ms": [round(x, 3) for x in new],
    }


def _line(metric: str, s: dict[str, Any]) -> str:
    return (
        f"  {metric:4s} old {s['old_ms']:8.3f}  new {s['new_ms']:8.3f} ms/trader   "
        f"new/old {s['ratio_of_medians']:.3f}   paired {s['paired_median']:.3f} "
        f"({s['paired_min']:.3f}–{s['paired_max']:.3f})"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.sandbox_compare",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--ref", default=DEFAULT_REF, help="git revision of the old sandbox")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--only", default="", help=f"comma-separated subset of {SCENARIOS}")
    args = parser.parse_args(argv)
    only = [s for s in args.only.split(",") if s] or list(SCENARIOS)
    unknown = sorted(set(only) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenario(s) {unknown}; choose from {SCENARIOS}")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")

    load_start = os.getloadavg()
    snap = generate_snapshot(symbols=100, klines=250, seed=2025)
    market = Market(
        tickers=json.dumps(snap.tickers, separators=(",", ":")),
        series={tf: json.dumps(snap.series(tf), separators=(",", ":")) for tf in DEFAULT_INTERVALS},
    )
    settings = Settings(filter_timeout_ms=10_000, filter_memory_mb=512)
    scenarios = build_scenarios(list(snap.symbols))

    with tempfile.TemporaryDirectory(prefix="sandbox_compare-") as tmp:
        commit, old_runtime = load_ref_runtime(args.ref, Path(tmp))
        flags = {
            "old": _v8_flags(f"{PACKAGE}.isolate"),
            "new": _v8_flags("traderctl.worker.sandbox.isolate"),
        }
        head = _git("rev-parse", "HEAD").decode().strip()
        dirty = bool(_git("status", "--porcelain", "--", SANDBOX_DIR).strip())
        print(
            f"old: {args.ref} ({commit[:12]}), new: working tree of {REPO} at {head[:12]}"
            + (f" with uncommitted changes in {SANDBOX_DIR}/" if dirty else "")
        )
        print(f"{args.rounds} rounds after {WARMUP_PASSES} warm-up passes, order alternating")
        if flags["old"] != flags["new"]:
            print(f"warning: V8 flags differ {flags}; the process runs with the first ones")
        results: dict[str, Any] = {}
        sides = {"old": old_runtime, "new": new_runtime}
        for name in only:
            scenario = scenarios[name]
            times = run_scenario(scenario, sides, market, settings, args.rounds)
            cpu = summarize(times["cpu"]["old"], times["cpu"]["new"])
            wall = summarize(times["wall"]["old"], times["wall"]["new"])
            print(f"{name} ({scenario.label}; {len(scenario.specs)} trader-runs per pass)")
            print(_line("cpu", cpu))
            print(_line("wall", wall), flush=True)
            results[name] = {"traders": len(scenario.specs), "cpu": cpu, "wall": wall}

    summary = {
        "ref": args.ref,
        "commit": commit,
        "new_head": head,
        "new_sandbox_uncommitted": dirty,
        "rounds": args.rounds,
        "warmup_passes": WARMUP_PASSES,
        "loadavg_start": [round(x, 2) for x in load_start],
        "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        "cpu_count": os.cpu_count(),
        "v8_flags": flags,
        "scenarios": results,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
