"""A deterministic synthetic mailbox: one sales rep's IMAP header fetches, generated lazily.

`Mailbox(seed, count)` builds a small, fixed world from the seed (the org acme.example with ten
users, ~2,000 external companies, their people, webmail users, automated senders). Message `i`
is a pure function of (seed, i): `Mailbox.pages()` yields them a page at a time and never holds
more than one page, so the benchmark can walk the same 100,000-message stream several times
without keeping it in memory.

Each message is the header block an IMAP `BODY.PEEK[HEADER.FIELDS (…)]` fetch returns for
`connectors.mail.FETCHED_HEADERS`, CRLF line ends, folded where a mail client would fold, plus
(with `full_headers`) the trace and authentication headers a full `BODY[HEADER]` fetch returns.

Mix: ~40% sent by the owner to 1-4 recipients (external people, webmail, colleagues; Cc and
Bcc sometimes), ~40% received from external people, ~10% internal-only, ~10% automated
(mailing lists, no-reply senders, auto-replies, bounces). RFC 2047 encoded display names and
subjects on some, Message-ID on all but ~1%, a Date on all but ~0.2%, twelve months of dates.
"""

from __future__ import annotations

import base64
import quopri
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email.header import Header
from email.utils import format_datetime, formataddr
from itertools import accumulate
from random import Random
from typing import Literal

FolderRole = Literal["inbox", "sent"]
Category = Literal["sent", "received", "internal", "automated"]


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


ORG_NAME = "Acme"
ORG_DOMAIN = "acme.example"
ORG_TIMEZONE = "America/New_York"
UIDVALIDITY = 1717171717
START = datetime(2025, 1, 6, 7, 0, tzinfo=UTC)
SPAN = timedelta(days=365)

# (name, primary address, aliases); the first one owns the mailbox, the second is the org admin
USERS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("Dana Reyes", "dana.reyes@acme.example", ("dana@acme.example",)),
    ("Priya Natarajan", "priya.natarajan@acme.example", ()),
    ("Tom Becker", "tom.becker@acme.example", ("tom.becker@eu.acme.example",)),
    ("Marcus Okafor", "marcus.okafor@acme.example", ()),
    ("Léa Fontaine", "lea.fontaine@acme.example", ()),
    ("Sam Whitfield", "sam.whitfield@acme.example", ()),
    ("Hiroshi Tanaka", "hiroshi.tanaka@acme.example", ()),
    ("Olivia Grant", "olivia.grant@acme.example", ()),
    ("Jürgen Vogel", "juergen.vogel@acme.example", ()),
    ("Ana Sousa", "ana.sousa@acme.example", ()),
)
# internal addresses that are nobody's mailbox: lists, shared inboxes
INTERNAL_SHARED = ("team-sales@acme.example", "billing@acme.example", "support@acme.example")

