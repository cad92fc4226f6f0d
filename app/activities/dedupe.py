"""One call from two sources (a calendar and a phone system) is one call (semantics §5).

`duplicate_call` is the single rule both sides use: the telephony webhook before it records a
call, and the calendar side before it records a `call` activity for an event.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.activities.models import Activity
from app.contacts.models import ActivityContact
from app.models import ActivityType

WINDOW = timedelta(minutes=5)


def duplicate_call(
    session: Session,
    org_id: int,
    user_id: int,
    contact_ids: Collection[int],
    at: datetime,
    *,
    exclude_source_key: str | None = None,
) -> int | None:
    """The id of an existing `call` activity of `user_id`, linked to one of `contact_ids`, that
    occurred within 5 minutes of `at` (either way, inclusive), whichever source recorded it;
    None when there is none. The closest one wins when there are several.

    `exclude_source_key` leaves out the caller's own activity (when it re-checks a call it
    already recorded). With no contact the rule does not apply and this returns None: the
    semantics spec asks for the same contact, and a rep often makes several short calls in a
    row (a dialing session), which a rule on user and time alone would merge.
    """
    if not contact_ids:
        return None
    query = (
        select(Activity.id, Activity.occurred_at)
        .join(ActivityContact, ActivityContact.activity_id == Activity.id)
        .where(
            Activity.org_id == org_id,
            Activity.user_id == user_id,
            Activity.type == ActivityType.call,
            Activity.occurred_at >= at - WINDOW,
            Activity.occurred_at <= at + WINDOW,
            ActivityContact.contact_id.in_(sorted(set(contact_ids))),
        )
        .order_by(Activity.id)
    )
    if exclude_source_key is not None:
        query = query.where(Activity.source_key != exclude_source_key)
    rows = session.execute(query).all()
    if not rows:
        return None
    best: int = min(rows, key=lambda row: (abs(row[1] - at), row[0]))[0]
    return best
