"""Activity timelines: filtered, visible to the caller, newest first, in keyset pages.

A page is found in two steps: the ids of its rows, in order, then the rows by id. The ids
come from one of two plans, so that no page reads more than a few rows per user:

- by user (no contact or company filter): the newest `limit` of *each* visible user,
  merged. Each user's are one range of `ix_activities_user_time` (or, with `type`,
  `ix_activities_user_type_time`) read backwards from the cursor, so a page costs about
  users × limit index entries whatever the history. One ordered query over all users made
  PostgreSQL scan and sort every row of those users (10M activities, statistics fresh: ten
  users 1.8 s, a parallel scan of the table; a LATERAL per user 0.9 ms; 221 users 4.4 s and
  42 ms). PostgreSQL runs one LATERAL per user; SQLite has no LATERAL and plans
  `user_id IN (…) ORDER BY` the same bad way, so it gets a UNION ALL of per-user ranges
  (index-only there: the index holds the rowid), merged here.
- by link (contact or company filter): that contact's (or company's contacts') links first,
  then their activities by primary key: the work is the contact's own history, never the
  organization's. A CTE that is MATERIALIZED keeps the planner from walking the users' time
  index instead and probing every row for the link.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Integer,
    Select,
    bindparam,
    func,
    or_,
    select,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from app.access import team_member_ids, visible_team, visible_user, visible_user_ids
from app.activities import schemas
from app.activities.models import Activity
from app.contacts.models import ActivityContact, Contact
from app.db import one_of
from app.models import ActivityType, User
from app.pagination import Page, encode_cursor
from app.schemas import MAX_ID

Position = tuple[datetime, int]  # (occurred_at, id) of the last row of the previous page

# SQLite refuses a compound SELECT of more than 500 parts (SQLITE_MAX_COMPOUND_SELECT)
_USERS_PER_UNION = 400


@dataclass(frozen=True)
class ActivityFilter:
    user_id: int | None = None
    team_id: int | None = None
    type: str | None = None
    contact_id: int | None = None
    company_id: int | None = None
    start: datetime | None = None
    end: datetime | None = None


def _subjects(session: Session, caller: User, criteria: ActivityFilter) -> set[int]:
    users = visible_user_ids(session, caller)
    if criteria.user_id is not None:
        users &= {visible_user(session, caller, criteria.user_id).id}
    if criteria.team_id is not None:
        users &= team_member_ids(session, visible_team(session, caller, criteria.team_id).id)
    return users


def _conditions(criteria: ActivityFilter, after: Position | None) -> list[ColumnElement[bool]]:
    """The row conditions besides user and link: type, time bounds and the cursor."""
    found: list[ColumnElement[bool]] = []
    if criteria.type is not None:
        found.append(Activity.type == criteria.type)
    if criteria.start is not None:
        found.append(Activity.occurred_at >= criteria.start)
    if criteria.end is not None:
        found.append(Activity.occurred_at < criteria.end)
    if after is not None:
        moment, last_id = after
        # the `<=` bounds the index range; the OR only breaks ties at the same instant
        found.append(Activity.occurred_at <= moment)
        found.append(or_(Activity.occurred_at < moment, Activity.id < last_id))
    return found


def _ids_by_link(
    session: Session,
    users: list[int],
    criteria: ActivityFilter,
    conditions: list[ColumnElement[bool]],
    limit: int,
) -> list[int]:
    if criteria.contact_id is not None:
        linked = select(ActivityContact.activity_id).where(
            ActivityContact.contact_id == criteria.contact_id
        )
        if criteria.company_id is not None:
            linked = linked.join(Contact, Contact.id == ActivityContact.contact_id).where(
                Contact.company_id == criteria.company_id
            )
    else:
        # an activity with two contacts of the company is one activity
        linked = (
            select(ActivityContact.activity_id)
            .join(Contact, Contact.id == ActivityContact.contact_id)
            .where(Contact.company_id == criteria.company_id)
            .distinct()
        )
    links = linked.cte("linked").prefix_with("MATERIALIZED")
    query = (
        select(Activity.id)
        .join(links, links.c.activity_id == Activity.id)
        .where(one_of(session, Activity.user_id, users), *conditions)
    )
    return list(session.scalars(_newest(query, limit)))


def _newest(query: Select[int], limit: int) -> Select[int]:
    return query.order_by(Activity.occurred_at.desc(), Activity.id.desc()).limit(limit)


def _ids_by_user_postgresql(
    session: Session, users: list[int], conditions: list[ColumnElement[bool]], limit: int
) -> list[int]:
    kind: Any = ARRAY(Integer())
    subject = func.unnest(bindparam(None, users, type_=kind)).table_valued("id").render_derived()
    newest = (
        select(Activity.occurred_at, Activity.id)
        .where(Activity.user_id == subject.c.id, *conditions)
        .order_by(Activity.occurred_at.desc(), Activity.id.desc())
        .limit(limit)
        .lateral("newest")
    )
    query = (
        select(newest.c.id)
        .select_from(subject)
        .join(newest, true())
        .order_by(newest.c.occurred_at.desc(), newest.c.id.desc())
        .limit(limit)
    )
    return list(session.scalars(query))


def _ids_by_user_sqlite(
    session: Session,
    users: list[int],
    criteria: ActivityFilter,
    after: Position | None,
    limit: int,
) -> list[int]:
    """Written as text: SQLAlchemy took longer to build a UNION of 200 selects than SQLite
    to run it. `occurred_at` is compared and merged as stored, a fixed-width ISO string
    (what SQLAlchemy writes), so no row's time is parsed."""
    where = ["user_id = :u{n}"]
    values: list[BindParameter[Any]] = [bindparam("lim", limit)]
    moment = Activity.occurred_at.type
    if criteria.type is not None:
        where.append("type = :kind")
        values.append(bindparam("kind", criteria.type))
    if criteria.start is not None:
        where.append("occurred_at >= :start")
        values.append(bindparam("start", criteria.start, type_=moment))
    if criteria.end is not None:
        where.append("occurred_at < :end")
        values.append(bindparam("end", criteria.end, type_=moment))
    if after is not None:
        where.append("occurred_at <= :at AND (occurred_at < :at OR id < :last)")
        values += [bindparam("at", after[0], type_=moment), bindparam("last", after[1])]
    one = (
        "SELECT * FROM (SELECT occurred_at, id FROM activities WHERE "
        + " AND ".join(where)
        + " ORDER BY occurred_at DESC, id DESC LIMIT :lim)"
    )
    chunks: list[list[tuple[str, int]]] = []
    for start in range(0, len(users), _USERS_PER_UNION):
        chunk = users[start : start + _USERS_PER_UNION]
        union = " UNION ALL ".join(one.format(n=n) for n in range(len(chunk)))
        sql = f"SELECT occurred_at, id FROM ({union}) ORDER BY 1 DESC, 2 DESC LIMIT :lim"
        statement = text(sql).bindparams(*values)
        found = session.execute(statement, {f"u{n}": user for n, user in enumerate(chunk)})
        chunks.append([(str(at), int(ident)) for at, ident in found])
    return [ident for _, ident in islice(heapq.merge(*chunks, reverse=True), limit)]


