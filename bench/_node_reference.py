"""The Node.js baseline of the end-to-end bench, run through bench/node_baseline.js.

Why: the issue's yardstick is the browser's way of running filters: one thread, no
database, ``new Function`` per trader, indicators recomputed per trader (node_baseline.js,
written by the JS-runtime side, does exactly that with the same worker/sandbox/js/helpers.js).
We feed it the bench's own snapshot (tickers and klines as stored by the market-data
worker, universe order by rank) and every demo filter, once per symbol count a tier
evaluates (free 20, pro 50, elite 100). The cost of one run of the bench's mix is then
the trader-weighted mean of the median per-trader time of (filter, symbol count), so the
baseline does the same work per run as the workers, minus the queue and the database.

It also returns each (filter, symbol count)'s matches, which the bench compares with what
the workers recorded: both runtimes must agree.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from bench._e2e_fixture import TraderMix, needed_timeframes
from traderctl.worker.local.demo_filters import DEMO_FILTERS

__all__ = ["NodeBaseline", "compare_matches", "run_node_baseline"]

SCRIPT = Path(__file__).resolve().parent / "node_baseline.js"


@dataclass(frozen=True, kw_only=True)
class NodeBaseline:
    """Per-trader ms and matches by (filter key, symbol count); the mix's runs/s."""

    ms: dict[tuple[str, int], float]
    matches: dict[tuple[str, int], int]
    ms_per_run: float
    node_version: str

    @property
    def runs_per_s(self) -> float:
        return 1000.0 / self.ms_per_run if self.ms_per_run > 0 else 0.0


def _snapshot(conn: psycopg.Connection[Any]) -> tuple[list[str], dict[str, Any], dict[str, Any]]:
    tickers: dict[str, Any] = {}
    symbols: list[str] = []
    for symbol, text in conn.execute(
        "select symbol, ticker::text from public.market_tickers order by rank, symbol"
    ).fetchall():
        symbols.append(symbol)
        tickers[symbol] = json.loads(text)
    history: dict[str, dict[str, Any]] = {}
    for symbol, interval, text in conn.execute(
        "select symbol, interval, klines::text from public.market_klines where interval = any(%s)",
        (list(needed_timeframes()),),
    ).fetchall():
        history.setdefault(symbol, {})[interval] = json.loads(text)
    return symbols, tickers, history


def run_node_baseline(
    conn: psycopg.Connection[Any], mix: TraderMix, workdir: Path, *, repeats: int = 7
) -> NodeBaseline:
    """Run node_baseline.js per symbol count of the mix; weight by the mix."""
    node = shutil.which("node")
    if node is None:
        raise SystemExit("node is not on PATH: the Node.js baseline needs it (Node >= 18)")
    version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
    symbols, tickers, history = _snapshot(conn)
    traders = [
        {
            "traderId": f.key,
            "filterCode": f.code,
            "refreshInterval": f.refresh_interval,
            "requiredTimeframes": list(f.required_timeframes),
        }
        for f in DEMO_FILTERS.values()
    ]
    ms: dict[tuple[str, int], float] = {}
    matches: dict[tuple[str, int], int] = {}
    for count in sorted(set(mix.symbols_per_tier.values())):
        chosen = symbols[:count]
        path = workdir / f"node_input_{count}.json"
        path.write_text(
            json.dumps(
                {
                    "symbols": chosen,
                    "tickers": {s: tickers[s] for s in chosen},
                    "historicalData": {s: history.get(s, {}) for s in chosen},
                    "traders": traders,
                }
            )
        )
        proc = subprocess.run(
            [node, str(SCRIPT), str(path), str(repeats)],
            capture_output=True,
            text=True,
            check=True,
        )
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        for key, times in out["perTraderMs"].items():
            ms[(key, count)] = statistics.median(times)
            found = out["results"].get(key)
            matches[(key, count)] = len(found) if isinstance(found, list) else -1
    total = sum(
        n * ms[(key, mix.symbols_per_tier[tier])] for (key, tier), n in mix.per_filter_tier.items()
    )
    return NodeBaseline(
        ms=ms, matches=matches, ms_per_run=total / mix.traders, node_version=version
    )


def compare_matches(
    node: NodeBaseline, mix: TraderMix, worker_matches: Mapping[tuple[str, str], set[int]]
) -> list[str]:
    """Disagreements between the workers' match counts and Node's, per (filter, tier)."""
    problems = []
    for (key, tier), counts in sorted(worker_matches.items()):
        expected = node.matches.get((key, mix.symbols_per_tier[tier]))
        if counts != {expected}:
            problems.append(f"{key}/{tier}: workers {sorted(counts)}, node {expected}")
    return problems
