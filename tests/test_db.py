"""The batch helpers ingest writes and reads with, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from typing import Any, cast

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import Table, select

from app.contacts.models import Company
from app.db import Database, insert_ignore, lookup, session_scope
from app.models import utcnow
from tests.conftest import _empty
from tests.world import make_world

COMPANIES = cast(Table, Company.__table__)
# any text a column holds (no NUL, which neither database keeps, no lone surrogates), with
# the characters that mean something in an array literal or in JSON drawn often
SPECIAL = st.sampled_from(list("\"\\{},' NUL"))
ANY = st.characters(blacklist_categories=("Cs",), blacklist_characters="\0")
TEXT = st.text(SPECIAL | ANY, max_size=40)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(stored=st.sets(TEXT, max_size=8), asked=st.sets(TEXT, max_size=8))
@example(stored={'a"b', "c\\d", "{e,f}", "", "NULL"}, asked={'a"b', "c\\d", "{e,f}", "", "x"})
def test_lookup_finds_exactly_the_stored_keys_asked_for_whatever_they_hold(
    database: Database, stored: set[str], asked: set[str]
) -> None:
    _empty(database)
    org_id = make_world().org_id
    other = make_world().org_id
    with session_scope() as session:
        for org in (org_id, other):
            rows = [{"domain": d, "name": d[:10]} for d in stored]
            insert_ignore(session, COMPANIES, rows, ["org_id", "domain"], shared={"org_id": org})
    with session_scope() as session:
        found = lookup(
            session, COMPANIES, ["domain", "org_id"], {"org_id": org_id}, "domain", asked
        )
    assert sorted(found) == sorted((d, org_id) for d in stored & asked)


def test_shared_values_and_defaults_are_written_to_every_row(database: Database) -> None:
    org_id = make_world().org_id
    before = utcnow()
    rows: list[dict[str, Any]] = [{"domain": "a.example"}, {"domain": 'b"\\{,}.example'}]
    with session_scope() as session:
        inserted = insert_ignore(
            session,
            COMPANIES,
            rows,
            ["org_id", "domain"],
            returning=(COMPANIES.c.domain,),
            shared={"org_id": org_id, "name": "Shared"},
        )
        again = insert_ignore(
            session, COMPANIES, rows, ["org_id", "domain"], shared={"org_id": org_id, "name": "X"}
        )
    assert sorted(d for (d,) in inserted) == ["a.example", 'b"\\{,}.example'] and again == []
    with session_scope() as session:
        stored = session.execute(
            select(Company.org_id, Company.domain, Company.name, Company.created_at)
        ).all()
    assert sorted((o, d, n) for o, d, n, _ in stored) == [
        (org_id, "a.example", "Shared"),
        (org_id, 'b"\\{,}.example', "Shared"),
    ]
    assert all(before <= created <= utcnow() for *_, created in stored)  # the batch's moment
