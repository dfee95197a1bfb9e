"""`python -m cli` runs traderctl (used by tests to avoid depending on PATH)."""

from __future__ import annotations

from cli.main import main

main()
