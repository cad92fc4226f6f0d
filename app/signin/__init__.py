"""Sign-in links an admin generates for the dashboard."""
