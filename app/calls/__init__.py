"""Calls from phone systems: signed call-log webhooks (generic JSON, Twilio callbacks)."""
