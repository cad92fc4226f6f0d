"""GET /contacts, GET /companies and PATCH /contacts/{id}, with data from the real ingest."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.db import Database, session_scope
from app.models import Connection
from tests.api import Org, make_org
from tests.factories import message
from tests.world import World

CONTACT_FIELDS = {
    "id",
    "name",
    "emails",
    "phones",
    "title",
    "company_id",
    "first_seen_at",
    "last_interaction_at",
}
COMPANY_FIELDS = {"id", "name", "domains", "contact_count", "last_interaction_at"}
SIGNATURE = (
    b"Hi Ana,\n\nSee you Tuesday.\n\nBest regards,\n{name}\nVP Sales | Northwind Ltd\n"
    b"Tel: +44 20 7946 0958\n"
)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def moment(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def error_body(response: Any, status: int) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body


@dataclass
class Book:
    org: Org
    world: World

    def get(self, path: str, **params: Any) -> Any:
        return self.org.client.get(path, params=params, headers=self.org.as_admin())

    def page(self, path: str, **params: Any) -> list[dict[str, Any]]:
        response = self.get(path, **params)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"items", "next_cursor"} and body["next_cursor"] is None
        items: list[dict[str, Any]] = body["items"]
        return items

    def contacts(self, **params: Any) -> dict[str, dict[str, Any]]:
        """email -> contact."""
        found = {}
        for item in self.page("/api/v1/contacts", **params):
            assert set(item) == CONTACT_FIELDS, item
            assert len(item["emails"]) >= 1
            found[item["emails"][0]] = item
        return found

    def companies(self, **params: Any) -> dict[str, dict[str, Any]]:
        """first domain -> company."""
        found = {}
        for item in self.page("/api/v1/companies", **params):
            assert set(item) == COMPANY_FIELDS, item
            found[item["domains"][0]] = item
        return found

    def patch(self, contact_id: int, body: dict[str, Any]) -> Any:
        return self.org.client.patch(
            f"/api/v1/contacts/{contact_id}", json=body, headers=self.org.as_admin()
        )


@pytest.fixture
def book(client: TestClient) -> Book:
    org = make_org(client)
    ana = org.user("ana@acme.example")
    with session_scope() as session:
        row = Connection(org_id=org.id, user_id=ana["id"], provider="imap", config={}, cursors={})
        session.add(row)
        session.flush()
        world = World(org.id, {"ana": ana["id"]}, {"ana": row.id})
    world.ingest(
        "ana",
        message(
            "ana@acme.example",
            ("Joe Bloggs <joe@northwind.co.uk>", "kim@mail.northwind.co.uk"),
            folder_role="sent",
            date=at("2026-03-02T09:00"),
        ),
        message(
            "Joe Bloggs <joe@northwind.co.uk>", ("ana@acme.example",), date=at("2026-03-04T15:00")
        ),
        message(
            "ana@acme.example",
            ("Lee Chan <lee@globex.example>",),
            folder_role="sent",
            date=at("2026-03-03T10:00"),
        ),
        message("Pat Doe <pat.doe@gmail.com>", ("ana@acme.example",), date=at("2026-03-01T08:00")),
        # internal only, and automated: neither makes a contact
        message("ana@acme.example", ("bob@acme.example",), folder_role="sent"),
        message(
            "news@lists.initech.example",
            ("ana@acme.example",),
            headers={"list-id": "<news.initech.example>"},
        ),
    )
    return Book(org, world)


def test_contacts_carry_the_documented_fields(book: Book) -> None:
    contacts = book.contacts()
    assert set(contacts) == {
        "joe@northwind.co.uk",
        "kim@mail.northwind.co.uk",
        "lee@globex.example",
        "pat.doe@gmail.com",
    }
    joe = contacts["joe@northwind.co.uk"]
    assert joe["name"] == "Joe Bloggs" and joe["emails"] == ["joe@northwind.co.uk"]
    assert joe["phones"] == [] and joe["title"] is None
    assert moment(joe["first_seen_at"]) == at("2026-03-02T09:00")
    assert moment(joe["last_interaction_at"]) == at("2026-03-04T15:00")
    assert contacts["kim@mail.northwind.co.uk"]["company_id"] == joe["company_id"] is not None
    assert contacts["lee@globex.example"]["company_id"] not in (None, joe["company_id"])
    assert contacts["pat.doe@gmail.com"]["company_id"] is None  # personal webmail


def test_contact_filters(book: Book) -> None:
    everyone = book.contacts()
    northwind = everyone["joe@northwind.co.uk"]["company_id"]
    assert set(book.contacts(email="joe@northwind.co.uk")) == {"joe@northwind.co.uk"}
    assert set(book.contacts(email=" JOE@Northwind.CO.UK ")) == {"joe@northwind.co.uk"}
    assert book.contacts(email="joe@northwind") == {}
    assert set(book.contacts(company_id=northwind)) == {
        "joe@northwind.co.uk",
        "kim@mail.northwind.co.uk",
    }
    assert book.contacts(company_id=999999) == {}
    assert set(book.contacts(q="bloggs")) == {"joe@northwind.co.uk"}  # in the name
    assert set(book.contacts(q="NORTHWIND")) == {  # in the address
        "joe@northwind.co.uk",
        "kim@mail.northwind.co.uk",
    }
    assert set(book.contacts(q="chan", company_id=northwind)) == set()
    assert set(book.contacts(q="o")) == set(everyone)
    # LIKE wildcards are searched for literally
    assert book.contacts(q="%") == {}
    assert book.contacts(q="_") == {}
    assert set(book.contacts(q=".")) == set(everyone)
    assert set(book.contacts(q="pat.doe")) == {"pat.doe@gmail.com"}
    assert book.contacts(q="pat_doe") == {}


def test_contacts_page_through_with_a_cursor(book: Book) -> None:
    seen: list[int] = []
    cursor = None
    for _ in range(10):
        params: dict[str, Any] = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        response = book.get("/api/v1/contacts", **params)
        assert response.status_code == 200, response.text
        seen += [c["id"] for c in response.json()["items"]]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(c["id"] for c in book.contacts().values())
    assert len(seen) == len(set(seen)) == 4
    error_body(book.get("/api/v1/contacts", cursor="garbage!!"), 400)
    error_body(book.get("/api/v1/companies", cursor="garbage!!"), 400)
    error_body(book.get("/api/v1/contacts", limit=1001), 422)


def test_one_contact(book: Book) -> None:
    joe = book.contacts()["joe@northwind.co.uk"]
    response = book.get(f"/api/v1/contacts/{joe['id']}")
    assert response.status_code == 200 and response.json() == joe
    error_body(book.get("/api/v1/contacts/999999"), 404)


def test_companies_with_counts_and_last_interaction(book: Book) -> None:
    companies = book.companies()
    assert set(companies) == {"northwind.co.uk", "globex.example"}
    northwind = companies["northwind.co.uk"]
    assert northwind["name"] == "Northwind" and northwind["domains"] == ["northwind.co.uk"]
    assert northwind["contact_count"] == 2
    assert moment(northwind["last_interaction_at"]) == at("2026-03-04T15:00")
    globex = companies["globex.example"]
    assert globex["contact_count"] == 1
    assert moment(globex["last_interaction_at"]) == at("2026-03-03T10:00")
    one = book.get(f"/api/v1/companies/{northwind['id']}")
    assert one.status_code == 200 and one.json() == northwind
    error_body(book.get("/api/v1/companies/999999"), 404)


def test_company_filters(book: Book) -> None:
    assert set(book.companies(domain="northwind.co.uk")) == {"northwind.co.uk"}
    assert set(book.companies(domain="NorthWind.co.uk")) == {"northwind.co.uk"}
    assert book.companies(domain="mail.northwind.co.uk") == {}
    assert set(book.companies(q="north")) == {"northwind.co.uk"}  # in the name
    assert set(book.companies(q=".example")) == {"globex.example"}  # in the domain
    assert set(book.companies(q="GLOBEX")) == {"globex.example"}
    assert book.companies(q="initech") == {}  # a mailing list makes no company
    assert book.companies(q="%") == {} and book.companies(q="_") == {}


def test_patch_sets_fields_that_later_ingest_never_overwrites(book: Book) -> None:
    contacts = book.contacts()
    joe, lee = contacts["joe@northwind.co.uk"], contacts["lee@globex.example"]
    response = book.patch(
        joe["id"], {"name": "Joseph Bloggs-Smith", "title": "Buyer", "phones": ["+3225551234"]}
    )
    assert response.status_code == 200, response.text
    patched = response.json()
    assert set(patched) == CONTACT_FIELDS
    assert (patched["name"], patched["title"], patched["phones"]) == (
        "Joseph Bloggs-Smith",
        "Buyer",
        ["+3225551234"],
    )
    assert book.get(f"/api/v1/contacts/{joe['id']}").json() == patched
    # only the title of lee is set by hand
    assert book.patch(lee["id"], {"title": "CTO"}).status_code == 200
    # both send a signature with a title and a phone, and a fuller display name
    book.world.ingest(
        "ana",
        message(
            "Joe Bloggs <joe@northwind.co.uk>",
            ("ana@acme.example",),
            body=SIGNATURE.replace(b"{name}", b"Joe Bloggs"),
            date=at("2026-03-10T09:00"),
        ),
        message(
            "Lee Chan Wei <lee@globex.example>",
            ("ana@acme.example",),
            body=SIGNATURE.replace(b"{name}", b"Lee Chan Wei"),
            date=at("2026-03-10T10:00"),
        ),
    )
    after = book.contacts()
    joe_after, lee_after = after["joe@northwind.co.uk"], after["lee@globex.example"]
    assert (joe_after["name"], joe_after["title"], joe_after["phones"]) == (
        "Joseph Bloggs-Smith",
        "Buyer",
        ["+3225551234"],
    )
    assert moment(joe_after["last_interaction_at"]) == at("2026-03-10T09:00")
    # what nobody set is still inferred: lee's phone and fuller name, not the title
    assert lee_after["title"] == "CTO"
    assert lee_after["phones"] == ["+442079460958"]
    assert lee_after["name"] == "Lee Chan Wei"


def test_patch_clearing_fields_is_kept_too(book: Book) -> None:
    kim = book.contacts()["kim@mail.northwind.co.uk"]
    response = book.patch(kim["id"], {"phones": [], "title": None})
    assert response.status_code == 200, response.text
    book.world.ingest(
        "ana",
        message(
            "Kim Lo <kim@mail.northwind.co.uk>",
            ("ana@acme.example",),
            body=SIGNATURE.replace(b"{name}", b"Kim Lo"),
        ),
    )
    kim = book.contacts()["kim@mail.northwind.co.uk"]
    assert (kim["phones"], kim["title"], kim["name"]) == ([], None, "Kim Lo")


def test_an_empty_patch_changes_nothing(book: Book) -> None:
    joe = book.contacts()["joe@northwind.co.uk"]
    response = book.patch(joe["id"], {})
    assert response.status_code == 200 and response.json() == joe


@pytest.fixture
def lenient(database: Database) -> Iterator[TestClient]:
    from app.main import create_app

    with TestClient(create_app(), raise_server_exceptions=False) as test_client:
        yield test_client


def test_bad_patches(lenient: TestClient, book: Book) -> None:
    joe = book.contacts()["joe@northwind.co.uk"]
    path = f"/api/v1/contacts/{joe['id']}"
    wrong = []
    for body in (
        {"name": ""},
        {"name": "x" * 256},
        {"title": "x" * 256},
        {"phones": "+3225551234"},
        {"phones": [f"+3225551{n:03d}" for n in range(11)]},
        {"phones": [None]},
        {"phones": [1234]},
        {"name": 5},
    ):
        response = lenient.patch(path, json=body, headers=book.org.as_admin())
        if response.status_code != 422 or set(response.json()) != {"error"}:
            wrong.append((body, response.status_code, response.text))
    assert not wrong, "\n".join(map(repr, wrong))
    assert book.contacts()["joe@northwind.co.uk"] == joe
    error_body(lenient.patch("/api/v1/contacts/999999", json={}, headers=book.org.as_admin()), 404)


def test_patch_phones_null_is_not_a_server_error(lenient: TestClient, book: Book) -> None:
    joe = book.contacts()["joe@northwind.co.uk"]
    response = lenient.patch(
        f"/api/v1/contacts/{joe['id']}", json={"phones": None}, headers=book.org.as_admin()
    )
    assert response.status_code in (200, 422), response.text
    if response.status_code == 200:
        assert response.json()["phones"] == []
    else:
        error_body(response, 422)
