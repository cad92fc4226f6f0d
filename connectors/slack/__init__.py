"""Slack (docs/slack.md): Slack Connect channels and DMs with outside people, via slack_sdk."""

from connectors.slack.api import Caller, Limits
from connectors.slack.connector import SlackConnector, channels_of
from connectors.slack.oauth import SlackApp, SlackOAuth
from connectors.slack.pages import ChatPage

__all__ = [
    "Caller",
    "ChatPage",
    "Limits",
    "SlackApp",
    "SlackConnector",
    "SlackOAuth",
    "channels_of",
]
