"""The activity store: its rollups always equal a count of the raw rows, whatever happens."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text
from typer.testing import CliRunner

from app.activities import store
from app.activities.models import Activity, ActivityDay
from app.calls.service import CallLog, record_call
from app.cli import cli
from app.connections import service as connections
from app.contacts.models import ActivityContact, Contact, ContactDay, UserContact
from app.db import Database, session_scope
from app.models import Connection, Organization, User
from app.users import schemas
from app.users.service import update_org
from connectors.base import CalendarObject
from tests.factories import attendee, event, message
from tests.world import World, make_world


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# --- rollups against the raw rows, on both databases ---------------------------------------


def derived(org_id: int) -> tuple[Counter[tuple[int, date, str]], Counter[tuple[int, date, int]]]:
    """The rollups as counted from activities and links, with zoneinfo, by this test."""
    with session_scope() as session:
        zone = ZoneInfo(session.get_one(Organization, org_id).timezone)
        days: Counter[tuple[int, date, str]] = Counter()
        for user_id, kind, moment in session.execute(
            select(Activity.user_id, Activity.type, Activity.occurred_at).where(
                Activity.org_id == org_id
            )
        ):
            days[(user_id, moment.astimezone(zone).date(), kind)] += 1
        engaged: Counter[tuple[int, date, int]] = Counter()
        for user_id, moment, contact_id in session.execute(
            select(Activity.user_id, Activity.occurred_at, ActivityContact.contact_id)
            .join(ActivityContact, ActivityContact.activity_id == Activity.id)
            .where(Activity.org_id == org_id)
        ):
            engaged[(user_id, moment.astimezone(zone).date(), contact_id)] += 1
    return days, engaged


def stored_rollups(
    org_id: int,
) -> tuple[dict[tuple[int, date, str], int], dict[tuple[int, date, int], int]]:
    users = select(User.id).where(User.org_id == org_id)
    with session_scope() as session:
        days = {
            (r.user_id, r.day, r.type): r.count
            for r in session.scalars(select(ActivityDay).where(ActivityDay.user_id.in_(users)))
        }
        engaged = {
            (r.user_id, r.day, r.contact_id): r.count
            for r in session.scalars(select(ContactDay).where(ContactDay.user_id.in_(users)))
        }
    return days, engaged


Spans = dict[tuple[int, date, int], tuple[datetime, datetime]]


def derived_spans(org_id: int) -> Spans:
    """Each contact_days key's earliest and latest occurred_at, from the raw rows."""
    with session_scope() as session:
        zone = ZoneInfo(session.get_one(Organization, org_id).timezone)
        spans: Spans = {}
        for user_id, moment, contact_id in session.execute(
            select(Activity.user_id, Activity.occurred_at, ActivityContact.contact_id)
            .join(ActivityContact, ActivityContact.activity_id == Activity.id)
            .where(Activity.org_id == org_id)
        ):
            key = (user_id, moment.astimezone(zone).date(), contact_id)
            first, last = spans.get(key, (moment, moment))
            spans[key] = (min(first, moment), max(last, moment))
    return spans


def stored_spans(org_id: int) -> Spans:
    users = select(User.id).where(User.org_id == org_id)
    with session_scope() as session:
        return {
            (r.user_id, r.day, r.contact_id): (r.first_at, r.last_at)
            for r in session.scalars(select(ContactDay).where(ContactDay.user_id.in_(users)))
        }


def derived_pairs(org_id: int) -> Counter[tuple[int, int]]:
    """Links per user and contact over all time, counted from the raw rows."""
    with session_scope() as session:
        rows = session.execute(
            select(Activity.user_id, ActivityContact.contact_id)
            .join(ActivityContact, ActivityContact.activity_id == Activity.id)
            .where(Activity.org_id == org_id)
        )
        return Counter((user_id, contact_id) for user_id, contact_id in rows)


