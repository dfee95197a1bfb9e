"""Market data: the Binance client and its limits, the refresher, and the snapshot store."""
