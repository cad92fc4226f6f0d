"""Every rule of semantics §1–3, one row each: what a message means for the organization."""

from __future__ import annotations

from typing import Any

import pytest

from app.activities.inference import (
    Directory,
    automated_reason,
    infer_email,
    message_key,
)
from tests.factories import message

ANA, BOB = 1, 2
DIRECTORY = Directory(
    internal_domains=frozenset({"acme.example"}),
    user_by_address={
        "ana@acme.example": ANA,
        "a.silva@acme.example": ANA,  # alias
        "ana.silva@personal.example": ANA,  # alias at a domain that is not internal
        "bob@acme.example": BOB,
    },
)
EXT = "joe@northwind.example"


def infer(owner: int = ANA, **fields: Any) -> tuple[str, int | None, tuple[int, ...], list[str]]:
    found = infer_email(message(**fields), DIRECTORY, owner_id=owner)
    return found.kind, found.sent_by, found.received_by, sorted(a.email for a in found.contacts)


@pytest.mark.parametrize(
    ("case", "owner", "fields", "expected"),
    [
        (
            "sent to an external address",
            ANA,
            {"sender": "ana@acme.example", "to": (EXT,), "folder_role": "sent"},
            ("email", ANA, (), [EXT]),
        ),
        (
            "sent from an alias",
            ANA,
            {"sender": "a.silva@acme.example", "to": (EXT,), "folder_role": "sent"},
            ("email", ANA, (), [EXT]),
        ),
        (
            "sent from an alias at a non-internal domain",
            ANA,
            {"sender": "ana.silva@personal.example", "to": (EXT,), "folder_role": "sent"},
            ("email", ANA, (), [EXT]),
        ),
        (
            "one email_sent however many external recipients; all linked",
            ANA,
            {
                "sender": "ana@acme.example",
                "to": (EXT, "kim@globex.example"),
                "cc": ("bob@acme.example",),
            },
            ("email", ANA, (), ["joe@northwind.example", "kim@globex.example"]),
        ),
        (
            "Bcc in the sender's Sent copy links the hidden recipient",
            ANA,
            {
                "sender": "ana@acme.example",
                "to": ("bob@acme.example",),
                "bcc": (EXT,),
                "folder_role": "sent",
            },
            ("email", ANA, (), [EXT]),
        ),
        (
            "everyone internal: nothing",
            ANA,
            {"sender": "ana@acme.example", "to": ("bob@acme.example", "carl@acme.example")},
            ("internal", None, (), []),
        ),
        (
            "a subdomain of an internal domain is internal",
            ANA,
            {"sender": "ana@acme.example", "to": ("ops@eu.acme.example",)},
            ("internal", None, (), []),
        ),
        (
            "a domain that only ends with the internal one is external",
            ANA,
            {"sender": "ana@acme.example", "to": ("x@notacme.example",)},
            ("email", ANA, (), ["x@notacme.example"]),
        ),
        (
            "sent by a user, seen in a colleague's inbox: still the sender's email_sent",
            BOB,
            {"sender": "ana@acme.example", "to": (EXT,), "cc": ("bob@acme.example",)},
            ("email", ANA, (), [EXT]),
        ),
        (
            "received from an external sender",
            ANA,
            {"sender": "Joe <joe@northwind.example>", "to": ("ana@acme.example",)},
            ("email", None, (ANA,), [EXT]),
        ),
        (
            "received by two users named in To and Cc: one each",
            ANA,
            {"sender": EXT, "to": ("ana@acme.example",), "cc": ("bob@acme.example",)},
            ("email", None, (ANA, BOB), [EXT]),
        ),
        (
            "received on an alias",
            ANA,
            {"sender": EXT, "to": ("a.silva@acme.example",)},
            ("email", None, (ANA,), [EXT]),
        ),
        (
            "Bcc'd user: no header names them, their inbox holds it",
            BOB,
            {"sender": EXT, "to": ("kim@globex.example",)},
            ("email", None, (BOB,), [EXT]),
        ),
        (
            "group address: the owner of the mailbox is a recipient",
            BOB,
            {"sender": EXT, "to": ("sales@acme.example",)},
            ("email", None, (BOB,), [EXT]),
        ),
        (
            "undisclosed recipients, in the owner's inbox",
            ANA,
            {"sender": EXT, "to": ()},
            ("email", None, (ANA,), [EXT]),
        ),
        (
            "a copy in the sent folder does not make the owner a recipient",
            ANA,
            {"sender": EXT, "to": ("kim@globex.example",), "folder_role": "sent"},
            ("unrelated", None, (), []),
        ),
        (
            "an internal sender who is not a user makes nothing",
            ANA,
            {"sender": "carl@acme.example", "to": (EXT,)},
            ("internal", None, (), []),
        ),
        ("no sender at all", ANA, {"sender": None}, ("unrelated", None, (), [])),
        (
            "an invitation is calendar traffic",
            ANA,
            {"sender": EXT, "to": ("ana@acme.example",), "calendar_method": "REQUEST"},
            ("calendar", None, (), []),
        ),
        (
            "a reply to an invitation is calendar traffic",
            ANA,
            {"sender": "ana@acme.example", "to": (EXT,), "calendar_method": "REPLY"},
            ("calendar", None, (), []),
        ),
        (
            "a cancellation is calendar traffic",
            ANA,
            {"sender": EXT, "to": ("ana@acme.example",), "calendar_method": "CANCEL"},
            ("calendar", None, (), []),
        ),
    ],
)
def test_direction_and_links(
    case: str, owner: int, fields: dict[str, Any], expected: tuple[Any, ...]
) -> None:
    assert infer(owner, **fields) == expected, case


