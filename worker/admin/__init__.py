"""Operator actions and lookups behind `traderctl traders|requeue|stats|signals`."""
