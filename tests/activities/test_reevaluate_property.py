"""Counts follow the people, as a property: any sequence of imports (mail and calendars) and
directory changes (aliases, a colleague made a user, internal domains), with the
re-evaluation job run at any points and at the end, leaves the same activities, links,
contacts and companies as importing everything once under the final directory. On SQLite
and PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from app.activities import reevaluate
from app.contacts.models import Company, Contact
from app.db import Database, session_scope
from connectors.base import CalendarObject
from tests.activities.reeval_world import Directory, Town
from tests.activities.test_store import assert_rollups_match
from tests.factories import attendee, event, message

WHEN = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
NOW = datetime(2025, 6, 1, tzinfo=UTC)  # after every event: all have ended

# --- the property: any sequence ends where importing once under the final directory does ---

PEOPLE = (
    "ana@acme.example",
    "bob@acme.example",
    "ana.s@acme.example",  # an alias ana may get
    "ana@home.example",  # an alias at a domain of its own: a contact until it is hers
    "cleo@acme.example",  # a colleague who may become a user
    "Joe Smith <joe@northwind.example>",
    "kim@partner.example",  # partner.example may become internal
    "Lee <lee@eu.partner.example>",
    "max@gmail.com",
)
ALIASES = ("ana.s@acme.example", "ana@home.example")
DOMAINS = (("acme.example",), ("acme.example", "partner.example"))


@dataclass(frozen=True)
class Mail:
    sender: str
    to: tuple[str, ...]
    bcc: tuple[str, ...]
    hours: int
    dated: bool


@dataclass(frozen=True)
class Meeting:
    organizer: str
    guests: tuple[str, ...]
    hours: int


def addresses(size: int) -> st.SearchStrategy[tuple[str, ...]]:
    return st.lists(st.sampled_from(PEOPLE), min_size=size, max_size=3, unique=True).map(tuple)


mails = st.builds(
    Mail, st.sampled_from(PEOPLE), addresses(1), addresses(0), st.integers(0, 72), st.booleans()
)
meetings = st.builds(Meeting, st.sampled_from(PEOPLE), addresses(0), st.integers(0, 72))
operations = st.lists(
    st.one_of(
        st.tuples(
            st.just("mail"), st.sampled_from(("ana", "bob")), st.integers(0, 5), st.booleans()
        ),
        st.tuples(st.just("meeting"), st.sampled_from(("ana", "bob")), st.integers(0, 2)),
        st.tuples(st.just("aliases"), st.sets(st.sampled_from(ALIASES)).map(sorted)),
        st.tuples(st.just("cleo")),
        st.tuples(st.just("domains"), st.sampled_from(DOMAINS)),
        st.tuples(st.just("reevaluate")),
    ),
    min_size=2,
    max_size=14,
)


class Sequence:
    def __init__(self, mails: list[Mail], meetings: list[Meeting]) -> None:
        self.mails, self.meetings = mails, meetings
        self.final = Directory()
        self.captured: list[tuple[object, ...]] = []  # the mail and meeting operations

    def capture(self, town: Town, operation: tuple[object, ...]) -> None:
        kind, owner, index, *rest = operation
        assert isinstance(owner, str) and isinstance(index, int)
        if kind == "mail":
            spec = self.mails[index % len(self.mails)]
            sent = bool(rest[0])
            when = WHEN + timedelta(hours=spec.hours)
            town.ingest(
                owner,
                message(
                    spec.sender,
                    spec.to,
                    bcc=spec.bcc if sent else (),  # only the sender's copy knows its Bcc
                    message_id=f"m{index}@sequence.example",
                    date=when if spec.dated else None,
                    provider_date=when + timedelta(hours=25 if owner == "bob" else 0),
                    source_id=f"{owner}-{index}-{sent}",
                    folder_role="sent" if sent else "inbox",
                    subject=f"Proposal {index}",
                ),
            )
        else:
            spec_meeting = self.meetings[index % len(self.meetings)]
            item = event(
                uid=f"evt-{index}",
                start=WHEN + timedelta(hours=spec_meeting.hours),
                organizer=spec_meeting.organizer,
                attendees=tuple(attendee(g) for g in spec_meeting.guests),
                resource=f"cal/evt-{index}.ics",
            )
            town.calendar(owner, CalendarObject(f"cal/evt-{index}.ics", (item,)), now=NOW)

    def apply(self, town: Town, operation: tuple[object, ...]) -> None:
        kind = operation[0]
        if kind in ("mail", "meeting"):
            self.captured.append(operation)
            self.capture(town, operation)
        elif kind == "aliases":
            aliases = tuple(operation[1])  # type: ignore[arg-type]
            town.set_aliases(aliases)
            self.final.aliases = aliases
        elif kind == "cleo" and not self.final.cleo:
            town.add_cleo()
            self.final.cleo = True
        elif kind == "domains":
            domains = tuple(operation[1])  # type: ignore[arg-type]
            town.set_domains(domains)
            self.final.domains = domains
        elif kind == "reevaluate":
            reevaluate.drain()


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    mails=st.lists(mails, min_size=1, max_size=6),
    meetings=st.lists(meetings, min_size=1, max_size=3),
    operations=operations,
)
def test_any_sequence_of_imports_and_changes_ends_as_one_import_under_the_final_directory(
    database: Database,
    mails: list[Mail],
    meetings: list[Meeting],
    operations: list[tuple[object, ...]],
) -> None:
    sequence = Sequence(mails, meetings)
    town = Town.make(Directory())
    for operation in operations:
        sequence.apply(town, operation)
    reevaluate.drain()
    once = Town.make(sequence.final)
    for operation in sequence.captured:
        sequence.capture(once, operation)
    assert town.snapshot() == once.snapshot()
    assert_rollups_match(town.org_id)
    with session_scope() as session:  # nothing left behind: no company without a contact
        assert (
            session.scalar(
                select(func.count())
                .select_from(Company)
                .where(
                    Company.org_id == town.org_id,
                    ~select(Contact.id).where(Contact.company_id == Company.id).exists(),
                )
            )
            == 0
        )
