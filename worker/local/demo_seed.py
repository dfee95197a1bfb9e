"""Demo users (one per tier) and traders for `traderctl up`, written the frontend's way.

Every trader is one of the browser filters in worker/demo_filters/ (RSI, EMA cross, MACD,
Bollinger, volume spike, VWAP, multi-timeframe, HVN, StochRSI, PVI, divergence). The free
and pro users run some of them every minute, so a fresh demo shows runs and signals
within a minute; the elite user runs all of them on their own intervals. Ids are derived
from names (uuid5), so seeding again changes nothing: `make up` twice resumes the same
data. Tier limits (free: 3 enabled, pro: 10) are respected, since the database enforces
them.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg

from traderctl.worker import queries
from traderctl.worker.local.demo_filters import DEMO_FILTERS, DemoFilter

__all__ = ["DEMO_USERS", "DemoTrader", "demo_traders", "seed_demo"]

_NAMESPACE = uuid.UUID("6f1d0c62-5b0e-4a57-9d6c-2b1f4b8f0e11")

#: (email, tier, filters run every minute, filters run on their own interval)
DEMO_USERS: tuple[tuple[str, str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("free@demo.traderctl", "free", ("rsi_oversold", "volume_spike", "vwap_reclaim"), ()),
    (
        "pro@demo.traderctl",
        "pro",
        ("stochrsi_cross", "ema_cross", "bollinger_squeeze", "macd_classic"),
        ("multi_timeframe_trend", "hvn_support", "rsi_divergence"),
    ),
    (
        "elite@demo.traderctl",
        "elite",
        ("rsi_oversold", "volume_spike"),
        tuple(sorted(DEMO_FILTERS)),
    ),
)


@dataclass(frozen=True, kw_only=True)
class DemoTrader:
    """One demo trader row."""

    id: uuid.UUID
    user_id: uuid.UUID
    email: str
    tier: str
    name: str
    filter: dict[str, Any]


def _trader(email: str, tier: str, demo: DemoFilter, interval: str) -> DemoTrader:
    user_id = uuid.uuid5(_NAMESPACE, email)
    name = demo.name if interval == demo.refresh_interval else f"{demo.name} (every {interval})"
    return DemoTrader(
        id=uuid.uuid5(_NAMESPACE, f"{email}/{demo.key}/{interval}"),
        user_id=user_id,
        email=email,
        tier=tier,
        name=name,
        filter={
            "code": demo.code,
            "refreshInterval": interval,
            "requiredTimeframes": list(demo.required_timeframes),
            "description": f"demo: {demo.key}",
        },
    )


def demo_traders() -> list[DemoTrader]:
    """Every demo trader, in seeding order."""
    out: list[DemoTrader] = []
    for email, tier, every_minute, native in DEMO_USERS:
        out += [_trader(email, tier, DEMO_FILTERS[key], "1m") for key in every_minute]
        out += [
            _trader(email, tier, DEMO_FILTERS[key], DEMO_FILTERS[key].refresh_interval)
            for key in native
        ]
    return out


def seed_demo(conn: psycopg.Connection[Any]) -> int:
    """Insert the demo users and traders that are missing; return how many traders are new."""
    traders = demo_traders()
    created = 0
    with conn.transaction():
        conn.execute(queries.get("demo_disable_fallback"))
        for email, tier, _, _ in DEMO_USERS:
            conn.execute(
                queries.get("demo_upsert_user"),
                {"user_id": uuid.uuid5(_NAMESPACE, email), "email": email, "tier": tier},
            )
        for trader in traders:
            cur = conn.execute(
                queries.get("demo_upsert_trader"),
                {
                    "id": trader.id,
                    "user_id": trader.user_id,
                    "name": trader.name,
                    "filter": json.dumps(trader.filter),
                },
            )
            created += cur.rowcount
    return created