FIRST_NAMES = _words(
    "James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara "
    "Richard Susan Joseph Jessica Thomas Sarah Charles Karen Daniel Nancy Matthew Lisa Anthony "
    "Betty Mark Sandra Steven Ashley Paul Emily Andrew Donna Joshua Michelle Kevin Carol Brian "
    "Amanda George Melissa Emma Noah Olivia Liam Sophia Lucas Mia Ethan Chloe Hannah Oscar Ines "
    "Jürgen Zoë José Łukasz François Søren Renée Björn Agnieszka Çağla Miloš Ngọc Ramón Dóra "
    "Gaëlle Håkon Ömer Željko André Sébastien Małgorzata"
)
LAST_NAMES = _words(
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez "
    "Gonzalez Wilson Anderson Taylor Moore Jackson Martin Lee Thompson White Harris Clark Lewis "
    "Walker Hall Allen Young King Wright Scott Green Baker Adams Nelson Hill Campbell Mitchell "
    "Müller Schröder Dubois Lefèvre García Núñez Kowalski Wiśniewski Øberg Sørensen Nguyễn "
    "Y\u0131lmaz Novák Szabó O'Brien Vandenberg DeLuca Rossi Ferrari Petrov Ivanova Tanaka Sato"
)
CJK_NAMES = ("田中 太郎", "佐藤 花子", "李 伟", "王 芳", "김 민준", "박 서연")
SYLLABLES = _words(
    "ac ad al am an ar as at ba be bi bo bra ca ce co cor da de di do dy el en er ex fa fi "
    "flo ga ge gla go gra ha he hi ho in is ja jo ka ke ko la le li lo lu ma me mi mo mu na "
    "ne ni no nu ol on or pa pe pi po pra qua ra re ri ro ru sa se si so sta su ta te ti to "
    "tra tu ul un va ve vi vo wa we xi ya yo za ze zo"
)
WORDS = _words(
    "labs systems group global logistics foods health capital energy analytics software "
    "partners holdings industries networks media robotics solutions works studio"
)
# suffix, weight: plain gTLDs, ccTLDs and two-label public suffixes (co.uk-style)
SUFFIXES = (
    ("com", 46),
    ("io", 7),
    ("net", 5),
    ("org", 3),
    ("de", 6),
    ("fr", 4),
    ("nl", 3),
    ("es", 2),
    ("co.uk", 8),
    ("org.uk", 1),
    ("com.au", 4),
    ("co.nz", 1),
    ("co.jp", 2),
    ("com.br", 3),
    ("co.za", 1),
    ("com.mx", 2),
    ("ca", 2),
)
SUBDOMAINS = ("mail", "eu", "us", "corp", "uk", "emea", "apac", "email")
WEBMAIL = _words(
    "gmail.com gmail.com gmail.com yahoo.com yahoo.co.uk outlook.com hotmail.com hotmail.de "
    "gmx.net gmx.de web.de icloud.com proton.me aol.com"
)
OFFSETS = (-8, -7, -6, -5, -5, -5, -4, 0, 0, 1, 1, 1, 2, 3, 5.5, 8, 9, 10)
SUBJECTS = (
    "Proposal for {co}",
    "{co} <> Acme: next steps",
    "Pricing question",
    "Follow-up on our call",
    "Contract redlines",
    "Intro: {co} and Acme",
    "Renewal {year}",
    "Quick question about the pilot",
    "Meeting notes {month}",
    "Security questionnaire",
    "Invoice {n}",
    "Demo recording",
    "Updated quote \u2013 {co}",
    "Onboarding plan for {co}",
    "Re-engagement: {co}",
    "Devis mis à jour pour {co}",
    "Angebot für {co} \u2013 Überarbeitung",
    "Propuesta económica {year}",
    "Q{q} business review",
    "Can we move our call to {day}?",
)
INTERNAL_SUBJECTS = (
    "Pipeline review",
    "Deal desk: {co}",
    "1:1 agenda",
    "Forecast call {month}",
    "Territory planning",
    "Lunch?",
    "Expense report",
    "QBR prep for {co}",
)
NEWSLETTERS = (
    ("SaaS Weekly", "news@saasweekly.com", "weekly.saasweekly.com"),
    ("Sales Hacker Digest", "digest@saleshacker-digest.io", "digest.saleshacker-digest.io"),
    ("The Revenue Brief", "editor@revenuebrief.co.uk", "brief.revenuebrief.co.uk"),
    ("CRM Insider", "list@crminsider.net", "insider.crminsider.net"),
    ("Founders Forum", "forum@foundersforum.org", "<forum.foundersforum.org>"),
)
NOTIFIERS = (
    ("LinkedIn", "noreply@linkedin-mail.example.com"),
    ("DocuSign", "dse_na2@docusign.example.net"),
    ("Calendly", "no-reply@calendly.example.com"),
    ("Zoom", "no-reply@zoom.example.us"),
    ("Expensify", "noreply@expensify.example.com"),
    ("Jira", "jira@acme-corp.atlassian.example.net"),
    ("Gong", "do-not-reply@gong.example.io"),
)
MONTHS = _words(
    "January February March April May June July August September October November December"
)
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")


@dataclass(frozen=True, slots=True)
class Person:
    email: str
    name: str | None  # None: the address travels without a display name
    offset: float  # the person's UTC offset, for the Date header of what they send


