"""Settings come from the environment, with defaults and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from traderctl.worker.config import ENV_VARS, Settings, load_settings
from traderctl.worker.errors import ConfigError


def test_defaults() -> None:
    settings = load_settings({})
    assert settings.database_url is None
    assert settings.filter_timeout_ms == 250
    assert settings.data_dir == Path(".traderctl").absolute()


def test_values_are_read() -> None:
    settings = load_settings(
        {
            "DATABASE_URL": "postgresql://x/y",
            "TRADER_FILTER_TIMEOUT_MS": "500",
            "TRADERCTL_PG_PORT": "6000",
        }
    )
    assert settings.database_url == "postgresql://x/y"
    assert settings.filter_timeout_ms == 500
    assert settings.pg_port == 6000


@pytest.mark.parametrize("value", ["abc", "1.5", "-3"])
def test_bad_integer_names_the_variable(value: str) -> None:
    with pytest.raises(ConfigError, match="TRADER_FILTER_TIMEOUT_MS"):
        load_settings({"TRADER_FILTER_TIMEOUT_MS": value})


def test_missing_helpers_bundle() -> None:
    with pytest.raises(ConfigError, match="TRADER_HELPERS_JS"):
        load_settings({"TRADER_HELPERS_JS": "/nonexistent/bundle.js"})


def test_every_setting_is_documented_in_readme() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for name in ENV_VARS:
        assert f"`{name}`" in readme, f"{name} missing from the README configuration table"


def test_settings_are_frozen() -> None:
    with pytest.raises(AttributeError):
        Settings().pg_port = 1  # type: ignore[misc]
