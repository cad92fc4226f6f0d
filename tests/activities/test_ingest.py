"""Ingest writes each message once, links contacts and companies, and replays harmlessly."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from app.activities.ingest import ingest_page, load_directory
from app.activities.models import Activity, Observation
from app.contacts.models import ActivityContact, Company, Contact
from app.contacts.service import KnownContacts
from app.db import Database, session_scope
from app.models import Connection
from connectors.base import Page, RemoteMessage
from tests.conftest import _empty
from tests.factories import message
from tests.world import World, make_world


def activities() -> list[tuple[str, int, str]]:
    with session_scope() as session:
        rows = session.execute(select(Activity.type, Activity.user_id, Activity.subject))
        return sorted((t, u, s or "") for t, u, s in rows)


def contacts() -> dict[str, tuple[str | None, str | None]]:
    """email -> (name, company domain)."""
    with session_scope() as session:
        rows = session.execute(
            select(Contact.email, Contact.name, Company.domain).outerjoin(
                Company, Company.id == Contact.company_id
            )
        )
        return {email: (name, domain) for email, name, domain in rows}


def test_a_message_in_the_senders_sent_folder_and_a_colleagues_inbox_counts_once(
    database: Database,
) -> None:
    world = make_world()
    sent = message(
        "ana@acme.example",
        ("Joe <joe@mail.northwind.co.uk>",),
        cc=("bob@acme.example",),
        folder_role="sent",
        message_id="x1@acme.example",
    )
    inbox = message(
        "ana@acme.example",
        ("joe@mail.northwind.co.uk",),
        cc=("bob@acme.example",),
        folder_role="inbox",
        message_id="x1@acme.example",
    )
    world.ingest("bob", inbox)
    world.ingest("ana", sent)
    assert activities() == [("email_sent", world.users["ana"], "Proposal")]
    assert contacts() == {"joe@mail.northwind.co.uk": ("Joe", "northwind.co.uk")}
    with session_scope() as session:
        names = session.scalars(select(Company.name)).all()
    assert names == ["Northwind"]


def test_mail_to_two_reps_gives_each_one_email_received_and_one_contact(
    database: Database,
) -> None:
    world = make_world()
    mail = dict(
        sender="Kim Lee <kim@globex.example>",
        to=("ana@acme.example",),
        cc=("bob@acme.example",),
        message_id="k1@globex.example",
    )
    world.ingest("ana", message(**mail))  # type: ignore[arg-type]
    world.ingest("bob", message(**mail))  # type: ignore[arg-type]
    ana, bob = world.users["ana"], world.users["bob"]
    assert activities() == [
        ("email_received", ana, "Proposal"),
        ("email_received", bob, "Proposal"),
    ]
    assert list(contacts()) == ["kim@globex.example"]
    with session_scope() as session:
        links = session.execute(select(ActivityContact)).all()
    assert len(links) == 2


def test_replaying_a_page_changes_nothing_and_counts_are_kept(database: Database) -> None:
    world = make_world()
    page = [
        message("ana@acme.example", ("joe@northwind.example",), folder_role="sent"),
        message("joe@northwind.example", ("ana@acme.example",)),
        message("news@northwind.example", ("ana@acme.example",), headers={"list-id": "<l>"}),
        message("ana@acme.example", ("bob@acme.example",), folder_role="sent"),
    ]
    first = world.ingest("ana", *page)
    again = world.ingest("ana", *page)
    assert (first.seen, first.imported, first.filtered, first.activities_created) == (4, 2, 2, 2)
    assert (again.seen, again.imported, again.activities_created) == (0, 0, 0)
    with session_scope() as session:
        connection = session.get_one(Connection, world.connections["ana"])
        reasons = sorted(session.scalars(select(Observation.reason)))
    assert (connection.messages_seen, connection.messages_filtered) == (4, 2)
    assert connection.activities_created == 2
    assert reasons == ["internal-only", "mailing-list", "received", "sent"]


def test_automated_and_internal_only_addresses_never_become_contacts(database: Database) -> None:
    world = make_world()
    world.ingest(
        "ana",
        message("noreply@northwind.example", ("ana@acme.example",)),
        message(
            "joe@northwind.example",
            ("ana@acme.example",),
            headers={"auto-submitted": "auto-replied"},
        ),
        message("ana@acme.example", ("bob@acme.example", "ops@eu.acme.example")),
        message("carl@acme.example", ("ana@acme.example",)),
    )
    assert contacts() == {}
    assert activities() == []


def test_webmail_contacts_have_no_company_and_names_improve(database: Database) -> None:
    world = make_world()
    world.ingest("ana", message("jo@gmail.com", ("ana@acme.example",)))
    world.ingest("ana", message("JO SMITH <jo@gmail.com>", ("ana@acme.example",)))
    world.ingest("ana", message("Jo Smith <jo@gmail.com>", ("ana@acme.example",)))
    world.ingest("ana", message("jo <jo@gmail.com>", ("ana@acme.example",)))
    assert contacts() == {"jo@gmail.com": ("Jo Smith", None)}


def test_signature_fills_empty_phone_and_title_but_never_a_persons_edit(database: Database) -> None:
    world = make_world()
    body = (
        b"Hi Ana,\n\nSee you Tuesday.\n\nBest regards,\nJane Doe\nVP Sales | Northwind Ltd\n"
        b"Tel: +44 20 7946 0958\n"
    )
    world.ingest(
        "ana", message("Jane Doe <jane@northwind.co.uk>", ("ana@acme.example",), body=body)
    )
    with session_scope() as session:
        jane = session.scalars(select(Contact)).one()
        assert (jane.phones, jane.title) == (["+442079460958"], "VP Sales")
        jane.title, jane.phones, jane.edited_fields = "Buyer", [], ["title", "phones"]
    world.ingest(
        "ana", message("Jane Doe <jane@northwind.co.uk>", ("ana@acme.example",), body=body)
    )
    with session_scope() as session:
        jane = session.scalars(select(Contact)).one()
        assert (jane.phones, jane.title) == ([], "Buyer")


def test_signatures_of_the_reps_own_mail_are_not_read(database: Database) -> None:
    world = make_world()
    body = b"Thanks,\nAna\nAccount Executive\n+32 2 555 12 34\n"
    world.ingest(
        "ana",
        message("ana@acme.example", ("joe@northwind.example",), body=body, folder_role="sent"),
    )
    with session_scope() as session:
        joe = session.scalars(select(Contact)).one()
    assert (joe.phones, joe.title) == ([], None)


def test_missing_date_takes_the_earliest_provider_date_in_any_order(database: Database) -> None:
    world = make_world()
    early, late = datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 2, 3, tzinfo=UTC)
    fields = dict(
        sender="joe@northwind.example",
        to=("ana@acme.example", "bob@acme.example"),
        date=None,
        message_id="nodate@northwind.example",
    )
    world.ingest("bob", message(**fields, provider_date=late))  # type: ignore[arg-type]
    world.ingest("ana", message(**fields, provider_date=early))  # type: ignore[arg-type]
    with session_scope() as session:
        times = set(session.scalars(select(Activity.occurred_at)))
    assert times == {early}


def test_unreadable_items_are_recorded_as_failed(database: Database) -> None:
    from app.activities.ingest import ingest_page, load_directory
    from connectors.base import Failure, Page

    world = make_world()
    with session_scope() as session:
        connection = session.get_one(Connection, world.connections["ana"])
        page = Page(failures=(Failure("INBOX/1/7", "no message headers found"),))
        ingest_page(session, connection, page, load_directory(session, world.org_id))
    with session_scope() as session:
        row = session.scalars(select(Observation)).one()
        connection = session.get_one(Connection, world.connections["ana"])
    assert (row.status, row.reason, connection.messages_failed) == (
        "failed",
        "no message headers found",
        1,
    )


# --- idempotency, as a property: any subset of mailboxes, any order, any repetition --------

EXT = ("joe@northwind.example", "kim@globex.co.uk", "li@gmail.com")
_MAILBOXES: dict[str, list[dict[str, object]]] = {}


def _corpus() -> dict[str, list[dict[str, object]]]:
    """One conversation seen from three mailboxes: sent copies, inbox copies, Bcc, automated."""
    shared = [
        dict(sender="ana@acme.example", to=(EXT[0],), cc=("bob@acme.example",), message_id="a1"),
        dict(sender=EXT[1], to=("ana@acme.example", "bob@acme.example"), message_id="k1"),
        dict(sender="bob@acme.example", to=("cleo@acme.example",), bcc=(EXT[2],), message_id="b1"),
        dict(sender=EXT[0], to=("sales@acme.example",), message_id="j1"),
        dict(sender="noreply@globex.co.uk", to=("ana@acme.example",), message_id="n1"),
        dict(sender=EXT[2], to=("cleo@acme.example",), message_id=None, subject="no id"),
    ]
    where = {
        "ana": [(0, "sent"), (1, "inbox"), (4, "inbox"), (3, "inbox")],
        "bob": [(0, "inbox"), (1, "inbox"), (2, "sent"), (3, "inbox")],
        "cleo": [(2, "inbox"), (5, "inbox")],
    }
    return {
        owner: [
            {**shared[i], "folder_role": role, "source_id": f"{owner}-{i}"} for i, role in spots
        ]
        for owner, spots in where.items()
    }


def _sync(world: World, plan: list[str]) -> list[tuple[str, int, str]]:
    corpus = _corpus()
    for owner in plan:
        world.ingest(owner, *[message(**fields) for fields in corpus[owner]])  # type: ignore[arg-type]
    with session_scope() as session:
        rows = session.execute(
            select(Activity.type, Activity.user_id, Activity.source_key, Contact.email)
            .join(ActivityContact, ActivityContact.activity_id == Activity.id)
            .join(Contact, Contact.id == ActivityContact.contact_id)
        )
        return sorted((t, u, f"{k[:8]}>{e}") for t, u, k, e in rows)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    subset=st.sets(st.sampled_from(["ana", "bob", "cleo"]), min_size=1),
    data=st.data(),
)
def test_any_order_and_repetition_of_mailboxes_gives_the_same_activities(
    database: Database, subset: set[str], data: st.DataObject
) -> None:
    _empty(database)
    expected = _sync(make_world(), sorted(subset))
    plan = data.draw(
        st.lists(st.sampled_from(sorted(subset)), min_size=len(subset), max_size=8).filter(
            lambda p: set(p) == subset
        )
    )
    _empty(database)
    assert _sync(make_world(), plan) == expected


def test_nul_characters_in_headers_are_dropped_not_fatal(database: Database) -> None:
    """PostgreSQL text holds no NUL: a header carrying one, raw or encoded, must still import."""
    from connectors.mail import parse_headers

    world = make_world()
    raw = (
        b"From: =?utf-8?q?Joe=00_Smith?= <joe@northwind.example>\r\n"
        b"To: ana@acme.example\r\n"
        b"Subject: Pro\x00posal =?utf-8?q?v=002?=\r\n"
        b"Message-ID: <n\x00ul@northwind.example>\r\n"
        b"Date: Mon, 02 Mar 2026 09:30:00 +0000\r\n\r\n"
    )
    parsed = parse_headers(raw, source_id="INBOX/1/1", folder_role="inbox")
    result = world.ingest("ana", parsed)
    assert (result.imported, result.failed) == (1, 0)
    assert activities() == [("email_received", world.users["ana"], "Proposal v2")]
    assert contacts() == {"joe@northwind.example": ("Joe Smith", "northwind.example")}


# --- the contacts a run already knows ----------------------------------------------------------


def _pages(world: World, owner: str, pages: list[list[RemoteMessage]], known: object) -> None:
    for page in pages:
        with session_scope() as session:
            connection = session.get_one(Connection, world.connections[owner])
            directory = load_directory(session, world.org_id)
            ingest_page(session, connection, Page(messages=tuple(page)), directory, known)  # type: ignore[arg-type]


def _contact_rows() -> list[tuple[str, str | None, str | None, int | None]]:
    with session_scope() as session:
        rows = session.execute(
            select(Contact.email, Contact.name, Contact.title, Contact.company_id)
        )
        return sorted((e, n, t, c) for e, n, t, c in rows)


def _people_pages() -> list[list[RemoteMessage]]:
    """A newest-first backfill: the same people page after page, names getting better."""
    joe = (
        "joe@northwind.example",
        "Joe <joe@northwind.example>",
        "Joe Miller <joe@northwind.example>",
    )
    li, ana = ("li@gmail.com", "Li Wei <li@gmail.com>"), ("ana@acme.example",)
    return [
        [message(joe[0], ana), message(li[0], ana)],
        [message(joe[1], ana), message(ana[0], (joe[0],))],
        [message(joe[2], ana), message(li[1], ana)],
        [message(joe[1], ana, cc=("kim@globex.co.uk",))],
    ]


def test_a_run_that_remembers_its_contacts_writes_what_a_run_that_does_not_writes(
    database: Database,
) -> None:
    pages = _people_pages()
    _pages(make_world(), "ana", pages, None)
    without = (activities(), _contact_rows())
    _empty(database)
    known = KnownContacts()
    _pages(make_world(), "ana", pages, known)
    assert (activities(), _contact_rows()) == without
    names = {email: row.name for email, row in known.rows.items()}
    assert names["joe@northwind.example"] == "Joe Miller" and names["li@gmail.com"] == "Li Wei"


def test_a_remembered_contact_never_overwrites_what_a_person_set_meanwhile(
    database: Database,
) -> None:
    world = make_world()
    known = KnownContacts()
    _pages(world, "ana", [[message("Jo <joe@northwind.example>", ("ana@acme.example",))]], known)
    with session_scope() as session:  # a person names the contact by hand (the PATCH route)
        contact = session.scalars(select(Contact)).one()
        contact.name, contact.edited_fields = "J.", ["name"]
    better = message("Joe Miller <joe@northwind.example>", ("ana@acme.example",))
    _pages(world, "ana", [[better]], known)  # the run's memory still says "Jo", unedited
    assert [(e, n) for e, n, _t, _c in _contact_rows()] == [("joe@northwind.example", "J.")]