@dataclass(frozen=True, slots=True)
class Company:
    name: str
    people: tuple[Person, ...]


@dataclass(frozen=True, slots=True)
class GeneratedMessage:
    index: int
    raw: bytes  # the header block, CRLF line ends, ending with an empty line
    source_id: str  # IMAP style: folder/uidvalidity/uid, the uid being index + 1
    folder_role: FolderRole
    provider_date: datetime  # INTERNALDATE
    category: Category
    body: bytes | None = None  # the body prefix (with_bodies only; none for bounces)


def page_of(source_id: str, page_size: int) -> int:
    """The page a message was written in, from its source id."""
    return (int(source_id.rsplit("/", 1)[1]) - 1) // page_size


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return "".join(c for c in folded.lower() if c.isalnum())


class World:
    """The fixed cast of the mailbox, built once from the seed (a few thousand small objects)."""

    def __init__(self, seed: int, companies: int = 2000) -> None:
        rng = Random(f"world-{seed}")
        self.users = [Person(email, name, -5) for name, email, _ in USERS]
        self.owner = self.users[0]
        self.owner_addresses = (USERS[0][1], *USERS[0][2])
        self.colleagues = self.users[1:]
        used: set[str] = set()
        self.companies: list[Company] = []
        weights = [w for _, w in SUFFIXES]
        while len(self.companies) < companies:
            label = "".join(rng.choice(SYLLABLES) for _ in range(rng.choice((2, 2, 3))))
            if rng.random() < 0.3:
                label += "-" + rng.choice(WORDS)
            suffix = rng.choices(SUFFIXES, weights)[0][0]
            domain = f"{label}.{suffix}"
            if domain in used:
                continue
            used.add(domain)
            subdomain = f"{rng.choice(SUBDOMAINS)}.{domain}" if rng.random() < 0.15 else None
            size = min(1 + int(rng.expovariate(1 / 3.5)), 40)
            people = tuple(
                self._person(rng, subdomain if subdomain and rng.random() < 0.6 else domain)
                for _ in range(size)
            )
            self.companies.append(Company(label.split("-")[0].title(), _unique(people)))
        # a few accounts get most of the mail: Zipf-like weights over a shuffled order
        self.company_weights = list(accumulate(1 / (rank + 5) for rank in range(companies)))
        rng.shuffle(self.companies)
        self.webmail = _unique(
            tuple(self._person(rng, rng.choice(WEBMAIL), webmail=True) for _ in range(600))
        )

    @staticmethod
    def _person(rng: Random, domain: str, *, webmail: bool = False) -> Person:
        if rng.random() < 0.03:
            full = rng.choice(CJK_NAMES)
            local = f"user{rng.randrange(10_000)}"
        else:
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            full = f"{first} {last}"
            a, b = _ascii(first), _ascii(last)
            pattern = rng.random()
            if webmail:
                local = f"{a}{b}{rng.randrange(100)}" if pattern < 0.6 else f"{a}.{b}"
            elif pattern < 0.55:
                local = f"{a}.{b}"
            elif pattern < 0.75:
                local = f"{a[0]}{b}"
            elif pattern < 0.9:
                local = a
            else:
                local = f"{a}_{b}"
        name: str | None = full
        style = rng.random()
        if style < 0.08:
            name = None
        elif style < 0.15 and " " in full:
            first, _, last = full.partition(" ")
            name = f"{last}, {first}"
        return Person(f"{local}@{domain}", name, rng.choice(OFFSETS))

    def company(self, rng: Random) -> Company:
        return rng.choices(self.companies, cum_weights=self.company_weights)[0]

    def external_person(self, rng: Random) -> Person:
        if rng.random() < 0.12:
            return rng.choice(self.webmail)
        return rng.choice(self.company(rng).people)


def _unique(people: tuple[Person, ...]) -> tuple[Person, ...]:
    return tuple({p.email: p for p in people}.values())


# what each kind of mail is made of: sender, To, Cc, Bcc, subject, extra headers, folder
_Built = tuple[
    Person,
    Sequence[Person],
    Sequence[Person],
    Sequence[Person],
    str,
    list[tuple[str, str]],
    FolderRole,
]