def page_ids(
    session: Session, users: set[int], criteria: ActivityFilter, after: Position | None, limit: int
) -> list[int]:
    """The ids of the page's rows, newest first."""
    if not users:
        return []
    ordered = sorted(users)
    conditions = _conditions(criteria, after)
    if criteria.contact_id is not None or criteria.company_id is not None:
        return _ids_by_link(session, ordered, criteria, conditions, limit)
    if session.get_bind().dialect.name == "postgresql":
        return _ids_by_user_postgresql(session, ordered, conditions, limit)
    return _ids_by_user_sqlite(session, ordered, criteria, after, limit)


def list_for(
    session: Session,
    caller: User,
    criteria: ActivityFilter,
    *,
    after: Position | None,
    limit: int,
) -> list[Activity]:
    ids = page_ids(session, _subjects(session, caller, criteria), criteria, after, limit)
    if not ids:
        return []
    rows = {
        a.id: a for a in session.scalars(select(Activity).where(one_of(session, Activity.id, ids)))
    }
    return [rows[ident] for ident in ids]


def links(session: Session, activity_ids: Sequence[int]) -> dict[int, tuple[list[int], list[int]]]:
    """activity id -> (contact ids, company ids)."""
    found: dict[int, tuple[list[int], list[int]]] = {i: ([], []) for i in activity_ids}
    rows = session.execute(
        select(ActivityContact.activity_id, ActivityContact.contact_id, Contact.company_id)
        .join(Contact, Contact.id == ActivityContact.contact_id)
        .where(ActivityContact.activity_id.in_(activity_ids))
        .order_by(ActivityContact.contact_id)
    )
    for activity_id, contact_id, company_id in rows:
        contact_ids, company_ids = found[activity_id]
        contact_ids.append(contact_id)
        if company_id is not None and company_id not in company_ids:
            company_ids.append(company_id)
    return found


def read_position(values: list[Any]) -> Position:
    """A cursor is `[occurred_at (ISO, with offset), id]` of the last row of a page."""
    if len(values) != 2 or not isinstance(values[0], str) or isinstance(values[1], bool):
        raise ValueError("not a position")
    moment = datetime.fromisoformat(values[0])
    if moment.tzinfo is None:
        raise ValueError("naive")
    last_id = values[1]
    # an id no row can have is not a position: PostgreSQL could not even bind it (id columns
    # are 32-bit there) while SQLite would answer an empty page; invalid on both
    if not isinstance(last_id, int) or not 0 <= last_id <= MAX_ID:
        raise ValueError("not an id")
    return moment.astimezone(UTC), last_id


def page_of(session: Session, rows: Sequence[Activity], limit: int) -> Page[schemas.ActivityRead]:
    """A page of activities as the API shows them, from up to limit + 1 rows in page order
    (the one past the limit only says that more follow)."""
    page = rows[:limit]
    links_of = links(session, [a.id for a in page])
    items = [
        schemas.ActivityRead(
            id=a.id,
            type=ActivityType(a.type),
            occurred_at=a.occurred_at,
            user_id=a.user_id,
            contact_ids=links_of[a.id][0],
            company_ids=links_of[a.id][1],
            source=schemas.Source(provider=a.provider, connection_id=a.connection_id),
            subject=a.subject,
        )
        for a in page
    ]
    more = len(rows) > limit
    cursor = encode_cursor([page[-1].occurred_at.isoformat(), page[-1].id]) if more else None
    return Page(items=items, next_cursor=cursor)
