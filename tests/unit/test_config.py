"""Settings come from the environment, with defaults and clear errors."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest

from traderctl.worker import config_schema
from traderctl.worker.config import (
    ENV_VARS,
    SETTINGS,
    Settings,
    env_help,
    load_settings,
    markdown_table,
)
from traderctl.worker.errors import ConfigError

README = Path(__file__).resolve().parents[2] / "README.md"


def test_defaults() -> None:
    settings = load_settings({})
    assert settings.database_url is None
    assert settings.filter_timeout_ms == 250
    assert settings.data_dir == Path(".traderctl").absolute()
    assert settings == Settings()


def test_every_default_parses_to_the_field_default() -> None:
    """The declared default text is what an unset variable means, field by field."""
    defaults = Settings()
    for name, spec in SETTINGS.items():
        expected = None if spec.default is None else spec.parser.convert(spec.default)
        assert getattr(defaults, name) == expected, name


def test_values_are_read() -> None:
    settings = load_settings(
        {
            "DATABASE_URL": "postgresql://x/y",
            "TRADERCTL_FILTER_TIMEOUT_MS": "500",
            "TRADERCTL_PG_PORT": "6000",
            "TRADERCTL_MARKET_INTERVALS": "1h, 1m",
            "BINANCE_BASE_URL": "http://127.0.0.1:9/",
        }
    )
    assert settings.database_url == "postgresql://x/y"
    assert settings.filter_timeout_ms == 500
    assert settings.pg_port == 6000
    assert settings.market_intervals == ("1m", "1h")
    assert settings.binance_base_url == "http://127.0.0.1:9"


def test_blank_means_default_except_where_empty_is_a_value() -> None:
    settings = load_settings(
        {"TRADERCTL_FILTER_TIMEOUT_MS": " ", "TRADERCTL_MARKET_EXCLUDED_BASES": ""}
    )
    assert settings.filter_timeout_ms == 250
    assert settings.market_excluded_bases == ()


@pytest.mark.parametrize("value", ["abc", "1.5", "-3", "0"])
def test_bad_integer_names_variable_value_and_allowed(value: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({"TRADERCTL_FILTER_TIMEOUT_MS": value})
    message = str(info.value)
    assert f"TRADERCTL_FILTER_TIMEOUT_MS={value!r}" in message
    assert "a whole number ≥ 1" in message


@pytest.mark.parametrize(
    ("name", "value", "allowed"),
    [
        ("TRADERCTL_MARKET_DATA_SOURCE", "kraken", "`binance` or `simulator`"),
        ("TRADERCTL_MARKET_INTERVALS", "2m,1h", "subset of 1m,5m,15m,30m,1h,4h,1d"),
        ("TRADERCTL_SCHEDULER_OFFSET_SECONDS", "55", "from 0 to 50"),
        ("TRADERCTL_RETENTION_CRON", "every ten minutes", "cron schedule"),
        ("BINANCE_BASE_URL", "api.binance.com", "http:// or https:// URL"),
    ],
)
def test_bad_values_say_what_is_allowed(name: str, value: str, allowed: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(allowed)) as info:
        load_settings({name: value})
    assert f"{name}={value!r}" in str(info.value)


def test_missing_helpers_bundle() -> None:
    with pytest.raises(ConfigError, match="TRADERCTL_FILTER_HELPERS_JS"):
        load_settings({"TRADERCTL_FILTER_HELPERS_JS": "/nonexistent/bundle.js"})


def test_earlier_names_still_work_and_warn(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(config_schema, "_warned", set())
    with caplog.at_level(logging.WARNING, logger="traderctl.worker.config"):
        settings = load_settings({"TRADER_FILTER_TIMEOUT_MS": "400", "MARKET_INTERVALS": "5m"})
    assert settings.filter_timeout_ms == 400
    assert settings.market_intervals == ("5m",)
    assert "TRADER_FILTER_TIMEOUT_MS is deprecated; rename it to TRADERCTL_FILTER_TIMEOUT_MS" in (
        caplog.text
    )
    assert "rename it to TRADERCTL_MARKET_INTERVALS" in caplog.text


def test_new_name_wins_over_an_earlier_one(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(config_schema, "_warned", set())
    with caplog.at_level(logging.WARNING, logger="traderctl.worker.config"):
        settings = load_settings(
            {"TRADERCTL_FILTER_TIMEOUT_MS": "300", "TRADER_FILTER_TIMEOUT_MS": "900"}
        )
    assert settings.filter_timeout_ms == 300
    assert "TRADER_FILTER_TIMEOUT_MS is ignored because TRADERCTL_FILTER_TIMEOUT_MS is set" in (
        caplog.text
    )


def test_an_earlier_name_with_a_bad_value_is_named_in_the_error() -> None:
    with pytest.raises(ConfigError, match="MARKET_CONCURRENCY='many'"):
        load_settings({"MARKET_CONCURRENCY": "many"})


def test_env_vars_lists_current_and_earlier_names() -> None:
    assert "TRADERCTL_WORKER_BATCH_SIZE" in ENV_VARS
    assert "TRADER_WORKER_BATCH_SIZE" in ENV_VARS
    assert len(ENV_VARS) == len(set(ENV_VARS))


def test_names_follow_the_naming_rule() -> None:
    """Standard names stay; everything else is TRADERCTL_…; durations spell their unit."""
    units = {"ms": "_MS", "s": "_SECONDS", "h": "_HOURS", "MB": "_MB"}
    for spec in SETTINGS.values():
        if spec.env not in ("DATABASE_URL", "BINANCE_BASE_URL"):
            assert spec.env.startswith("TRADERCTL_"), spec.env
        if spec.unit in units:
            assert spec.env.endswith(units[spec.unit]), spec.env


def test_readme_table_is_the_generated_one() -> None:
    readme = README.read_text()
    match = re.search(
        r"<!-- settings-table:start -->\n(.*?)<!-- settings-table:end -->", readme, re.S
    )
    assert match, "README lacks the settings-table markers"
    assert match.group(1) == markdown_table(), (
        "README's configuration table is out of date; regenerate it with "
        "`python -m traderctl.worker.config --markdown`"
    )


def test_markdown_command_prints_the_table() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "traderctl.worker.config", "--markdown"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout == markdown_table()


def test_env_help_names_variable_and_default() -> None:
    assert env_help("worker_batch_size") == "(env TRADERCTL_WORKER_BATCH_SIZE, default 32)"
    assert env_help("stalled_seconds") == "(env TRADERCTL_WORKER_STALLED_SECONDS, default 30 s)"


def test_settings_are_frozen() -> None:
    with pytest.raises(AttributeError):
        Settings().pg_port = 1  # type: ignore[misc]
