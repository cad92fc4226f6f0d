"""Chat conversations after a change of the directory: a user created, an alias added or an
internal domain changed decides who in a channel is a user, an external contact or nobody, so
the organization's conversations are derived again from their stored messages.

The change asks for it (`jobs.mark_due(…, jobs.CHAT)` in app/activities/reevaluate.py
record_change, in the change's own transaction); every tick takes the organizations asked for,
each under its lease, in one transaction ended by the lease check. Mail and calendar items are
re-derived by the re-evaluation job, item by item; chats are few beside them (one row per
message, no text), so a whole-organization pass is the simple, exact answer.
"""

from __future__ import annotations

from datetime import timedelta

import structlog

from app import jobs
from app.chat import service
from app.db import session_scope
from app.models import utcnow

log = structlog.get_logger(__name__)

TICK_SECONDS = 5
LEASE = timedelta(minutes=10)


def tick() -> int:
    """Derive again the conversations of every organization asked for; how many were done."""
    with session_scope() as session:
        asked = jobs.due_orgs(session, jobs.CHAT, now=utcnow(), every=None)
    done = 0
    for org_id in asked:
        with session_scope() as session:
            leases = jobs.claim(session, jobs.CHAT, [org_id], now=utcnow(), lease=LEASE)
        for lease in leases:
            try:
                with session_scope() as session:
                    changes = service.rederive(session, org_id)
                    jobs.fence(session, lease, now=utcnow(), renew=LEASE)
                    jobs.release(session, lease, now=utcnow())
            except jobs.LeaseLost:
                log.warning("chat_rederive_lease_lost", org_id=org_id)
                continue
            log.info(
                "chat_rederived",
                org_id=org_id,
                added=changes.added,
                removed=changes.removed,
                changed=changes.changed,
            )
            done += 1
    return done
