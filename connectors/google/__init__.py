"""Google Workspace: the OAuth consent, Gmail and Google Calendar connectors, quota pacing.

Never imports app/; app/sync/registry.py builds these from a connection's config and secret.
"""

from connectors.google.api import App, Endpoints
from connectors.google.calendar import CalendarWatch, GoogleCalendarConnector
from connectors.google.gmail import GmailConnector, GmailWatch
from connectors.google.oauth import GoogleOAuth, gmail_metadata_only
from connectors.google.pacing import CALENDAR_QUOTA, GMAIL_COSTS, Quota

__all__ = [
    "CALENDAR_QUOTA",
    "GMAIL_COSTS",
    "App",
    "CalendarWatch",
    "Endpoints",
    "GmailConnector",
    "GmailWatch",
    "GoogleCalendarConnector",
    "GoogleOAuth",
    "Quota",
    "gmail_metadata_only",
]
