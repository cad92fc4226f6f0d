"""Provider connectors: fetch and parse, never touch the database (the contract is in base.py)."""
