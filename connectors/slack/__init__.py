"""Slack (docs/slack.md): Slack Connect channels and DMs with outside people, via slack_sdk."""

from connectors.chat import ChatPage
from connectors.slack import events
from connectors.slack.api import Caller, Limits
from connectors.slack.connector import SlackConnector
from connectors.slack.oauth import SlackApp, SlackOAuth

__all__ = [
    "Caller",
    "ChatPage",
    "Limits",
    "SlackApp",
    "SlackConnector",
    "SlackOAuth",
    "events",
]
