"""Counts follow the people: after any change of the directory, the re-evaluation job leaves
the activities, contacts and companies that importing everything once under the final
directory gives (issue 12, point 5). On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.activities import reevaluate
from app.activities.models import DirectoryChange, Reevaluation, ReevaluationMessage
from app.contacts.models import Contact
from app.db import Database, session_scope
from tests.activities.reeval_world import Directory, Town
from tests.activities.test_store import assert_rollups_match
from tests.api import Org
from tests.factories import message


def activities(town: Town) -> set[tuple[str, str, frozenset[str]]]:
    """(user, type, linked contacts) of every activity."""
    return {(user, kind, people) for _, user, kind, _, _, people in town.snapshot()[0]}


def test_an_alias_added_after_the_import_counts_the_mail_sent_from_it(
    database: Database,
) -> None:
    town = Town.make(Directory())
    town.ingest(
        "ana",
        message("ana.s@acme.example", ("joe@northwind.example",), folder_role="sent"),
        message("Joe <joe@northwind.example>", ("ana.s@acme.example",), folder_role="inbox"),
    )
    # before: the sent copy is nobody's, the received copy is ana's (her own mailbox)
    assert activities(town) == {
        ("ana@acme.example", "email_received", frozenset({"joe@northwind.example"}))
    }
    town.set_aliases(["ana.s@acme.example"])
    assert reevaluate.drain() == 1
    assert activities(town) == {
        ("ana@acme.example", "email_sent", frozenset({"joe@northwind.example"})),
        ("ana@acme.example", "email_received", frozenset({"joe@northwind.example"})),
    }
    assert_rollups_match(town.org_id)


def test_send_as_addresses_learnt_on_a_consent_count_too(database: Database) -> None:
    from app.models import User
    from app.users.service import learn_addresses

    town = Town.make(Directory())
    town.ingest("ana", message("ana@home.example", ("joe@northwind.example",), folder_role="sent"))
    assert activities(town) == set()  # from a stranger to a stranger so far
    with session_scope() as session:  # what the OAuth callback does with the provider's list
        ana = session.get_one(User, town.users["ana@acme.example"])
        assert learn_addresses(session, ana, ["ana@home.example"]) == ["ana@home.example"]
    reevaluate.drain()
    assert activities(town) == {
        ("ana@acme.example", "email_sent", frozenset({"joe@northwind.example"}))
    }


def test_a_colleague_made_a_user_is_no_longer_a_contact(database: Database) -> None:
    town = Town.make(Directory(domains=("acme.example",)))
    town.ingest(
        "ana",
        message("ana@acme.example", ("cleo@acme.example", "joe@northwind.example")),
        message("ana@acme.example", ("pat@partner.example",), folder_role="sent"),
    )
    before = town.snapshot()
    assert set(before[1]) == {"joe@northwind.example", "pat@partner.example"}
    town.set_domains(["acme.example", "partner.example"])  # a partner became one of us
    town.add_cleo()
    reevaluate.drain()
    _, contacts, companies = town.snapshot()
    assert contacts == {"joe@northwind.example": "northwind.example"}
    assert companies == {"northwind.example"}  # partner.example went with its last contact
    assert activities(town) == {
        ("ana@acme.example", "email_sent", frozenset({"joe@northwind.example"}))
    }


def test_a_contact_someone_edited_or_a_deal_holds_stays(database: Database) -> None:
    town = Town.make(Directory())
    town.ingest("ana", message("ana@acme.example", ("pat@partner.example",), folder_role="sent"))
    with session_scope() as session:
        contact = session.scalars(select(Contact).where(Contact.org_id == town.org_id)).one()
        contact.edited_fields, contact.title = ["title"], "Buyer"
    town.set_domains(["acme.example", "partner.example"])
    reevaluate.drain()
    assert activities(town) == set()
    assert town.snapshot()[1] == {"pat@partner.example": "partner.example"}


def test_the_job_resumes_after_a_crash_and_runs_once_at_a_time(database: Database) -> None:
    town = Town.make(Directory())
    town.ingest(
        "ana",
        *(
            message("ana.s@acme.example", (f"p{i}@northwind.example",), folder_role="sent")
            for i in range(12)
        ),
    )
    town.set_aliases(["ana.s@acme.example"])
    page = reevaluate.PAGE
    reevaluate.PAGE = 5
    try:
        with session_scope() as session:
            (lease,) = reevaluate.claim(session, owner="first", now=datetime.now(UTC))
        with session_scope() as session:  # a second process finds it taken
            assert reevaluate.claim(session, owner="second", now=datetime.now(UTC)) == []
        with session_scope() as session:
            assert reevaluate.run_page(session, lease, None) is not None
        # "first" dies here; once its lease has run out, another process takes over
        later = datetime.now(UTC) + timedelta(seconds=reevaluate.LEASE_SECONDS + 1)
        with session_scope() as session:
            (taken,) = reevaluate.claim(session, owner="second", now=later)
            assert taken.epoch == lease.epoch + 1
            progress = reevaluate.status(session, town.org_id, now=datetime.now(UTC))
        assert (progress.done, progress.total) == (5, 12)  # resumed, not started again
        with pytest.raises(reevaluate.LeaseLost), session_scope() as session:
            reevaluate.run_page(session, lease, None)  # the first one's next page: refused
        reevaluate.run(taken)
    finally:
        reevaluate.PAGE = page
    assert len(activities(town)) == 12  # one email_sent per message
    with session_scope() as session:
        sent = session.scalar(select(func.count()).select_from(Contact))
        state = reevaluate.status(session, town.org_id, now=datetime.now(UTC))
        assert session.scalar(select(func.count()).select_from(ReevaluationMessage)) == 0
        assert session.scalar(select(func.count()).select_from(DirectoryChange)) == 0
        row = session.get_one(Reevaluation, town.org_id)
        assert row.lease_owner is None
    assert sent == 12
    assert (state.state, state.done, state.total) == ("idle", 12, 12)
    assert state.finished_at is not None


def test_a_change_during_a_run_is_taken_by_its_next_page(database: Database) -> None:
    town = Town.make(Directory())
    town.ingest(
        "ana",
        *(
            message("ana.s@acme.example", (f"p{i}@partner.example",), folder_role="sent")
            for i in range(8)
        ),
        message("ana.s@acme.example", ("joe@northwind.example",), folder_role="sent"),
    )
    town.set_aliases(["ana.s@acme.example"])
    page = reevaluate.PAGE
    reevaluate.PAGE = 4
    try:
        with session_scope() as session:
            (lease,) = reevaluate.claim(session, owner="worker", now=datetime.now(UTC))
        with session_scope() as session:
            directory = reevaluate.run_page(session, lease, None)
        assert len(activities(town)) == 4  # the first page counted under the alias
        town.set_domains(["acme.example", "partner.example"])  # meanwhile: partner is us
        reevaluate.run(lease)
    finally:
        reevaluate.PAGE = page
    assert directory is not None
    assert activities(town) == {
        ("ana@acme.example", "email_sent", frozenset({"joe@northwind.example"}))
    }
    assert set(town.snapshot()[1]) == {"joe@northwind.example"}
    assert_rollups_match(town.org_id)


def test_a_sync_holding_the_old_directory_infers_with_the_new_one(database: Database) -> None:
    town = Town.make(Directory())
    from app.activities.ingest import ingest_page, load_directory
    from app.models import Connection
    from connectors.base import Page

    with session_scope() as session:
        stale = load_directory(session, town.org_id)  # a sync run began with this
    town.set_aliases(["ana.s@acme.example"])
    with session_scope() as session:
        connection = session.get_one(Connection, town.mailboxes["ana"])
        sent = message("ana.s@acme.example", ("joe@northwind.example",), folder_role="sent")
        ingest_page(session, connection, Page(messages=(sent,)), stale)
    assert activities(town) == {
        ("ana@acme.example", "email_sent", frozenset({"joe@northwind.example"}))
    }


def test_mail_filtered_before_0012_counts_once_read_again(database: Database) -> None:
    from sqlalchemy import delete, update

    from app.activities.models import Message, MessageAddress, Observation

    town = Town.make(Directory())
    sent = message(
        "ana.s@acme.example", ("joe@northwind.example",), folder_role="sent", source_id="old-1"
    )
    town.ingest("ana", sent)
    with session_scope() as session:  # as migration 0012 leaves a message filtered before it
        session.execute(update(Observation).values(message_pk=None, sent=None))
        session.execute(delete(MessageAddress))
        session.execute(delete(Message))
    town.set_aliases(["ana.s@acme.example"])
    reevaluate.drain()
    assert activities(town) == set()  # nothing kept: nothing to derive again
    town.ingest("ana", sent)  # the same file imported again: read again, not skipped
    assert activities(town) == {
        ("ana@acme.example", "email_sent", frozenset({"joe@northwind.example"}))
    }
    with session_scope() as session:
        (copy,) = session.scalars(select(Observation)).all()
        assert (copy.status, copy.sent, copy.message_pk is not None) == ("imported", True, True)
    town.ingest("ana", sent)  # and now it is known: skipped
    assert len(activities(town)) == 1


def test_progress_is_visible_to_the_organization(client: TestClient, org: Org) -> None:
    rep = org.as_user("ana@acme.example")
    # the fixture made ana a user: a change, waiting for a worker
    waiting = client.get("/api/v1/org/reevaluation", headers=rep)
    assert waiting.status_code == 200
    assert waiting.json()["state"] == "pending"
    reevaluate.drain()
    done = client.get("/api/v1/org/reevaluation", headers=rep).json()
    assert done["state"] == "idle" and done["done"] == done["total"] == 0  # no mail yet
    assert done["started_at"] <= done["finished_at"]
    org.user("bob@acme.example", aliases=["robert@acme.example"])  # a new user is a change
    assert client.get("/api/v1/org/reevaluation", headers=rep).json()["state"] == "pending"
    assert client.get("/api/v1/org/reevaluation").status_code == 401


@pytest.mark.postgresql_only
def test_a_change_waits_for_the_pages_inferring_with_the_old_directory(
    database: Database,
) -> None:
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    from app.activities import directory as directories

    town = Town.make(Directory())
    with database.sessions.begin() as page:  # a sync page, between its look and its commit
        before = directories.current(page, town.org_id, None)
        with (
            pytest.raises(OperationalError, match="lock timeout"),
            database.sessions.begin() as change,
        ):
            change.execute(text("SET LOCAL lock_timeout = '300ms'"))
            directories.bump(change, town.org_id)
        with database.sessions.begin() as other:  # the organization itself is not held
            other.execute(text("SET LOCAL lock_timeout = '300ms'"))
            other.execute(
                text("UPDATE organizations SET name = 'Acme 2' WHERE id = :id"), {"id": town.org_id}
            )
    town.set_aliases(["ana.s@acme.example"])  # once the page committed: it goes through
    with session_scope() as session:
        assert directories.current(session, town.org_id, before).version == before.version + 1
