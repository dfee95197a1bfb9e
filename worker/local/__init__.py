"""Development and demo tooling: embedded Postgres, exchange simulator, synthetic markets,
demo filters and seed, `traderctl up`. Production packages never import it."""
