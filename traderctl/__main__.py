"""`python -m traderctl` runs the command line, like the `traderctl` console script."""

from __future__ import annotations

from traderctl.cli.main import main

main()
