"""ImapConnector against a real Dovecot on loopback: no database, one server, a user per test."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Generator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from imapclient.exceptions import ProtocolError

from connectors.base import AuthExpired, ConnectorError, CursorExpired, Page, RemoteMessage
from connectors.imap import ImapConnector, _Pull, calendar_method, decode_cursor
from connectors.imap.folders import Folder
from tests.fixtures.dovecot import DovecotServer

SINCE = datetime(2024, 6, 1, tzinfo=UTC)
IN_WINDOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
TOO_OLD = datetime(2020, 3, 1, 12, 0, tzinfo=UTC)


def raw_message(
    subject: str,
    *,
    sender: str = "Alice Seller <alice@example.com>",
    to: str = "bob@example.org",
    extra: str = "",
    content_type: str = "text/plain; charset=utf-8",
    body: str = "Hello Bob,\r\n\r\nLet's talk.\r\n",
) -> bytes:
    head = (
        f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Date: Wed, 01 Jan 2025 12:00:00 +0000\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@example.com>\r\n{extra}"
        f"MIME-Version: 1.0\r\nContent-Type: {content_type}\r\n\r\n"
    )
    return head.encode() + body.encode()


INVITE = raw_message(
    "Invitation: demo",
    content_type='multipart/mixed; boundary="b1"',
    body=(
        "--b1\r\nContent-Type: multipart/alternative; boundary=b2\r\n\r\n"
        "--b2\r\nContent-Type: text/plain\r\n\r\nYou are invited.\r\n"
        "--b2\r\nContent-Type: text/calendar; charset=utf-8; method=request\r\n\r\n"
        "BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nEND:VCALENDAR\r\n"
        "--b2--\r\n--b1--\r\n"
    ),
)


@dataclass
class Mailbox:
    """A fresh Dovecot user and what the tests do with it."""

    server: DovecotServer
    email: str
    password: str

    def add(
        self, folder: str, raw: bytes, when: datetime = IN_WINDOW, flags: Iterable[str] = ()
    ) -> int:
        return self.server.append(self.email, folder, raw, msg_time=when, flags=flags)

    def fill(self, folder: str, count: int, *, start: datetime = IN_WINDOW) -> list[int]:
        return [
            self.add(folder, raw_message(f"{folder} {n}"), start + timedelta(hours=n))
            for n in range(count)
        ]

    def connector(self, **settings: Any) -> ImapConnector:
        options: dict[str, Any] = dict(
            host=self.server.host,
            port=self.server.port,
            username=self.email,
            password=self.password,
            security="none",
        )
        return ImapConnector(**(options | settings))


@pytest.fixture
def mailbox(dovecot: DovecotServer) -> Mailbox:
    email = f"rep-{uuid.uuid4().hex[:12]}@example.com"
    password = f"pw-{uuid.uuid4().hex[:8]}"
    dovecot.add_user(email, password)
    return Mailbox(dovecot, email, password)


def pull(connector: ImapConnector, cursor: str | None = None) -> list[Page]:
    return list(connector.pull(cursor, since=SINCE))


def start(connector: ImapConnector, cursor: str | None = None) -> Generator[Page, None, None]:
    """A pull to take pages from one at a time; close() it to drop the connection."""
    run = connector.pull(cursor, since=SINCE)
    assert isinstance(run, Generator)
    return run


def messages(pages: Iterable[Page]) -> list[RemoteMessage]:
    return [message for page in pages for message in page.messages]


def folder_uids(pages: Iterable[Page], folder: str = "INBOX") -> list[int]:
    """UIDs in the order pulled, from source ids `folder/uidvalidity/uid`."""
    found = []
    for message in messages(pages):
        name, _validity, uid = message.source_id.rsplit("/", 2)
        if name == folder:
            found.append(int(uid))
    return found


def last_cursor(pages: list[Page]) -> str:
    cursor = [page.cursor for page in pages if page.cursor][-1]
    assert cursor is not None
    return cursor


# -- folders ------------------------------------------------------------------------------------


def test_default_folders_are_inbox_and_special_use_sent(mailbox: Mailbox) -> None:
    for folder in ("INBOX", "Sent", "Drafts", "Trash", "Junk", "Projects"):
        mailbox.add(folder, raw_message(f"in {folder}"))

    pages = pull(mailbox.connector())

    found = {message.subject: message.folder_role for message in messages(pages)}
    assert found == {"in INBOX": "inbox", "in Sent": "sent"}
    assert set(json.loads(last_cursor(pages))) == {"INBOX", "Sent"}


def test_configured_folders_override_but_never_drafts_junk_trash(mailbox: Mailbox) -> None:
    for folder in ("INBOX", "Sent", "Drafts", "Trash", "Junk", "Projects"):
        mailbox.add(folder, raw_message(f"in {folder}"))
    connector = mailbox.connector(
        folders=["inbox", "Drafts", "Trash", "Junk", "Projects", "sent", "Missing"]
    )

    found = {message.subject: message.folder_role for message in messages(pull(connector))}

    assert found == {"in INBOX": "inbox", "in Projects": "other", "in Sent": "sent"}


def test_sent_folder_found_by_name_without_special_use() -> None:
    class Listing:
        def list_folders(self) -> list[tuple[tuple[bytes, ...], bytes, str]]:
            return [((), b".", "INBOX"), ((), b".", "INBOX.Trash"), ((), b".", "Sent Items")]

    connector = ImapConnector(host="h", port=1, username="u", password="p")
    folders = _Pull(connector, Listing(), {}, SINCE)._folders()

    assert [(f.name, f.role) for f in folders] == [("INBOX", "inbox"), ("Sent Items", "sent")]


def test_messages_flagged_draft_are_skipped(mailbox: Mailbox) -> None:
    mailbox.add("INBOX", raw_message("kept"))
    mailbox.add("INBOX", raw_message("a draft"), flags=[r"\Draft"])

    assert [m.subject for m in messages(pull(mailbox.connector()))] == ["kept"]


# -- backfill, resume, incremental --------------------------------------------------------------


def test_backfill_is_newest_first_in_batches_and_only_since(mailbox: Mailbox) -> None:
    recent: list[int] = []
    for n in range(11):  # old and recent interleaved, so the window is by date, not by UID
        if n % 3 == 0:
            mailbox.add("INBOX", raw_message(f"old {n}"), TOO_OLD + timedelta(days=n))
        else:
            recent.append(mailbox.add("INBOX", raw_message(f"new {n}"), IN_WINDOW + timedelta(n)))

    pages = pull(mailbox.connector(batch_size=3))

    assert [len(page.messages) for page in pages if page.messages] == [3, 3, 1]
    assert folder_uids(pages) == sorted(recent, reverse=True)
    assert all(m.provider_date and m.provider_date >= SINCE for m in messages(pages))
    state = json.loads(last_cursor(pages))["INBOX"]
    assert state["last_uid"] == 11 and state["backfill_below"] is None


def test_resuming_mid_backfill_yields_exactly_the_rest(mailbox: Mailbox) -> None:
    uids = mailbox.fill("INBOX", 8)
    connector = mailbox.connector(batch_size=3)
    run = start(connector)
    first, second = next(run), next(run)
    run.close()

    rest = pull(connector, second.cursor)

    assert folder_uids([first, second]) == [8, 7, 6, 5, 4, 3]
    assert folder_uids(rest) == [2, 1]
    assert sorted(folder_uids([first, second, *rest])) == uids
    # resuming twice from the same point is repeatable
    assert folder_uids(pull(connector, first.cursor)) == [5, 4, 3, 2, 1]


def test_mail_arriving_during_backfill_is_read_by_the_next_run(mailbox: Mailbox) -> None:
    mailbox.fill("INBOX", 4)
    connector = mailbox.connector(batch_size=2)
    run = start(connector)
    first = next(run)
    run.close()
    newcomer = mailbox.add("INBOX", raw_message("arrived mid-backfill"))

    rest = pull(connector, first.cursor)

    # the incremental pass comes first, then the backfill carries on below where it stopped
    assert folder_uids(rest) == [newcomer, 2, 1]


def test_incremental_yields_only_new_mail_ascending(mailbox: Mailbox) -> None:
    mailbox.fill("INBOX", 3)
    connector = mailbox.connector(batch_size=2)
    cursor = last_cursor(pull(connector))
    new = mailbox.fill("INBOX", 5, start=IN_WINDOW + timedelta(days=30))

    pages = pull(connector, cursor)

    assert folder_uids(pages) == new
    assert [len(page.messages) for page in pages if page.messages] == [2, 2, 1]
    # HIGHESTMODSEQ only on the page that finishes the pass: earlier ones are not caught up
    modseqs = [json.loads(p.cursor)["INBOX"]["modseq"] for p in pages if p.messages and p.cursor]
    assert modseqs[:-1] == [None, None] and isinstance(modseqs[-1], int)


def test_incremental_reads_new_mail_older_than_since(mailbox: Mailbox) -> None:
    connector = mailbox.connector()
    cursor = last_cursor(pull(connector))
    uid = mailbox.add("INBOX", raw_message("filed late"), TOO_OLD)  # moved in from an archive

    assert folder_uids(pull(connector, cursor)) == [uid]


def test_unchanged_mailbox_yields_nothing(mailbox: Mailbox) -> None:
    mailbox.fill("INBOX", 3)
    mailbox.fill("Sent", 2)
    connector = mailbox.connector()
    cursor = last_cursor(pull(connector))

    assert pull(connector, cursor) == []
    states = json.loads(cursor)
    assert {name: s["backfill_below"] for name, s in states.items()} == {
        "INBOX": None,
        "Sent": None,
    }


def test_uidvalidity_change_relists_the_folder(mailbox: Mailbox) -> None:
    mailbox.fill("INBOX", 3)
    connector = mailbox.connector()
    cursor = last_cursor(pull(connector))
    old_validity = json.loads(cursor)["INBOX"]["uidvalidity"]
    mailbox.server.set_uidvalidity(mailbox.email, "INBOX", old_validity + 1000)

    pages = pull(connector, cursor)

    assert folder_uids(pages) == [3, 2, 1]
    assert {m.source_id.split("/")[1] for m in messages(pages)} == {str(old_validity + 1000)}
    assert json.loads(last_cursor(pages))["INBOX"]["uidvalidity"] == old_validity + 1000


def test_a_new_empty_folder_still_gets_a_cursor(mailbox: Mailbox) -> None:
    pages = pull(mailbox.connector())

    assert messages(pages) == []
    states = json.loads(last_cursor(pages))
    assert set(states) == {"INBOX", "Sent"}
    assert all(state["backfill_below"] is None for state in states.values())


# -- what a message carries ---------------------------------------------------------------------


def test_sent_copy_has_role_sent_and_its_bcc(mailbox: Mailbox) -> None:
    mailbox.add(
        "Sent",
        raw_message(
            "proposal", to="Bob <bob@example.org>", extra="Bcc: Carol <carol@example.net>\r\n"
        ),
        flags=[r"\Seen"],
    )

    [message] = messages(pull(mailbox.connector()))

    assert message.folder_role == "sent"
    assert [a.email for a in message.bcc] == ["carol@example.net"]
    assert message.sender is not None and message.sender.email == "alice@example.com"
    assert message.source_id.startswith("Sent/") and message.source_id.endswith("/1")


def test_calendar_method_and_body_prefix(mailbox: Mailbox) -> None:
    mailbox.add("INBOX", INVITE)
    mailbox.add("INBOX", raw_message("plain"))

    found = {m.subject: m for m in messages(pull(mailbox.connector(body_bytes=40)))}

    assert found["Invitation: demo"].calendar_method == "REQUEST"
    assert found["Invitation: demo"].content_type == "multipart/mixed"
    assert found["plain"].calendar_method is None
    assert found["plain"].body == b"Hello Bob,\r\n\r\nLet's talk.\r\n"
    assert all(m.body is not None and len(m.body) <= 40 for m in found.values())
    assert found["plain"].provider_date == IN_WINDOW


def test_no_body_when_body_bytes_is_zero(mailbox: Mailbox) -> None:
    mailbox.add("INBOX", raw_message("plain"))

    [message] = messages(pull(mailbox.connector(body_bytes=0)))

    assert message.body is None


def test_unreadable_messages_become_failures_and_the_sync_goes_on(mailbox: Mailbox) -> None:
    mailbox.add("INBOX", raw_message("before"))
    garbage = mailbox.add("INBOX", b"this is not a message\r\n\xff\xfe\x80 at all\r\n\r\n\xff")
    mailbox.add("INBOX", raw_message("broken from", sender='"', to="<<<@>>>, ,"))
    mailbox.add("INBOX", raw_message("after"))

    pages = pull(mailbox.connector(batch_size=2))

    found = {m.subject: m for m in messages(pages)}
    assert set(found) == {"before", "broken from", "after"}
    assert found["broken from"].sender is None and found["broken from"].to == ()
    [failure] = [failure for page in pages for failure in page.failures]
    assert failure.source_id.endswith(f"/{garbage}") and "no message headers" in failure.reason


class PoisonFetch:
    """Stands in for IMAPClient.fetch: answers per UID but cannot parse the answer for `bad`."""

    def __init__(self, bad: set[int]) -> None:
        self.bad = bad

    def fetch(self, uids: list[int], items: list[str]) -> dict[int, dict[bytes, Any]]:
        if self.bad & set(uids):
            raise ProtocolError("unexpected token in BODYSTRUCTURE")
        header = b"From: a@example.com\r\nSubject: ok\r\n\r\n"
        return {uid: {b"FLAGS": (), b"BODY[HEADER.FIELDS (FROM SUBJECT)]": header} for uid in uids}


def test_an_unparsable_fetch_answer_fails_one_message_not_the_batch() -> None:
    connector = ImapConnector(host="h", port=1, username="u", password="p")
    run = _Pull(connector, PoisonFetch(bad={2}), {}, SINCE)

    found, failures = run._fetch(Folder("INBOX", "inbox"), 7, [1, 2, 3])

    assert [m.source_id for m in found] == ["INBOX/7/1", "INBOX/7/3"]
    assert [(f.source_id, "unparsable" in f.reason) for f in failures] == [("INBOX/7/2", True)]


def test_a_fetch_that_never_parses_stops_the_run_instead_of_skipping_mail() -> None:
    connector = ImapConnector(host="h", port=1, username="u", password="p")
    run = _Pull(connector, PoisonFetch(bad={1, 2, 3}), {}, SINCE)

    with pytest.raises(ConnectorError, match="could not be read"):
        run._fetch(Folder("INBOX", "inbox"), 7, [1, 2, 3])


# -- errors -------------------------------------------------------------------------------------


def test_wrong_password_is_auth_expired_without_the_password(mailbox: Mailbox) -> None:
    secret = "Wr0ng-Secret-Passw0rd"
    connector = mailbox.connector(password=secret)

    with pytest.raises(AuthExpired) as caught:
        pull(connector)

    assert "refused the username or password" in str(caught.value)
    chain = [caught.value, caught.value.__cause__, caught.value.__context__]
    assert not any(secret in f"{error!s} {error!r}" for error in chain if error is not None)
    assert secret not in repr(connector)


def test_check_passes_and_refuses_a_bad_password(mailbox: Mailbox) -> None:
    mailbox.connector().check()

    with pytest.raises(AuthExpired):
        mailbox.connector(password="nope").check()


def test_nothing_listening_is_a_connector_error(mailbox: Mailbox) -> None:
    connector = mailbox.connector(port=1)  # nothing listens on port 1 here

    with pytest.raises(ConnectorError, match="refused the connection") as caught:
        connector.check()

    assert not isinstance(caught.value, AuthExpired)


def test_tls_against_a_plaintext_server_is_a_connector_error(mailbox: Mailbox) -> None:
    with pytest.raises(ConnectorError, match="TLS with the IMAP server") as caught:
        mailbox.connector(security="ssl").check()
    assert not isinstance(caught.value, AuthExpired)

    with pytest.raises(ConnectorError, match=r"lacks a capability.*STARTTLS") as caught:
        mailbox.connector(security="starttls").check()
    assert not isinstance(caught.value, AuthExpired)


def test_a_server_that_never_answers_times_out() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # the kernel accepts; nobody speaks
        port = silent.getsockname()[1]
        connector = ImapConnector(
            host="127.0.0.1", port=port, username="u", password="p", security="none", timeout=0.3
        )
        with pytest.raises(ConnectorError, match="did not answer"):
            list(connector.pull(None, since=SINCE))


def test_server_gone_mid_sync_then_resume_loses_nothing(mailbox: Mailbox) -> None:
    uids = mailbox.fill("INBOX", 6)
    connector = mailbox.connector(batch_size=2)
    run = start(connector)
    first = next(run)
    mailbox.server.stop()
    try:
        with pytest.raises(ConnectorError) as caught:
            next(run)
        assert not isinstance(caught.value, AuthExpired)
    finally:
        mailbox.server.start()

    rest = pull(connector, first.cursor)

    assert folder_uids([first]) == [6, 5]
    assert sorted(folder_uids([first, *rest])) == uids


# -- pure functions -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cursor", ["not json", "[]", '{"INBOX": {"uidvalidity": "x"}}', '{"INBOX": {}}']
)
def test_an_unreadable_cursor_expires(cursor: str) -> None:
    with pytest.raises(CursorExpired):
        decode_cursor(cursor)


def test_calendar_method_walks_nested_multiparts() -> None:
    leaf_plain = (b"text", b"plain", (b"charset", b"utf-8"), None, None, b"7bit", 4, 1)
    leaf_ics = (b"TEXT", b"Calendar", (b"charset", b"utf-8", b"METHOD", b"cancel"), None)
    attached = (b"message", b"rfc822", None, None, None, b"7bit", 9, (), leaf_ics, 3)
    nested = ([leaf_plain, ([leaf_plain, leaf_ics], b"alternative")], b"mixed")

    assert calendar_method(nested) == "CANCEL"
    assert calendar_method(leaf_plain) is None
    assert calendar_method(([leaf_plain, attached], b"mixed")) is None  # a forwarded invite
    assert calendar_method((b"text", b"calendar", None)) is None
    assert calendar_method(None) is None
