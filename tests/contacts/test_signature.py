"""Phone numbers (E.164) and job titles from the signature of a message a contact sent."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.contacts.signature import extract

DATA = Path(__file__).resolve().parent.parent / "data" / "mime" / "talon"


@pytest.mark.parametrize(
    ("body", "email", "name", "phones", "title"),
    [
        (
            "Hi,\n\nok.\n\nBest regards,\nJane Doe\nVP Sales | Northwind Ltd\n"
            "Tel: +44 20 7946 0958\n",
            "jane@northwind.co.uk",
            "Jane Doe",
            ("+442079460958",),
            "VP Sales",
        ),
        (
            "Thanks!\n\nKind regards\nHans Müller\nLeiter Einkauf\nGlobex GmbH\nTel. 030 1234567\n",
            "hans@globex.de",
            "Hans Müller",
            ("+49301234567",),
            "Leiter Einkauf",
        ),
        (
            "Sounds good.\n\nCheers,\nBob\nAccount Executive, Initech\n(415) 555-0132\n",
            "bob@initech.com",
            "Bob",
            ("+14155550132",),
            "Account Executive",
        ),
        (
            "Merci\n\nCordialement,\nMarie Curie\nDirectrice commerciale\n+33 1 42 68 53 00\n",
            "marie@exemple.fr",
            "Marie Curie",
            ("+33142685300",),
            "Directrice commerciale",
        ),
        (
            "See attached.\n\nRegards,\nJoe\n\nOn Mon, Jan 5, 2026 at 10:00 Ana wrote:\n"
            "> Ana Silva\n> Head of Sales\n> +32 2 555 12 34\n",
            "joe@northwind.example",
            "Joe",
            (),
            None,
        ),
        ("Order 4155550132 shipped.\n", "ops@northwind.example", None, (), None),
        ("", "x@northwind.example", None, (), None),
    ],
)
def test_signature_fields(
    body: str, email: str, name: str | None, phones: tuple[str, ...], title: str | None
) -> None:
    found = extract(body, sender_email=email, sender_name=name)
    assert (found.phones, found.title) == (phones, title)


def test_real_client_signatures_do_not_crash() -> None:
    for path in sorted((DATA / "signature").glob("*_body")):
        found = extract(
            path.read_text(errors="replace").replace("#sig#", ""),
            sender_email="x@example.com",
            sender_name=None,
        )
        assert all(p.startswith("+") for p in found.phones)