class Mailbox:
    """`count` messages of the owner's mailbox; message i depends only on (seed, i)."""

    def __init__(
        self,
        seed: int = 20250106,
        count: int = 100_000,
        *,
        full_headers: bool = False,
        with_bodies: bool = False,
    ) -> None:
        self.seed = seed
        self.count = count
        self.full_headers = full_headers
        self.with_bodies = with_bodies
        self.world = World(seed)

    def pages(self, size: int) -> Iterator[list[GeneratedMessage]]:
        for start in range(0, self.count, size):
            yield [self.message(i) for i in range(start, min(start + size, self.count))]

    def message(self, index: int) -> GeneratedMessage:
        rng = Random(self.seed * 1_000_003 + index)
        when = START + SPAN * ((index + rng.random()) / self.count)
        roll = rng.random()
        category: Category
        if roll < 0.40:
            category, built = "sent", self._sent(rng)
        elif roll < 0.80:
            category, built = "received", self._received(rng)
        elif roll < 0.90:
            category, built = "internal", self._internal(rng)
        else:
            category, built = "automated", self._automated(rng)
        sender, to, cc, bcc, subject, extra, role = built
        headers: list[tuple[str, str]] = []
        if rng.random() >= 0.002:
            offset = timezone(timedelta(hours=sender.offset))
            headers.append(("Date", format_datetime(when.astimezone(offset))))
        headers.append(("From", _address(rng, sender)))
        if to:
            headers.append(("To", _address_list(rng, to)))
        if cc:
            headers.append(("Cc", _address_list(rng, cc)))
        if bcc:
            headers.append(("Bcc", _address_list(rng, bcc)))
        headers.append(("Subject", _subject(rng, subject)))
        if rng.random() >= 0.01:
            headers.append(("Message-ID", _message_id(rng, sender.email)))
        headers.extend(extra)
        mime = None
        if not any(name == "Content-Type" for name, _ in extra):
            mime = _content_type(rng)
            headers.extend(mime.headers)
        if self.full_headers:
            headers = _trace_headers(rng, sender.email, when) + headers
        raw = "".join(f"{name}: {value}\r\n" for name, value in headers) + "\r\n"
        folder = "Sent" if role == "sent" else "INBOX"
        body = None
        if self.with_bodies and mime is not None:  # drawn last: headers are the same without
            body = _body(rng, sender, subject, mime)
        return GeneratedMessage(
            index=index,
            raw=raw.encode("utf-8"),
            source_id=f"{folder}/{UIDVALIDITY}/{index + 1}",
            folder_role=role,
            provider_date=when + timedelta(seconds=rng.randrange(1, 120)),
            category=category,
            body=body,
        )

    # -- the four kinds of mail ------------------------------------------------------------

    def _fill(self, rng: Random, subject: str, company: Company | None = None) -> str:
        co = company.name if company else self.world.company(rng).name
        return subject.format(
            co=co,
            year=rng.choice((2025, 2026)),
            month=rng.choice(MONTHS),
            n=rng.randrange(10_000, 99_999),
            q=rng.randrange(1, 5),
            day=rng.choice(DAYS),
        )

    def _reply(self, rng: Random, subject: str) -> str:
        roll = rng.random()
        if roll < 0.35:
            return "Re: " + subject
        if roll < 0.40:
            return "RE: Re: " + subject
        if roll < 0.45:
            return "Fwd: " + subject
        return subject

    def _owner(self, rng: Random) -> Person:
        owner = self.world.owner
        if rng.random() < 0.1:
            return Person(self.world.owner_addresses[1], owner.name, owner.offset)
        return owner

    def _sent(self, rng: Random) -> _Built:
        world = self.world
        company = world.company(rng)
        wanted = rng.choices((1, 2, 3, 4), (45, 30, 15, 10))[0]
        to: list[Person] = []
        if rng.random() < 0.1:
            to.append(rng.choice(world.webmail))
        while len(to) < wanted:
            roll = rng.random()
            if roll < 0.75:
                to.append(rng.choice(company.people))
            elif roll < 0.85:
                to.append(world.external_person(rng))
            else:
                to.append(rng.choice(world.colleagues))
        if all(p.email.endswith(ORG_DOMAIN) for p in to):
            to.append(rng.choice(company.people))
        to = list(_unique(tuple(to)))
        cc: list[Person] = []
        if rng.random() < 0.3:
            cc.append(rng.choice(world.colleagues))
            if rng.random() < 0.4:
                cc.append(rng.choice(company.people))
        bcc = [rng.choice(world.colleagues)] if rng.random() < 0.06 else []
        subject = self._reply(rng, self._fill(rng, rng.choice(SUBJECTS), company))
        return self._owner(rng), to, cc, bcc, subject, [], "sent"

    def _received(self, rng: Random) -> _Built:
        world = self.world
        company = world.company(rng)
        sender = rng.choice(world.webmail) if rng.random() < 0.12 else rng.choice(company.people)
        owner = self._owner(rng)
        others = [rng.choice(company.people) for _ in range(rng.choice((0, 0, 0, 1, 2)))]
        colleagues = [rng.choice(world.colleagues) for _ in range(rng.choice((0, 0, 0, 1)))]
        roll = rng.random()
        if roll < 0.85:
            to, cc = [owner, *colleagues], others
        elif roll < 0.97:
            to, cc = [*others, rng.choice(world.colleagues)], [owner]
        else:  # Bcc'd, or through a list: the owner is not in the headers at all
            to, cc = [Person(INTERNAL_SHARED[0], "Acme Sales", -5)], others
        subject = self._reply(rng, self._fill(rng, rng.choice(SUBJECTS), company))
        return sender, _unique(tuple(to)), cc, [], subject, [], "inbox"

    def _internal(self, rng: Random) -> _Built:
        world = self.world
        group = [rng.choice(world.colleagues) for _ in range(rng.choice((1, 1, 2, 3)))]
        if rng.random() < 0.15:
            group.append(Person(rng.choice(INTERNAL_SHARED), None, -5))
        subject = self._reply(rng, self._fill(rng, rng.choice(INTERNAL_SUBJECTS)))
        if rng.random() < 0.5:
            return self._owner(rng), list(_unique(tuple(group))), [], [], subject, [], "sent"
        sender = group.pop(0) if len(group) > 1 else rng.choice(world.colleagues)
        to = _unique((self._owner(rng), *group))
        return sender, to, [], [], subject, [], "inbox"

    def _automated(self, rng: Random) -> _Built:
        world = self.world
        owner = self._owner(rng)
        roll = rng.random()
        extra: list[tuple[str, str]] = []
        if roll < 0.4:
            name, address, list_id = rng.choice(NEWSLETTERS)
            sender = Person(address, name, 0)
            extra.append(("List-Id", f"{name} <{list_id.strip('<>')}>"))
            extra.append(
                (
                    "List-Unsubscribe",
                    f"<mailto:unsubscribe@{address.split('@')[1]}>, <https://"
                    f"{address.split('@')[1]}/u/{rng.getrandbits(64):x}>",
                )
            )
            if rng.random() < 0.3:
                extra.append(("Precedence", "bulk"))
            subject = f"{name}: issue #{rng.randrange(1, 400)}"
        elif roll < 0.7:
            name, address = rng.choice(NOTIFIERS)
            sender = Person(address, name, 0)
            subject = f"{name}: you have a new notification"
            if rng.random() < 0.5:
                extra.append(("Auto-Submitted", "auto-generated"))
        elif roll < 0.85:  # out-of-office replies from the people Dana writes to
            sender = world.external_person(rng)
            extra.append(("Auto-Submitted", "auto-replied"))
            extra.append(("X-Auto-Response-Suppress", "All"))
            if rng.random() < 0.3:
                extra.append(("X-Autoreply", "yes"))
            subject = "Automatic reply: " + self._fill(rng, rng.choice(SUBJECTS))
        elif roll < 0.95:
            domain = world.company(rng).people[0].email.split("@", 1)[1]
            sender = Person(f"mailer-daemon@mx1.{domain}", "Mail Delivery System", 0)
            extra.append(("Auto-Submitted", "auto-replied"))
            boundary = f"{rng.getrandbits(64):016x}/mx1.{domain}"
            extra.append(
                (
                    "Content-Type",
                    f'multipart/report; report-type=delivery-status;\r\n\tboundary="{boundary}"',
                )
            )
            subject = "Undelivered Mail Returned to Sender"
        else:
            sender = Person("alerts@status.example.io", "Status Alerts", 0)
            extra.append(("Precedence", "list"))
            subject = f"[Resolved] Incident {rng.randrange(1000, 9999)}"
        return sender, [owner], [], [], subject, extra, "inbox"


