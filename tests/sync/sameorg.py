"""One organization's mail and calendars, said once, for every provider to serve
(tests/sync/test_same_counts.py): customer mail, automated mail of every kind the spec names
(§2), invitations from Google, Exchange and a third calendar system, internal mail, and
meetings (a weekly series with a moved and a cancelled occurrence, one-offs, an internal one).

Each provider's leg turns these into what that provider holds (RFC 5322 bytes in IMAP and
Gmail, Graph's JSON, iCalendar in CalDAV, Google Calendar's events) and the test compares what
Tally counts from each.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
ANA, BOB = "ana@acme.example", "bob@acme.example"
USERS = {ANA: "Ana Silva", BOB: "Bob Stone"}
INBOX, SENT = "inbox", "sent"


def ago(days: int, hour: int = 10) -> datetime:
    return (NOW - timedelta(days=days)).replace(hour=hour)


@dataclass(frozen=True)
class Mail:
    """One message, and where it lies: user -> INBOX or SENT."""

    key: str
    sender: tuple[str, str]  # (address, display name)
    to: tuple[str, ...]
    date: datetime
    subject: str
    holders: dict[str, str]
    cc: tuple[str, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()  # the classifying headers, as sent
    # None: text only; "google" / "exchange" / "other": an invitation from that calendar
    # system (a text/calendar part, method REQUEST); "report": a delivery status report
    shape: str | None = None
    message_id: str = field(default="")

    def mid(self) -> str:
        return self.message_id or f"<{self.key}@mail.sameorg.test>"

    def rfc822(self) -> bytes:
        head = [
            f"From: {self.sender[1]} <{self.sender[0]}>",
            f"To: {', '.join(self.to)}",
            *([f"Cc: {', '.join(self.cc)}"] if self.cc else []),
            f"Subject: {self.subject}",
            f"Date: {format_datetime(self.date)}",
            f"Message-ID: {self.mid()}",
            "MIME-Version: 1.0",
            *(f"{name}: {value}" for name, value in self.headers),
        ]
        text = f"{self.subject}\r\n\r\nRegards,\r\n{self.sender[1]}\r\n"
        plain = "Content-Type: text/plain; charset=utf-8\r\n\r\n" + text
        if self.shape is None:
            return "\r\n".join([*head, plain]).encode()
        if self.shape == "report":  # RFC 3464
            outer = 'multipart/report; report-type="delivery-status"'
            second = (
                "Content-Type: message/delivery-status\r\n\r\n"
                "Reporting-MTA: dns; mx.northwind.example\r\n\r\n"
                "Final-Recipient: rfc822; gone@northwind.example\r\nAction: failed\r\n"
                "Status: 5.1.1\r\n"
            )
        else:
            # Google and Exchange put the invitation inline in multipart/alternative; other
            # systems (Zoho, Calendly, Fastmail...) attach it to multipart/mixed
            outer = (
                "multipart/alternative"
                if self.shape in ("google", "exchange")
                else ("multipart/mixed")
            )
            disposition = (
                ""
                if outer == "multipart/alternative"
                else ('Content-Disposition: attachment; filename="invite.ics"\r\n')
            )
            second = (
                "Content-Type: text/calendar; charset=utf-8; method=REQUEST\r\n"
                f"{disposition}\r\n{self.ics()}"
            )
        boundary = f"b-{self.key}"
        body = f"--{boundary}\r\n{plain}\r\n--{boundary}\r\n{second}\r\n--{boundary}--\r\n"
        head.append(f'Content-Type: {outer}; boundary="{boundary}"')
        return ("\r\n".join(head) + "\r\n\r\n" + body).encode()

    def ics(self) -> str:
        start = self.date + timedelta(days=3)
        stamp = "%Y%m%dT%H%M%SZ"
        return "\r\n".join(
            [
                "BEGIN:VCALENDAR",
                "VERSION:2.0",
                "METHOD:REQUEST",
                "PRODID:-//sameorg//invite//EN",
                "BEGIN:VEVENT",
                f"UID:{self.key}-invite",
                f"DTSTAMP:{self.date.astimezone(UTC):{stamp}}",
                f"DTSTART:{start.astimezone(UTC):{stamp}}",
                f"DTEND:{(start + timedelta(hours=1)).astimezone(UTC):{stamp}}",
                f"SUMMARY:{self.subject}",
                f"ORGANIZER:mailto:{self.sender[0]}",
                *[f"ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:{a}" for a in self.to],
                "END:VEVENT",
                "END:VCALENDAR",
                "",
            ]
        )


def _mail() -> list[Mail]:
    joe = ("joe@northwind.example", "Joe Miller")
    kim = ("kim@northwind.example", "Kim Lee")
    dan = ("dan@contoso.example", "Dan Ortiz")
    eve = ("eve.buyer@gmail.com", "Eve Buyer")
    mails = [
        Mail("m1", (ANA, "Ana Silva"), (joe[0],), ago(20), "Proposal", {ANA: SENT}),
        Mail("m2", joe, (ANA,), ago(19), "Re: Proposal", {ANA: INBOX}),
        Mail("m3", kim, (ANA, BOB), ago(15), "Pricing question", {ANA: INBOX, BOB: INBOX}),
        Mail(
            "m4",
            (BOB, "Bob Stone"),
            (dan[0],),
            ago(12),
            "Intro",
            {BOB: SENT, ANA: INBOX},
            cc=(ANA,),
        ),
        Mail("m5", dan, (BOB,), ago(11), "Re: Intro", {BOB: INBOX}),
        Mail("m6", eve, (ANA,), ago(8), "Trial", {ANA: INBOX}),
        Mail("m7", (ANA, "Ana Silva"), (eve[0], joe[0]), ago(4), "Next steps", {ANA: SENT}),
        # internal only: no activity
        Mail("i1", (ANA, "Ana Silva"), (BOB,), ago(9), "Lunch?", {ANA: SENT, BOB: INBOX}),
        # automated, each by one header or trait only (§2)
        Mail(
            "a1",
            ("news@vendor.example", "Vendor News"),
            (ANA,),
            ago(18),
            "Our news",
            {ANA: INBOX},
            headers=(("List-Id", "<news.vendor.example>"),),
        ),
        Mail(
            "a2",
            ("offers@shop.example", "Shop"),
            (ANA,),
            ago(17),
            "Offers",
            {ANA: INBOX},
            headers=(("List-Unsubscribe", "<mailto:unsub@shop.example>"),),
        ),
        Mail(
            "a3",
            ("digest@forum.example", "Forum"),
            (BOB,),
            ago(16),
            "Digest",
            {BOB: INBOX},
            headers=(("Precedence", "bulk"),),
        ),
        Mail(
            "a4",
            kim,
            (ANA,),
            ago(14),
            "Out of office: Pricing question",
            {ANA: INBOX},
            headers=(("Auto-Submitted", "auto-replied"),),
        ),
        Mail(
            "a5", ("noreply@billing.example", "Billing"), (ANA,), ago(13), "Invoice", {ANA: INBOX}
        ),
        Mail(
            "a6",
            ("mailer-daemon@northwind.example", "Mail Delivery System"),
            (ANA,),
            ago(10),
            "Undeliverable",
            {ANA: INBOX},
            shape="report",
        ),
        # invitations: calendar messages, never emails (§3)
        Mail(
            "c1",
            ("calendar@contoso.example", "Dan Ortiz"),
            (BOB,),
            ago(7),
            "Invitation: Demo",
            {BOB: INBOX},
            shape="google",
        ),
        Mail(
            "c2",
            joe,
            (ANA,),
            ago(6),
            "Invitation: Review",
            {ANA: INBOX},
            shape="exchange",
            headers=(("Content-Class", "urn:content-classes:calendarmessage"),),
        ),
        Mail("c3", eve, (ANA,), ago(5), "Invitation: Call with Eve", {ANA: INBOX}, shape="other"),
    ]
    return mails


MAIL = _mail()


@dataclass(frozen=True)
class Meeting:
    """One event or weekly series, and whose calendars hold it."""

    uid: str
    summary: str
    start: datetime
    organizer: str
    attendees: tuple[str, ...]
    holders: tuple[str, ...]
    weekly: int = 0  # COUNT of a weekly series
    moved: tuple[tuple[int, timedelta], ...] = ()  # occurrence number -> shift
    cancelled: tuple[int, ...] = ()  # occurrence numbers cancelled
    minutes: int = 45
    created: datetime = field(default_factory=lambda: ago(60, 8))

    def original(self, number: int) -> datetime:
        return self.start + timedelta(weeks=number)

    def numbers(self) -> range:
        return range(self.weekly or 1)

    def ics(self) -> str:
        """As a CalDAV server holds it: the series with RRULE, each moved or cancelled
        occurrence as an override (RECURRENCE-ID)."""

        def stamp(moment: datetime) -> str:
            return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")

        def component(start: datetime, extra: list[str], status: str = "CONFIRMED") -> list[str]:
            return [
                "BEGIN:VEVENT",
                f"UID:{self.uid}",
                f"DTSTAMP:{stamp(self.created)}",
                f"CREATED:{stamp(self.created)}",
                f"SUMMARY:{self.summary}",
                f"STATUS:{status}",
                f"DTSTART:{stamp(start)}",
                f"DTEND:{stamp(start + timedelta(minutes=self.minutes))}",
                f"ORGANIZER:mailto:{self.organizer}",
                *[f"ATTENDEE;PARTSTAT=ACCEPTED:mailto:{a}" for a in self.attendees],
                *extra,
                "END:VEVENT",
            ]

        lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//sameorg//calendar//EN"]
        lines += component(
            self.start, [f"RRULE:FREQ=WEEKLY;COUNT={self.weekly}"] * bool(self.weekly)
        )
        for number, shift in self.moved:
            rid = f"RECURRENCE-ID:{stamp(self.original(number))}"
            lines += component(self.original(number) + shift, [rid])
        for number in self.cancelled:
            rid = f"RECURRENCE-ID:{stamp(self.original(number))}"
            lines += component(self.original(number), [rid], "CANCELLED")
        return "\r\n".join([*lines, "END:VCALENDAR", ""])


MEETINGS = [
    Meeting(
        "weekly-northwind",
        "Weekly check-in with Northwind",
        ago(35, 14),
        ANA,
        ("joe@northwind.example", "kim@northwind.example"),
        (ANA,),
        weekly=7,
        moved=((2, timedelta(days=1, hours=2)),),
        cancelled=(4,),
    ),
    Meeting(
        "contoso-demo",
        "Demo for Contoso",
        ago(6, 15),
        "dan@contoso.example",
        (BOB, "dan@contoso.example"),
        (BOB,),
    ),
    Meeting(
        "eve-trial",
        "Trial review with Eve",
        ago(3, 9),
        ANA,
        (BOB, "eve.buyer@gmail.com"),
        (ANA, BOB),
    ),
    Meeting("internal", "Pipeline review", ago(2, 11), ANA, (BOB,), (ANA, BOB)),
    Meeting(
        "future-joe",
        "Contract walkthrough",
        NOW + timedelta(days=5, hours=3),
        ANA,
        ("joe@northwind.example",),
        (ANA,),
    ),
]