def stored_pairs(org_id: int) -> dict[tuple[int, int], int]:
    users = select(User.id).where(User.org_id == org_id)
    with session_scope() as session:
        return {
            (r.user_id, r.contact_id): r.count
            for r in session.scalars(select(UserContact).where(UserContact.user_id.in_(users)))
        }


def assert_rollups_match(org_id: int) -> None:
    days, engaged = derived(org_id)
    assert stored_rollups(org_id) == (dict(days), dict(engaged))
    assert stored_spans(org_id) == derived_spans(org_id)
    assert stored_pairs(org_id) == dict(derived_pairs(org_id))


# Instants beside midnights and daylight-saving changes of the zones the test switches to.
ANCHORS = [
    utc(2026, 3, 28, 23, 0),  # Brussels: midnight, the night clocks go forward
    utc(2026, 3, 29, 1, 0),  # Brussels: clocks go forward
    utc(2026, 10, 25, 1, 0),  # Brussels: clocks go back
    utc(2026, 3, 8, 7, 0),  # New York: clocks go forward
    utc(2026, 3, 2, 18, 30),  # Kolkata: midnight
    utc(2026, 3, 2, 11, 0),  # Auckland: midnight
]
HOUR = timedelta(hours=1)
ZONES = ["Europe/Brussels", "America/New_York", "Asia/Kolkata", "Pacific/Auckland"]
USERS = ["ana", "bob", "cleo"]
PEOPLE = ["joe@northwind.example", "kim@globex.example", "lee@initech.example"]
PHONES = {"joe@northwind.example": "+32470000001", "kim@globex.example": "+32470000002"}

moments = st.builds(
    lambda anchor, minutes: anchor + timedelta(minutes=minutes),
    st.sampled_from(ANCHORS),
    st.integers(-150, 150),
)


@dataclass(frozen=True)
class Mail:
    sender: str
    to: tuple[str, ...]
    when: datetime
    dated: bool


@dataclass(frozen=True)
class Meeting:
    organizer: str
    guests: tuple[str, ...]
    start: datetime
    created: datetime
    moved_by: timedelta
    call: bool


mails = st.builds(
    Mail,
    st.sampled_from(["ana@acme.example", "bob@acme.example", *PEOPLE[:2]]),
    st.lists(
        st.sampled_from([f"{u}@acme.example" for u in USERS] + PEOPLE),
        min_size=1,
        max_size=3,
        unique=True,
    ).map(tuple),
    moments,
    st.booleans(),
)
meetings = st.builds(
    Meeting,
    st.sampled_from([f"{u}@acme.example" for u in USERS]),
    st.lists(
        st.sampled_from([f"{u}@acme.example" for u in USERS] + PEOPLE), max_size=3, unique=True
    ).map(tuple),
    moments,
    moments,
    st.sampled_from([timedelta(0), timedelta(hours=2), timedelta(hours=-20)]),
    st.booleans(),
)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("mail"), st.sampled_from(USERS), st.integers(0, 4)),
        st.tuples(st.just("meeting"), st.sampled_from(USERS), st.integers(0, 2), st.booleans()),
        st.tuples(st.just("cancel"), st.sampled_from(USERS), st.integers(0, 2)),
        st.tuples(st.just("call"), st.sampled_from(USERS[:2]), st.integers(0, 3), moments),
        st.tuples(st.just("delete"), st.integers(0, 50)),
        st.tuples(st.just("move"), st.integers(0, 50), st.sampled_from([-90, -5, 5, 600])),
        st.tuples(st.just("purge"), st.sampled_from(USERS), st.booleans()),
        st.tuples(st.just("zone"), st.sampled_from(ZONES)),
    ),
    min_size=3,
    max_size=15,
)


