"""Deals: the opportunities the middle and output metrics read (semantics §8)."""
