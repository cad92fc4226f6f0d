"""Tally: the product (database, inference, rollups, API); sees connectors/ through its contract."""