class Scenario:
    """One organization (made through the services) and the operations the test applies."""

    def __init__(self, mails: list[Mail], meetings: list[Meeting]) -> None:
        self.world = make_world()
        self.mails, self.meetings = mails, meetings
        with session_scope() as session:
            for email in PEOPLE:
                phone = [PHONES[email]] if email in PHONES else []
                session.add(Contact(org_id=self.world.org_id, email=email, phones=phone))

    def admin(self, session: object) -> User:
        return session.scalars(  # type: ignore[attr-defined, no-any-return]
            select(User).where(User.org_id == self.world.org_id, User.role == "admin")
        ).one()

    def apply(self, operation: tuple[object, ...]) -> None:
        kind, *args = operation
        getattr(self, f"_{kind}")(*args)

    def _mail(self, owner: str, index: int) -> None:
        spec = self.mails[index % len(self.mails)]
        # each mailbox dates an undated copy a day apart: the earliest wins
        shift = timedelta(hours=25 * USERS.index(owner))
        self.world.ingest(
            owner,
            message(
                spec.sender,
                spec.to,
                message_id=f"m{index}@store.example",
                date=spec.when if spec.dated else None,
                provider_date=spec.when + shift,
                source_id=f"{owner}-{index}",
                folder_role="sent" if spec.sender.startswith(owner) else "inbox",
            ),
        )

    def _meeting(self, owner: str, index: int, moved: bool) -> None:
        spec = self.meetings[index % len(self.meetings)]
        start = spec.start + (spec.moved_by if moved else timedelta(0))
        item = event(
            uid=f"evt-{index}",
            start=start,
            organizer=spec.organizer,
            attendees=tuple(attendee(g) for g in spec.guests),
            summary="Call with Joe" if spec.call else "Demo",
            created=spec.created,
            version="2" if moved else "1",
            resource=f"cal/evt-{index}.ics",
        )
        now = max(ANCHORS) + timedelta(days=1) if index % 2 else min(ANCHORS) - timedelta(days=1)
        self.world.calendar(owner, CalendarObject(f"cal/evt-{index}.ics", (item,)), now=now)

    def _cancel(self, owner: str, index: int) -> None:
        gone = CalendarObject(f"cal/evt-{index}.ics", (), deleted=True)
        self.world.calendar(owner, gone, now=max(ANCHORS) + timedelta(days=1))

    def _call(self, user: str, call_id: int, when: datetime) -> None:
        with session_scope() as session:
            org = session.get_one(Organization, self.world.org_id)
            call = CallLog(
                source="generic",
                call_id=f"call-{call_id}",
                direction="outbound",
                from_number="+3225550000",
                to_number=PHONES[PEOPLE[call_id % 2]],
                started_at=when,
                duration_seconds=60,
                status="completed",
                user_email=f"{user}@acme.example",
            )
            record_call(session, org, call)

    def _delete(self, index: int) -> None:
        with session_scope() as session:
            ids = list(
                session.scalars(
                    select(Activity.id)
                    .where(Activity.org_id == self.world.org_id)
                    .order_by(Activity.id)
                )
            )
            if ids:
                store.delete(session, self.world.org_id, [ids[index % len(ids)]])

    def _move(self, index: int, minutes: int) -> None:
        """Move a stored activity through the store: mostly within its local day, where the
        count stays and only the recount of first_at/last_at moves the span."""
        with session_scope() as session:
            rows = session.execute(
                select(Activity.id, Activity.user_id, Activity.type, Activity.occurred_at)
                .where(Activity.org_id == self.world.org_id)
                .order_by(Activity.id)
            ).all()
            if rows:
                row = rows[index % len(rows)]
                new = row.occurred_at + timedelta(minutes=minutes)
                edit = store.Edit(row.id, row.user_id, row.type, row.occurred_at, new)
                store.update(session, self.world.org_id, [edit])

    def _purge(self, owner: str, calendar: bool) -> None:
        mine = self.world.calendars if calendar else self.world.connections
        with session_scope() as session:
            connections.remove(session, self.admin(session), mine[owner], purge=True)
            replacement = Connection(
                org_id=self.world.org_id,
                user_id=self.world.users[owner],
                provider="caldav" if calendar else "imap",
                config={},
                cursors={},
            )
            session.add(replacement)
            session.flush()
            mine[owner] = replacement.id

    def _zone(self, zone: str) -> None:
        with session_scope() as session:
            update_org(session, self.admin(session), schemas.OrgUpdate(timezone=zone))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    mails=st.lists(mails, min_size=1, max_size=5),
    meetings=st.lists(meetings, min_size=1, max_size=3),
    operations=operations,
)
def test_the_rollups_equal_a_count_of_the_raw_rows_after_any_sequence(
    database: Database,
    mails: list[Mail],
    meetings: list[Meeting],
    operations: list[tuple[object, ...]],
) -> None:
    scenario = Scenario(mails, meetings)
    for operation in operations:
        scenario.apply(operation)
        assert_rollups_match(scenario.world.org_id)


