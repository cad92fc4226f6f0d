"""Calendar connectors: iCalendar resources (files, CalDAV) read into CalendarObjects."""

from connectors.calendar.ics import UnreadableCalendar, read_calendar, read_calendar_parts

__all__ = ["UnreadableCalendar", "read_calendar", "read_calendar_parts"]
