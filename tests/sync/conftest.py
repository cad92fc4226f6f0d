"""Fixtures shared by the sync tests (a Slack workspace: tests/sync/slackworld.py)."""

from tests.sync.slackworld import slack, workspace

__all__ = ["slack", "workspace"]