def busy_world() -> World:
    """A world with mail, meetings and calls spread over a daylight-saving change."""
    scenario = Scenario(
        [Mail("joe@northwind.example", ("ana@acme.example",), ANCHORS[0], True)],
        [
            Meeting(
                "ana@acme.example",
                (PEOPLE[1], "bob@acme.example"),
                ANCHORS[1],
                ANCHORS[2],
                HOUR,
                False,
            )
        ],
    )
    for operation in (
        ("mail", "ana", 0),
        ("mail", "bob", 0),
        ("meeting", "ana", 1, False),
        ("call", "bob", 0, ANCHORS[3]),
        ("call", "ana", 1, ANCHORS[4]),
    ):
        scenario.apply(operation)
    return scenario.world


def test_a_meeting_that_moves_to_another_day_moves_its_counts(database: Database) -> None:
    guest = Meeting(
        "ana@acme.example", (PEOPLE[0],), ANCHORS[0], ANCHORS[0], timedelta(hours=-20), False
    )
    scenario = Scenario([], [guest])
    ana = scenario.world.users["ana"]
    scenario.apply(("meeting", "ana", 1, False))  # 00:00 in Brussels on Sunday 29 March
    before, _ = stored_rollups(scenario.world.org_id)
    scenario.apply(("meeting", "ana", 1, True))  # 20 hours earlier: Saturday
    after, engaged = stored_rollups(scenario.world.org_id)
    assert before[(ana, date(2026, 3, 29), "meeting_held")] == 1
    assert (ana, date(2026, 3, 29), "meeting_held") not in after
    assert after[(ana, date(2026, 3, 28), "meeting_held")] == 1
    assert after[(ana, date(2026, 3, 29), "meeting_scheduled")] == 1  # when it was created
    assert sorted((day, n) for (_, day, _), n in engaged.items()) == [
        (date(2026, 3, 28), 1),
        (date(2026, 3, 29), 1),
    ]
    assert_rollups_match(scenario.world.org_id)


def test_an_undated_message_moves_to_its_earliest_copys_day(database: Database) -> None:
    undated = Mail(
        "joe@northwind.example", ("ana@acme.example", "bob@acme.example"), ANCHORS[0], False
    )
    scenario = Scenario([undated], [])
    scenario.apply(("mail", "cleo", 0))  # provider date + 50 hours: 31 March
    scenario.apply(("mail", "ana", 0))  # provider date: 00:00 on 29 March in Brussels
    users = scenario.world.users.values()  # cleo: the message was in her mailbox
    days, engaged = stored_rollups(scenario.world.org_id)
    assert days == {(user, date(2026, 3, 29), "email_received"): 1 for user in users}
    assert {(user, day) for user, day, _ in engaged} == {(u, date(2026, 3, 29)) for u in users}
    assert_rollups_match(scenario.world.org_id)


def analyzed_tables() -> set[str]:
    with session_scope() as session:
        if session.get_bind().dialect.name == "sqlite":
            return set(session.scalars(text("SELECT tbl FROM sqlite_stat1")))
        query = "SELECT relname FROM pg_stat_user_tables WHERE last_analyze IS NOT NULL"
        return set(session.scalars(text(query)))


