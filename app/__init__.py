"""Tally: the product (database, inference, rollups, API). Knows connectors/ only through its contract."""
