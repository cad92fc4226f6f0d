"""Alerts (semantics.md §10): opened, resolved and acknowledged alerts, and their settings."""
