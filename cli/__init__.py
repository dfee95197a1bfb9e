"""The `traderctl` command line (typer), one sub-app per area."""
