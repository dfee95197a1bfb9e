"""`traderctl filter run` / `filter check`: message compatibility, state, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from traderctl.cli.main import app
from traderctl.worker.local.synthetic_market import generate_snapshot

RUNNER = CliRunner()
TRADERS: list[dict[str, Any]] = [
    {
        "traderId": "up",
        "filterCode": "return parseFloat(ticker.P) > 0;",
        "refreshInterval": "1h",
        "requiredTimeframes": ["1h"],
    },
    {
        "traderId": "rsi",
        "filterCode": "const r = helpers.getLatestRSI(timeframes['15m']); return r !== null && r < 50;",
        "refreshInterval": "15m",
    },
    {
        "traderId": "broken",
        "filterCode": "return (",
        "refreshInterval": "1m",
        "requiredTimeframes": None,
    },
]


def write(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def run(*args: str) -> Any:
    result = RUNNER.invoke(app, ["filter", *args])
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout)


def test_run_round_trip_with_state_gives_edge_triggered_signals(tmp_path: Path):
    first = generate_snapshot(symbols=12, seed=1)
    second = generate_snapshot(symbols=12, seed=2)
    state = tmp_path / "state.json"
    out1 = run(
        "run", str(write(tmp_path / "m1.json", first.message(TRADERS))), "--state", str(state)
    )
    assert out1["totalSymbols"] == 12 and isinstance(out1["executionTime"], float)
    assert [r["traderId"] for r in out1["results"]] == ["up", "rsi", "broken"]
    up1 = out1["results"][0]
    assert up1["filteredSymbols"] and up1["signalSymbols"] == up1["filteredSymbols"]
    assert out1["results"][2]["errors"][0]["kind"] == "syntax"
    saved = json.loads(state.read_text())
    assert saved == {"up": up1["filteredSymbols"], "rsi": out1["results"][1]["filteredSymbols"]}

    # Same symbols, new market: a signal only for symbols that did not match last time.
    out2 = run(
        "run",
        str(write(tmp_path / "m2.json", {"id": 7, "type": "RUN", "data": second.message(TRADERS)})),
        "--state",
        str(state),
    )
    for before, after in zip(out1["results"][:2], out2["results"][:2], strict=True):
        expected = [s for s in after["filteredSymbols"] if s not in before["filteredSymbols"]]
        assert after["signalSymbols"] == expected
    assert json.loads(state.read_text())["up"] == out2["results"][0]["filteredSymbols"]

    # The same snapshot again: matches unchanged, so no signal at all.
    out3 = run("run", str(tmp_path / "m2.json"), "--state", str(state))
    assert all(r["signalSymbols"] == [] for r in out3["results"])
    # Without --state every match is a signal (first run in a fresh worker).
    out4 = run("run", str(tmp_path / "m2.json"))
    assert out4["results"][0]["signalSymbols"] == out4["results"][0]["filteredSymbols"]


def test_run_reports_symbol_errors(tmp_path: Path):
    snap = generate_snapshot(symbols=3, seed=3)
    traders = [{"traderId": "t", "filterCode": "return null.x;", "refreshInterval": "1m"}]
    out = run("run", str(write(tmp_path / "m.json", snap.message(traders))))
    errors = out["results"][0]["errors"]
    assert [e["symbol"] for e in errors] == snap.symbols
    assert errors[0]["message"].startswith("TypeError: Cannot read properties of null")


def test_run_rejects_a_bad_message(tmp_path: Path):
    result = RUNNER.invoke(app, ["filter", "run", str(write(tmp_path / "m.json", {"symbols": 3}))])
    assert result.exit_code == 1
    assert "Bad filter message" in str(result.exception)


def test_check_accepts_a_good_filter(tmp_path: Path):
    f = tmp_path / "good.js"
    f.write_text(
        "const r = helpers.getLatestRSI(timeframes['1h']);\nreturn r !== null && r < 60;\n"
    )
    result = RUNNER.invoke(app, ["filter", "check", str(f)])
    assert result.exit_code == 0, result.output
    assert "timeframes 1h" in result.stdout and "evaluated 20 symbol(s)" in result.stdout
    assert result.stdout.strip().endswith("ok")


def test_check_reports_problems_and_exits_1(tmp_path: Path):
    f = tmp_path / "odd.js"
    f.write_text(
        "if (parseFloat(ticker.P) > 0) return [];\nreturn helpers.nope(timeframes['4h']);\n"
    )
    result = RUNNER.invoke(app, ["filter", "check", str(f), "--timeframes", "4h"])
    assert result.exit_code == 1
    assert "runtime error on" in result.stderr and "helpers.nope is not a function" in result.stderr
    assert "(line 2, column" in result.stderr
    assert "non-boolean return values (array x" in result.stderr


def test_check_uses_message_data(tmp_path: Path):
    snap = generate_snapshot(symbols=4, intervals=("1h",), seed=4)
    message = write(tmp_path / "m.json", snap.message([]))
    f = tmp_path / "f.js"
    f.write_text("return true;")
    result = RUNNER.invoke(
        app, ["filter", "check", str(f), "--message", str(message), "--refresh-interval", "1h"]
    )
    assert result.exit_code == 0, result.output
    assert "evaluated 4 symbol(s), 4 match(es)" in result.stdout


def test_check_syntax_error_and_timeout_via_the_real_cli(tmp_path: Path):
    bad = tmp_path / "bad.js"
    bad.write_text("const a = 1;\nconst b = ;\n")
    loop = tmp_path / "loop.js"
    loop.write_text("while (true) {}")
    for path, needle in (
        (bad, "syntax: SyntaxError: Unexpected token ';' (line 2, column 11)"),
        (loop, "timeout: the filter ran longer than 250 ms"),
    ):
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                "from traderctl.cli.main import main; main()",
                "filter",
                "check",
                str(path),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 1, proc.stderr
        assert needle in proc.stderr
        assert proc.stderr.strip().splitlines()[-1].startswith("error:")


@pytest.mark.timeout(60)
def test_check_of_a_filter_hanging_in_a_promise_job_finishes(tmp_path: Path):
    f = tmp_path / "hang.js"
    f.write_text("Promise.resolve().then(function(){ while (true) {} }); return true;\n")
    result = RUNNER.invoke(app, ["filter", "check", str(f)])
    assert result.exit_code == 1
    assert "timeout" in result.stderr
