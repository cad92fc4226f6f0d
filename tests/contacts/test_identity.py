"""Companies from registrable domains (public suffix aware), webmail excluded, names chosen well."""

from __future__ import annotations

import pytest

from app.contacts.identity import better_name, company_domain, company_name


@pytest.mark.parametrize(
    ("email", "domain"),
    [
        ("ana@northwind.example", "northwind.example"),
        ("ana@mail.northwind.co.uk", "northwind.co.uk"),
        ("ana@northwind.co.uk", "northwind.co.uk"),
        ("ana@sales.bigcorp.com.au", "bigcorp.com.au"),
        ("ana@eu.west.globex.com", "globex.com"),
        ("Ana@MAIL.Northwind.CO.UK", "northwind.co.uk"),
        ("x@gmail.com", None),
        ("x@googlemail.com", None),
        ("x@outlook.com", None),
        ("x@hotmail.com", None),
        ("x@hotmail.co.uk", None),
        ("x@yahoo.com", None),
        ("x@yahoo.co.uk", None),
        ("x@icloud.com", None),
        ("x@proton.me", None),
        ("x@gmx.de", None),
        ("x@gmx.net", None),
        ("x@web.de", None),
        ("x@qq.com", None),
        ("x@163.com", None),
        ("x@co.uk", None),  # a bare public suffix is nobody's company
    ],
)
def test_company_domain(email: str, domain: str | None) -> None:
    assert company_domain(email) == domain


@pytest.mark.parametrize(
    ("domain", "name"),
    [("northwind.co.uk", "Northwind"), ("globex.com", "Globex"), ("big-corp.com.au", "Big-Corp")],
)
def test_company_name_comes_from_the_domain(domain: str, name: str) -> None:
    assert company_name(domain) == name


@pytest.mark.parametrize(
    ("current", "candidate", "best"),
    [
        (None, "Ana Silva", "Ana Silva"),
        ("Ana", "Ana Silva", "Ana Silva"),
        ("Ana Silva", "Ana", "Ana Silva"),
        ("ANA SILVA", "Ana Silva", "Ana Silva"),
        ("Ana Silva", "ANA SILVA", "Ana Silva"),
        ("Ana Silva", "ana@northwind.example", "Ana Silva"),
        (None, "ana@northwind.example", None),
        ("Ana Silva", "Ana Maria Silva", "Ana Maria Silva"),
        ("Ana Maria Silva", "Ana Silva", "Ana Maria Silva"),
    ],
)
def test_the_best_display_name_wins_and_does_not_flap(
    current: str | None, candidate: str | None, best: str | None
) -> None:
    assert better_name(current, candidate) == best