def _address(rng: Random, person: Person) -> str:
    if person.name is None:
        return person.email if rng.random() < 0.7 else f"<{person.email}>"
    if not person.name.isascii() or rng.random() < 0.04:  # Outlook encodes even plain names
        encoding = "utf-8" if rng.random() < 0.85 else "iso-8859-1"
        try:
            return formataddr((person.name, person.email), charset=encoding)
        except UnicodeEncodeError:
            return formataddr((person.name, person.email), charset="utf-8")
    return formataddr((person.name, person.email))


def _address_list(rng: Random, people: Sequence[Person]) -> str:
    parts = [_address(rng, p) for p in people]
    joined = ", ".join(parts)
    return joined if len(joined) < 70 else ",\r\n ".join(parts)


def _subject(rng: Random, subject: str) -> str:
    if not subject.isascii() or rng.random() < 0.03:
        return Header(subject, "utf-8", header_name="Subject").encode(linesep="\r\n")
    if len(subject) > 60 and rng.random() < 0.5:
        cut = subject.rfind(" ", 0, 50)
        return subject[:cut] + "\r\n" + subject[cut:] if cut > 0 else subject
    return subject


def _message_id(rng: Random, sender: str) -> str:
    domain = sender.rsplit("@", 1)[1]
    roll = rng.random()
    if domain.startswith("gmail") or roll < 0.15:
        tail = "".join(
            rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+_")
            for _ in range(40)
        )
        return f"<CA{tail}@mail.gmail.com>"
    if roll < 0.55:
        return (
            f"<{rng.choice(('AM', 'DB', 'VI', 'PH', 'BN'))}{rng.randrange(1, 9)}PR"
            f"{rng.randrange(10, 99)}MB{rng.randrange(1000, 9999)}"
            f"{rng.getrandbits(64):016X}@{rng.choice(('EURP', 'NAMP'))}"
            f"RD{rng.randrange(10, 99)}.prod.outlook.com>"
        )
    return f"<{rng.getrandbits(128):032x}.{rng.getrandbits(20)}@{domain}>"