def test_addresses_compare_case_insensitively() -> None:
    assert DIRECTORY.user_of("A.Silva@ACME.Example") == ANA
    assert DIRECTORY.is_internal("X@EU.ACME.EXAMPLE")


@pytest.mark.parametrize(
    ("headers", "sender", "subject", "content_type", "reason"),
    [
        ({"auto-submitted": "auto-replied"}, EXT, "Re: hi", "text/plain", "auto-submitted"),
        ({"auto-submitted": "auto-generated; type=x"}, EXT, "hi", "text/plain", "auto-submitted"),
        ({"auto-submitted": "no"}, EXT, "hi", "text/plain", None),
        ({"auto-submitted": " No "}, EXT, "hi", "text/plain", None),
        ({"precedence": "bulk"}, EXT, "hi", "text/plain", "bulk-precedence"),
        ({"precedence": "List"}, EXT, "hi", "text/plain", "bulk-precedence"),
        ({"precedence": "junk"}, EXT, "hi", "text/plain", "bulk-precedence"),
        ({"precedence": "first-class"}, EXT, "hi", "text/plain", None),
        ({"list-id": "<sales.lists.example>"}, EXT, "hi", "text/plain", "mailing-list"),
        ({"list-unsubscribe": "<mailto:u@x>"}, EXT, "hi", "text/plain", "mailing-list"),
        ({}, "noreply@northwind.example", "hi", "text/plain", "no-reply-sender"),
        ({}, "no-reply@northwind.example", "hi", "text/plain", "no-reply-sender"),
        ({}, "No_Reply@northwind.example", "hi", "text/plain", "no-reply-sender"),
        ({}, "no.reply+invoices@northwind.example", "hi", "text/plain", "no-reply-sender"),
        ({}, "donotreply@northwind.example", "hi", "text/plain", "no-reply-sender"),
        ({}, "do-not-reply@northwind.example", "hi", "text/plain", "no-reply-sender"),
        ({}, "MAILER-DAEMON@northwind.example", "hi", "text/plain", "no-reply-sender"),
        ({}, "postmaster@northwind.example", "hi", "text/plain", "no-reply-sender"),
        ({}, "bounce@northwind.example", "hi", "text/plain", "no-reply-sender"),
        ({}, "bounces+1234@northwind.example", "hi", "text/plain", "no-reply-sender"),
        ({}, "noreplyteam@northwind.example", "hi", "text/plain", None),
        ({}, "norah@northwind.example", "hi", "text/plain", None),
        ({}, EXT, "Undelivered", "multipart/report", "delivery-report"),
        ({"x-autoreply": "yes"}, EXT, "Re: hi", "text/plain", "auto-reply"),
        ({"x-autorespond": "x"}, EXT, "Re: hi", "text/plain", "auto-reply"),
        (
            {"x-auto-response-suppress": "All"},
            EXT,
            "Automatic reply: hi",
            "text/plain",
            "auto-reply",
        ),
        (
            {"x-auto-response-suppress": "All"},
            EXT,
            "Out of Office: away",
            "text/plain",
            "auto-reply",
        ),
        ({"x-auto-response-suppress": "All"}, EXT, "Proposal", "text/plain", None),
        ({}, EXT, "Automatic reply: hi", "text/plain", None),
    ],
)
def test_automated_mail(
    headers: dict[str, str], sender: str, subject: str, content_type: str, reason: str | None
) -> None:
    msg = message(
        sender=sender,
        headers=headers,
        subject=subject,
        content_type=content_type,
        to=("ana@acme.example",),
    )
    assert automated_reason(msg) == reason
    found = infer_email(msg, DIRECTORY, owner_id=ANA)
    if reason is not None:  # automated: no activity and no contact
        assert (found.kind, found.received_by, found.contacts) == ("automated", (), ())
    else:
        assert found.kind == "email"


def test_message_identity_is_the_message_id_without_brackets() -> None:
    assert message_key(message(message_id="abc@mail.example")) == "mid:abc@mail.example"


def test_message_without_id_has_a_stable_identity_across_mailboxes() -> None:
    fields: dict[str, Any] = {"message_id": None, "sender": EXT, "to": ("ana@acme.example",)}
    inbox_copy = message(**fields, folder_role="inbox", provider_date=None)
    other_copy = message(**fields, folder_role="other", source_id="elsewhere")
    assert message_key(inbox_copy) == message_key(other_copy)
    assert message_key(inbox_copy).startswith("hash:")
    assert message_key(inbox_copy) != message_key(message(**{**fields, "subject": "Other"}))
