"""Insights: what top performers do differently (semantics.md §12)."""