def test_rollups_rebuild_restores_what_was_lost_or_corrupted(client: TestClient) -> None:
    world = busy_world()
    other = busy_world()
    expected = stored_rollups(world.org_id)
    assert expected == tuple(dict(c) for c in derived(world.org_id)) and expected[0]
    with session_scope() as session:
        session.execute(text("DELETE FROM contact_days WHERE count = 1"))
        session.execute(text("UPDATE contact_days SET first_at = last_at, last_at = first_at"))
        session.execute(text("UPDATE activity_days SET count = count + 5"))
        session.execute(text("DELETE FROM activity_days WHERE type = 'call'"))
        session.execute(text("UPDATE user_contacts SET count = count + 1"))
    result = CliRunner().invoke(cli, ["rollups", "rebuild", "--org", str(world.org_id)])
    assert result.exit_code == 0, result.output
    days, contacts = (len(rows) for rows in expected)
    pairs = len(derived_pairs(world.org_id))
    assert (
        f"1 organizations: {days} activity_days rows, {contacts} contact_days rows, "
        f"{pairs} user_contacts rows"
    ) in " ".join(result.output.split())
    assert stored_rollups(world.org_id) == expected
    assert_rollups_match(world.org_id)
    assert "activity_days" in analyzed_tables()  # the planner knows what the rebuild wrote
    with session_scope() as session:
        if session.get_bind().dialect.name == "postgresql":  # the rows it replaced are gone
            vacuumed = "SELECT relname FROM pg_stat_user_tables WHERE last_vacuum IS NOT NULL"
            assert {"activity_days", "contact_days", "user_contacts"} <= set(
                session.scalars(text(vacuumed))
            )
    assert stored_rollups(other.org_id) != tuple(dict(c) for c in derived(other.org_id))
    result = CliRunner().invoke(cli, ["rollups", "rebuild"])
    assert result.exit_code == 0, result.output
    assert_rollups_match(other.org_id)
    missing = CliRunner().invoke(cli, ["rollups", "rebuild", "--org", "999999"])
    assert missing.exit_code == 2 and "no organization 999999" in missing.output


def test_a_change_of_zone_through_the_api_recounts_the_days(client: TestClient) -> None:
    world = busy_world()
    with session_scope() as session:
        admin = session.scalars(
            select(User).where(User.org_id == world.org_id, User.role == "admin")
        ).one()
        from app.users.service import issue_key

        key = issue_key(session, admin)
    before = stored_rollups(world.org_id)
    for zone in ("Pacific/Auckland", "America/New_York"):
        response = client.patch(
            "/api/v1/org", json={"timezone": zone}, headers={"Authorization": f"Bearer {key}"}
        )
        assert response.status_code == 200, response.text
        assert_rollups_match(world.org_id)
        assert stored_rollups(world.org_id) != before
    response = client.patch(
        "/api/v1/org", json={"week_start": "sunday"}, headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 200, response.text
    assert_rollups_match(world.org_id)


def test_a_meeting_moved_within_its_day_moves_its_contacts_span(database: Database) -> None:
    """A move keeps the count of its day: only the recount of first_at/last_at (from the raw
    rows) moves the span, which an upsert of least/greatest alone would only widen."""
    guest = Meeting("ana@acme.example", (PEOPLE[0],), ANCHORS[4], ANCHORS[0], 2 * HOUR, False)
    scenario = Scenario([], [guest])
    ana, org_id = scenario.world.users["ana"], scenario.world.org_id
    scenario.apply(("meeting", "ana", 1, False))
    scenario.apply(("meeting", "ana", 1, True))  # two hours later, the same day in Brussels
    held = ANCHORS[4] + 2 * HOUR
    spans = stored_spans(org_id).items()
    held_on = [(user, span) for (user, day, _), span in spans if day == date(2026, 3, 2)]
    assert held_on == [(ana, (held, held))]  # created on 29 March: that row is another day
    assert_rollups_match(org_id)