@dataclass(frozen=True, slots=True)
class _Mime:
    headers: list[tuple[str, str]]
    boundary: str | None = None  # multipart/alternative or multipart/mixed
    encoding: str = "7bit"  # Content-Transfer-Encoding of a text/plain message


def _content_type(rng: Random) -> _Mime:
    roll = rng.random()
    if roll < 0.45:
        boundary = f"000000000000{rng.getrandbits(48):012x}"
        return _Mime([("Content-Type", f'multipart/alternative; boundary="{boundary}"')], boundary)
    if roll < 0.65:
        boundary = f"_004_{rng.getrandbits(64):016X}_"
        return _Mime([("Content-Type", f'multipart/mixed;\r\n\tboundary="{boundary}"')], boundary)
    encoding = rng.choice(("quoted-printable", "7bit", "base64"))
    return _Mime(
        [
            ("Content-Type", 'text/plain; charset="utf-8"'),
            ("Content-Transfer-Encoding", encoding),
        ],
        encoding=encoding,
    )


def _trace_headers(rng: Random, sender: str, when: datetime) -> list[tuple[str, str]]:
    """What a full BODY[HEADER] fetch adds: delivery trace, authentication, client noise."""
    domain = sender.rsplit("@", 1)[1]
    stamp = format_datetime(when)
    hops = [
        (
            "Received",
            f"from mail-{rng.choice(('ej1', 'wm1', 'yb1'))}-f{rng.randrange(40, 200)}.{domain} "
            f"(mail.{domain} [203.0.113.{rng.randrange(1, 254)}])\r\n\tby mx.acme.example "
            f"(Postfix) with ESMTPS id {rng.getrandbits(40):010X}\r\n\tfor "
            f"<dana.reyes@acme.example>; {stamp}",
        )
        for _ in range(rng.choice((2, 3, 4)))
    ]
    signature = "".join(
        rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
        for _ in range(344)
    )
    folded = "\r\n\t ".join(signature[i : i + 72] for i in range(0, len(signature), 72))
    return [
        ("Return-Path", f"<{sender}>"),
        ("Delivered-To", "dana.reyes@acme.example"),
        *hops,
        (
            "DKIM-Signature",
            f"v=1; a=rsa-sha256; c=relaxed/relaxed;\r\n\td={domain}; s=s1; t="
            f"{int(when.timestamp())};\r\n\th=from:to:subject:date:message-id;\r\n\t"
            f"bh={signature[:44]}=;\r\n\tb={folded}",
        ),
        (
            "Authentication-Results",
            f"mx.acme.example;\r\n\tdkim=pass header.d={domain};\r\n\tspf=pass "
            f"smtp.mailfrom={sender};\r\n\tdmarc=pass header.from={domain}",
        ),
        ("MIME-Version", "1.0"),
        ("X-Mailer", rng.choice(("Microsoft Outlook 16.0", "Apple Mail (2.3774)", "Gmail"))),
    ]


def _encode(text: str, encoding: str) -> str:
    data = text.encode("utf-8")
    if encoding == "base64":
        return base64.encodebytes(data).decode("ascii").replace("\n", "\r\n")
    if encoding == "quoted-printable":  # encode LF lines, then put the CRLFs back
        lines = quopri.encodestring(text.replace("\r\n", "\n").encode("utf-8"))
        return lines.decode("ascii").replace("\n", "\r\n")
    return text


def _body(rng: Random, sender: Person, subject: str, mime: _Mime) -> bytes:
    """The body prefix an IMAP `BODY.PEEK[TEXT]<0.8192>` fetch returns: a short reply with a
    signature block and a quoted tail, as text/plain or inside the message's MIME parts."""
    name = sender.name or sender.email.split("@", 1)[0]
    title = rng.choice(("VP Sales", "Head of Procurement", "CTO", "Account Director", ""))
    phone = f"+1 (415) 555-{rng.randrange(1000, 9999)}"
    lines = [
        "Hi Dana,",
        "",
        f"Thanks for the note about {subject[:40]}. Let's pick this up next week;",
        "I have looped in the team and will send the signed copy by Friday.",
        "",
        "Best regards,",
        name,
        *([title] if title else []),
        f"Mobile: {phone}" if rng.random() < 0.7 else "",
        "",
        "On Mon, Jun 2, 2025 at 9:30 AM Dana Reyes <dana.reyes@acme.example> wrote:",
        "> Hi, following up on our call.",
    ]
    text = "\r\n".join(lines) + "\r\n"
    if mime.boundary is None:
        return _encode(text, mime.encoding).encode("ascii" if mime.encoding != "7bit" else "utf-8")
    html = "<html><body><p>" + "<br>\r\n".join(lines) + "</p></body></html>\r\n"
    second = (
        ('text/html; charset="utf-8"', "quoted-printable", html)
        if "000000000000" in mime.boundary  # multipart/alternative
        else ('application/pdf; name="proposal.pdf"', "base64", "%PDF-1.7 " * 1200)
    )
    parts = [
        ('text/plain; charset="utf-8"', "quoted-printable", text),
        second,
    ]
    body = "".join(
        f"--{mime.boundary}\r\nContent-Type: {kind}\r\n"
        f"Content-Transfer-Encoding: {encoding}\r\n\r\n{_encode(content, encoding)}\r\n"
        for kind, encoding, content in parts
    )
    return (body + f"--{mime.boundary}--\r\n").encode("utf-8")[:8192]
