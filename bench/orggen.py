"""A sales organization with five years of history, generated for bench/rollups.py.

Globex (`globex.example`, America/New_York, reporting in EUR): one admin and 20 teams, each
with a manager and ten reps. `History(shape, staff)` generates, as plain row tuples in the
column order of `COLUMNS`, everything the organization would have accumulated from
2021-12-01 to 2026-11-30:

- companies and their contacts (one contact per 40 activities, about seven per company, a
  tenth of them at webmail domains without a company); each rep works a book of accounts, a window
  of which is active at any time and slides through the book over the rep's tenure;
- activities, day by day in the organization's zone: about 33% `email_sent`, 38%
  `email_received`, 15% `call`, 9% `meeting_held`, 5% `meeting_scheduled`, in business
  hours, weekdays mostly, more of them as the years go by; reps differ in productivity, a
  quarter of them joined later, everybody takes holidays. Each activity links 0–3 contacts
  (`activity_contacts`) drawn from the few the rep deals with that day, sometimes a
  teammate's account;
- the stored rollups of exactly those activities (`activity_days`, `contact_days`), as
  Tally keeps them, computed while the day is generated;
- deals: one per 20 activities by default, owned by reps, at their accounts, with one or two
  of the account's contacts; a sales cycle of a few weeks, won or lost (win rates between 20
  and 45% per rep) or still open in a stage of the pipeline, with an expected close date
  (sometimes overdue, a tenth without one); 15% in USD or GBP, with monthly exchange rates.

Every row is a pure function of the seed and the shape: both backends get the same
organization. Activity and deal ids grow with time, as they would in a database that lived
those five years. Generation streams a day at a time: memory does not grow with history.
"""

from __future__ import annotations

import hashlib
import math
import unicodedata
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import accumulate
from random import Random
from typing import Any
from zoneinfo import ZoneInfo

from app.deals.currency import RateBook

ORG_NAME = "Globex"
ORG_DOMAIN = "globex.example"
ORG_TIMEZONE = "America/New_York"
ORG_CURRENCY = "EUR"
TEAMS = 20
REPS_PER_TEAM = 10
FIRST_DAY = date(2021, 12, 1)
LAST_DAY = date(2026, 11, 30)  # five years of history end here
SEARCH_TERM = "berg"  # in ~7% of contact names: what a type-ahead search sends

# Columns of every generated table, in the order of the row tuples.
COLUMNS: dict[str, tuple[str, ...]] = {
    "companies": ("id", "org_id", "domain", "name", "created_at"),
    "contacts": (
        "id",
        "org_id",
        "email",
        "name",
        "title",
        "phones",
        "company_id",
        "edited_fields",
        "created_at",
    ),
    "activities": (
        "id",
        "org_id",
        "user_id",
        "type",
        "occurred_at",
        "source_key",
        "message_pk",
        "subject",
        "connection_id",
        "provider",
        "created_at",
    ),
    "activity_contacts": ("activity_id", "contact_id"),
    "activity_days": ("user_id", "day", "type", "count"),
    "contact_days": ("user_id", "day", "contact_id", "count", "first_at", "last_at"),
    "exchange_rates": ("id", "org_id", "currency", "rate", "effective_from"),
    "deals": (
        "id",
        "org_id",
        "owner_id",
        "name",
        "company_id",
        "value",
        "cost",
        "currency",
        "value_base",
        "cost_base",
        "stage",
        "status",
        "expected_close_date",
        "created_at",
        "closed_at",
        "external_id",
        "updated_at",
    ),
    "deal_contacts": ("deal_id", "contact_id"),
}

Row = tuple[object, ...]
Rows = dict[str, list[Row]]  # table name -> rows


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


FIRST_NAMES = _words(
    "Ana Amir Astrid Ben Carla Chen Chiara Daniel Diego Elena Emeka Emma Fatima Felix Grace "
    "Hana Hugo Ines Ivan Jack Jana Jonas Julia Kai Karin Lars Laura Leon Lucas Maja Marco "
    "Maria Mateo Mei Mia Nadia Niklas Noah Nora Olga Omar Paula Pedro Priya Rafael Rosa Ruth "
    "Sara Simon Sofia Stefan Tariq Theo Tomás Ugo Vera Wei Yara Yusuf Zoe Zoltán"
)
LAST_NAMES = _words(
    "Andersen Bauer Bergmann Bianchi Brown Castro Dubois Eriksson Fischer Fontaine Garcia "
    "Goldberg Hansen Hoffmann Ito Jansen Kowalski Kumar Larsen Lindberg Lopez Martin "
    "Meyer Moreau Müller Nakamura Novak Nowak Okafor Olsen Park Peeters Petrov Rossi "
    "Sandberg Santos Schmidt Schneider Silva Smith Svensson Tanaka Taylor Thomas Vogel "
    "Wagner Walker Weber Wilson Wong Yamamoto Young Zhang Ziegler Abara Brennan Costa "
    "Dimitrov Ekström Haddad"
)
TITLES = (None, None, "Head of Procurement", "CFO", "IT Manager", "Buyer", "Operations Lead")
COMPANY_PREFIXES = _words(
    "North South East West Blue Red Green Silver Golden Iron Stone River Lake Cedar Oak Pine "
    "Maple Summit Harbor Bright Clear Swift Prime Alpha Nova Vertex Apex Orbit Polar Solar "
    "Lunar Coral Amber Crystal Delta Echo Falcon Granite Hudson Atlas"
)
COMPANY_ROOTS = _words(
    "wind field gate bridge works labs systems logistics foods motors health media energy "
    "capital metrics dynamics robotics foundry textiles pharma retail freight analytics "
    "software networks partners farms steel print water air marine rail build data cloud "
    "minds ware craft line point"
)
COMPANY_SUFFIXES = ("com", "co.uk", "de", "fr", "io", "com.au", "nl", "es", "se", "it")
WEBMAIL = ("gmail.com", "outlook.com", "yahoo.com", "icloud.com", "proton.me", "gmx.de")
PRODUCTS = ("Platform", "Renewal", "Expansion", "Pilot", "Enterprise", "Support", "Upgrade")
EMAIL_TOPICS = (
    "proposal",
    "pricing",
    "next steps",
    "contract draft",
    "follow-up",
    "demo recap",
    "renewal",
    "security questionnaire",
    "invoice",
    "intro",
    "quick question",
    "onboarding",
)
EMAIL_PREFIXES = ("", "", "Re: ", "Re: ", "RE: ", "Fwd: ")

# Activity types and their shares; contacts per activity and providers follow the type.
TYPES = ("email_sent", "email_received", "meeting_scheduled", "meeting_held", "call")
TYPE_SHARES = (0.33, 0.38, 0.05, 0.09, 0.15)
CURRENCIES = (("EUR", 0.85), ("USD", 0.10), ("GBP", 0.05))


@dataclass(frozen=True)
class Shape:
    activities: int
    deals: int
    seed: int = 20261207

    @property
    def contacts(self) -> int:
        return max(2_000, self.activities // 40)

    @property
    def companies(self) -> int:
        return max(250, self.contacts // 8)


@dataclass(frozen=True)
class Person:
    email: str
    name: str


@dataclass(frozen=True)
class TeamPlan:
    name: str
    manager: Person
    reps: tuple[Person, ...]


def roster() -> list[TeamPlan]:
    """Who works at Globex: 20 teams of a manager and ten reps (the admin comes with the org)."""
    rng = Random(7)
    used: set[str] = set()
    teams = []
    for t in range(TEAMS):
        people = []
        for _ in range(REPS_PER_TEAM + 1):
            while True:
                first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
                email = f"{_ascii(first)}.{_ascii(last)}@{ORG_DOMAIN}"
                if email not in used:
                    used.add(email)
                    break
            people.append(Person(email, f"{first} {last}"))
        teams.append(TeamPlan(f"Team {t + 1:02d}", people[0], tuple(people[1:])))
    return teams


@dataclass(frozen=True)
class Staff:
    """The ids the database gave the organization, its people and connections."""

    org_id: int
    admin_id: int
    team_ids: tuple[int, ...]
    manager_ids: tuple[int, ...]
    rep_ids: tuple[tuple[int, ...], ...]  # per team
    imap: dict[int, int]  # rep id -> their IMAP connection id
    caldav: dict[int, int]  # rep id -> their CalDAV connection id
    stages: tuple[tuple[str, Decimal], ...]  # the pipeline, in order, with probabilities

    @property
    def reps(self) -> list[int]:
        return [rep for team in self.rep_ids for rep in team]


def _ascii(text: str) -> str:
    """`Tomás` -> `tomas`: the local part of an address."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


@dataclass
class Tenure:
    start: int  # index of the first day worked
    productivity: float
    win_rate: float


class History:
    """The organization's five years, row by row (see the module docstring)."""

    def __init__(self, shape: Shape, staff: Staff) -> None:
        self.shape, self.staff = shape, staff
        self.rng = Random(shape.seed)
        self.zone = ZoneInfo(ORG_TIMEZONE)
        self.days = _days(FIRST_DAY, LAST_DAY)
        reps = staff.reps
        self.team_of = {rep: t for t, team in enumerate(staff.rep_ids) for rep in team}
        self.tenure = {
            rep: Tenure(
                0 if self.rng.random() < 0.75 else self.rng.randrange(len(self.days) * 4 // 5),
                self.rng.lognormvariate(0, 0.3),
                self.rng.uniform(0.2, 0.45),
            )
            for rep in reps
        }
        self._companies()
        self._contacts()

    # -- accounts -------------------------------------------------------------------------

    def _companies(self) -> None:
        names: list[str] = []
        domains: list[str] = []
        combos = len(COMPANY_PREFIXES) * len(COMPANY_ROOTS)
        for i in range(self.shape.companies):
            prefix = COMPANY_PREFIXES[i % len(COMPANY_PREFIXES)]
            root = COMPANY_ROOTS[(i // len(COMPANY_PREFIXES)) % len(COMPANY_ROOTS)]
            suffix = COMPANY_SUFFIXES[(i // combos) % len(COMPANY_SUFFIXES)]
            again = i // (combos * len(COMPANY_SUFFIXES))
            names.append(f"{prefix}{root.capitalize()}{f' {again + 1}' if again else ''}")
            domains.append(f"{prefix.lower()}{root}{again or ''}.{suffix}")
        self.company_names, self.company_domains = names, domains

    def _contacts(self) -> None:
        """One contact in ten is at webmail; the others go round the companies (ids 1..).
        Books: a rep owns the companies c with (c - 1) % reps == their index, and every
        `reps`-th webmail contact; ordered by id, the order they are met in."""
        reps = self.staff.reps
        count, companies = self.shape.contacts, self.shape.companies
        self.contact_company: list[int | None] = [None]  # index = contact id
        self.company_contacts: list[list[int]] = [[] for _ in range(companies + 1)]
        books: list[list[int]] = [[] for _ in reps]
        placed = 0  # contacts at a company so far
        for cid in range(1, count + 1):
            if cid % 10 == 3:
                self.contact_company.append(None)
                books[cid // 10 % len(reps)].append(cid)
            else:
                company = placed % companies + 1
                placed += 1
                self.contact_company.append(company)
                self.company_contacts[company].append(cid)
                books[(company - 1) % len(reps)].append(cid)
        self.book = {rep: books[i] for i, rep in enumerate(reps)}

    def window(self, rep: int, day_index: int) -> Sequence[int]:
        """The contacts a rep is working with around a day: a sixth of their book, sliding
        from its start to its end over the rep's tenure."""
        book = self.book[rep]
        size = max(8, len(book) // 6)
        start_day = self.tenure[rep].start
        progress = (day_index - start_day) / max(1, len(self.days) - 1 - start_day)
        first = int(max(0, len(book) - size) * min(1.0, max(0.0, progress)))
        return book[first : first + size]

    def companies(self) -> Iterator[Row]:
        created = datetime.combine(FIRST_DAY, datetime.min.time(), UTC)
        for i, (name, domain) in enumerate(
            zip(self.company_names, self.company_domains, strict=True)
        ):
            yield (i + 1, self.staff.org_id, domain, name, created)

    def contacts(self) -> Iterator[Row]:
        rng = Random(self.shape.seed + 1)
        taken: set[str] = set()
        first_seen = self._first_seen()
        org = self.staff.org_id
        for cid in range(1, self.shape.contacts + 1):
            company = self.contact_company[cid]
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            domain = self.company_domains[company - 1] if company else rng.choice(WEBMAIL)
            local = f"{_ascii(first)}.{_ascii(last)}"
            email = f"{local}@{domain}"
            if email in taken:
                email = f"{local}{cid}@{domain}"
            taken.add(email)
            title = rng.choice(TITLES) if company else None
            yield (cid, org, email, f"{first} {last}", title, [], company, [], first_seen[cid])

    def _first_seen(self) -> list[datetime]:
        """Roughly when each contact enters its rep's window (created when first met)."""
        seen = [datetime.combine(FIRST_DAY, datetime.min.time(), UTC)] * (self.shape.contacts + 1)
        for rep, book in self.book.items():
            size = max(8, len(book) // 6)
            start = self.tenure[rep].start
            span = len(self.days) - 1 - start
            for position, cid in enumerate(book):
                share = max(0, position - size + 1) / max(1, len(book) - size)
                day = self.days[min(len(self.days) - 1, start + int(share * span))]
                seen[cid] = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=14)
        return seen

    # -- activities -----------------------------------------------------------------------

    def _allocation(self) -> list[list[tuple[int, int]]]:
        """How many activities each rep has on each day: exactly `shape.activities` in all,
        split in proportion to productivity × weekday × season × growth × daily noise
        (largest remainders), nothing before a rep's start or on their days off."""
        rng = Random(self.shape.seed + 2)
        cells: list[tuple[int, int]] = []
        weights: list[float] = []
        last = len(self.days) - 1
        for index, day in enumerate(self.days):
            weekday = (1.0, 1.0, 1.0, 1.0, 0.9, 0.04, 0.02)[day.weekday()]
            season = {12: 0.7, 8: 0.85, 7: 0.9}.get(day.month, 1.0)
            growth = 0.7 + 0.6 * index / last
            for rep, tenure in self.tenure.items():
                if index < tenure.start or rng.random() < 0.07:  # not there yet, or a day off
                    continue
                noise = rng.lognormvariate(0, 0.4)
                cells.append((index, rep))
                weights.append(tenure.productivity * weekday * season * growth * noise)
        scale = self.shape.activities / sum(weights)
        shares = [w * scale for w in weights]
        counts = [int(s) for s in shares]
        missing = self.shape.activities - sum(counts)
        by_remainder = sorted(range(len(shares)), key=lambda i: counts[i] - shares[i])
        for i in by_remainder[:missing]:
            counts[i] += 1
        per_day: list[list[tuple[int, int]]] = [[] for _ in self.days]
        for (index, rep), n in zip(cells, counts, strict=True):
            if n:
                per_day[index].append((rep, n))
        return per_day

    def activity_days(self) -> Iterator[Rows]:
        """One local day at a time: its activities (ids in time order), their contact links,
        and the rollup rows of that day."""
        rng = Random(self.shape.seed + 3)
        org, seed = self.staff.org_id, self.shape.seed
        cumulative = list(accumulate(TYPE_SHARES))
        next_id = 1
        for index, (day, reps) in enumerate(zip(self.days, self._allocation(), strict=True)):
            noon = datetime(day.year, day.month, day.day, 12, tzinfo=self.zone)
            offset = noon.utcoffset() or timedelta()
            midnight = datetime(day.year, day.month, day.day, tzinfo=UTC) - offset
            drafts: list[tuple[int, int, str, tuple[int, ...]]] = []
            for rep, n in reps:
                pool = self._pool(rng, rep, index, n)
                for _ in range(n):
                    kind = TYPES[min(bisect_right(cumulative, rng.random()), len(TYPES) - 1)]
                    drafts.append(
                        (self._second(rng, kind), rep, kind, self._linked(rng, kind, pool))
                    )
            drafts.sort(key=lambda d: (d[0], d[1]))
            activities: list[Row] = []
            links: list[Row] = []
            per_type: Counter[tuple[int, str]] = Counter()
            per_contact: dict[tuple[int, int], list[Any]] = {}  # -> [links, first, last]
            for second, rep, kind, contacts in drafts:
                moment = midnight + timedelta(seconds=second)
                provider, connection = self._source(rng, rep, kind)
                key = hashlib.sha256(f"{seed}/{next_id}".encode()).hexdigest()
                subject = self._subject(rng, kind, contacts)
                activities.append(
                    (
                        *(next_id, org, rep, kind, moment, key, None),
                        *(subject, connection, provider, moment),
                    )
                )
                per_type[(rep, kind)] += 1
                for contact in contacts:
                    links.append((next_id, contact))
                    seen = per_contact.setdefault((rep, contact), [0, moment, moment])
                    seen[0] += 1
                    seen[2] = moment  # drafts are in time order
                next_id += 1
            yield {
                "activities": activities,
                "activity_contacts": links,
                "activity_days": [(user, day, kind, n) for (user, kind), n in per_type.items()],
                "contact_days": [
                    (user, day, contact, n, first, last)
                    for (user, contact), (n, first, last) in per_contact.items()
                ],
            }

    def _pool(self, rng: Random, rep: int, index: int, n: int) -> list[int]:
        """The contacts a rep deals with on a day: a few from their window, now and then one
        of a teammate's accounts."""
        window = self.window(rep, index)
        pool = rng.sample(window, min(len(window), 2 + n // 3))
        if rng.random() < 0.3:
            team = self.staff.rep_ids[self.team_of[rep]]
            mate = team[rng.randrange(len(team))]
            if self.tenure[mate].start <= index:
                pool.append(rng.choice(self.window(mate, index)))
        return pool

    @staticmethod
    def _second(rng: Random, kind: str) -> int:
        """Seconds after local midnight: office hours, some evening e-mail."""
        if kind == "meeting_held":
            return (9 * 2 + rng.randrange(17)) * 1800  # on the hour or half hour, 9:00–17:00
        if kind.startswith("email") and rng.random() < 0.08:
            return rng.randrange(19 * 3600, 23 * 3600)
        return rng.randrange(7 * 3600 + 1800, 18 * 3600)

    @staticmethod
    def _linked(rng: Random, kind: str, pool: list[int]) -> tuple[int, ...]:
        r = rng.random()
        if kind == "email_sent":
            n = 1 + (r < 0.25) + (r < 0.08)
        elif kind == "email_received":
            n = 1
        elif kind == "call":
            n = 0 if r < 0.08 else 1
        else:
            n = 1 + (r < 0.4) + (r < 0.15)
        if n == 1 or len(pool) == 1:
            return (rng.choice(pool),) if n else ()
        return tuple(sorted(set(rng.sample(pool, min(n, len(pool))))))

    def _source(self, rng: Random, rep: int, kind: str) -> tuple[str, int | None]:
        if kind.startswith("email"):
            return "imap", self.staff.imap[rep]
        if kind == "call" and rng.random() < 0.3:
            return "twilio", None
        return "caldav", self.staff.caldav[rep]

    def _subject(self, rng: Random, kind: str, contacts: tuple[int, ...]) -> str | None:
        company = self.contact_company[contacts[0]] if contacts else None
        account = self.company_names[company - 1] if company else "you"
        if kind.startswith("email"):
            return f"{rng.choice(EMAIL_PREFIXES)}{rng.choice(EMAIL_TOPICS)} — {account}"
        if kind == "call":
            return f"Call with {account}" if rng.random() < 0.5 else None
        return f"{account} / Globex: {rng.choice(EMAIL_TOPICS)}"

    # -- deals ----------------------------------------------------------------------------

    def exchange_rates(self) -> list[Row]:
        """Monthly USD and GBP rates in EUR, a random walk, from the month before history."""
        rng = Random(self.shape.seed + 4)
        rows: list[Row] = []
        month = date(FIRST_DAY.year, FIRST_DAY.month, 1) - timedelta(days=1)
        month = month.replace(day=1)
        levels = {"USD": 0.92, "GBP": 1.16}
        while month <= LAST_DAY:
            for currency in levels:
                levels[currency] *= math.exp(rng.gauss(0, 0.015))
                rate = Decimal(f"{levels[currency]:.6f}")
                rows.append((len(rows) + 1, self.staff.org_id, currency, rate, month))
            month = (month + timedelta(days=32)).replace(day=1)
        return rows

    def deals(self) -> Iterator[Rows]:
        """Deals in batches of 10,000, ids in order of creation, with their contact links."""
        rng = Random(self.shape.seed + 5)
        book = RateBook.of(ORG_CURRENCY, [(c, d, r) for _, _, c, r, d in self.exchange_rates()])
        reps = list(self.tenure)
        cumulative = list(accumulate(self.tenure[r].productivity for r in reps))
        currencies = [c for c, _ in CURRENCIES]
        currency_weights = list(accumulate(share for _, share in CURRENCIES))
        last = len(self.days) - 1
        end = datetime.combine(LAST_DAY, datetime.max.time(), UTC)
        drafts: list[tuple[datetime, int, int]] = []
        for _ in range(self.shape.deals):
            rep = reps[bisect_right(cumulative, rng.random() * cumulative[-1])]
            index = rng.randrange(self.tenure[rep].start, last + 1)
            created = datetime.combine(self.days[index], datetime.min.time(), UTC) + timedelta(
                seconds=rng.randrange(13 * 3600, 23 * 3600)
            )
            drafts.append((created, rep, index))
        drafts.sort()
        org = self.staff.org_id
        stages = self.staff.stages
        batch: Rows = {"deals": [], "deal_contacts": []}
        for number, (created, rep, index) in enumerate(drafts, start=1):
            window = self.window(rep, index)
            anchor = rng.choice(window)
            company = self.contact_company[anchor]
            if company is not None:
                colleagues = self.company_contacts[company]
                contacts = sorted(
                    set(rng.sample(colleagues, min(len(colleagues), rng.randint(1, 2))))
                )
            else:
                contacts = [anchor]
            value = Decimal(f"{min(2e6, max(500.0, rng.lognormvariate(9.4, 0.9))):.2f}")
            cost = (
                (value * Decimal(f"{rng.uniform(0.45, 0.8):.4f}")).quantize(Decimal("0.01"))
                if rng.random() < 0.8
                else None
            )
            currency = currencies[bisect_right(currency_weights, rng.random() * 0.999999)]
            cycle = 0 if rng.random() < 0.03 else max(1, int(rng.lognormvariate(3.5, 0.8)))
            planned = created + timedelta(days=cycle, seconds=rng.randrange(-3600, 3600))
            stale = rng.random() < 0.04
            won = rng.random() < self.tenure[rep].win_rate
            status, closed, stage, expected = "open", None, None, None
            if planned <= end and not stale:
                status, closed = ("won" if won else "lost"), max(created, planned)
                stage = stages[-1][0] if won else rng.choice(stages)[0]
            else:
                progress = (end - created) / max(planned - created, timedelta(hours=1))
                stage = stages[min(len(stages) - 1, int(progress * len(stages)))][0]
                if rng.random() < 0.9:
                    expected = planned.astimezone(self.zone).date()
            value_base = cost_base = None
            if closed is not None:
                on = closed.astimezone(self.zone).date()
                value_base = book.convert(value, currency, on)
                cost_base = None if cost is None else book.convert(cost, currency, on)
            name = (
                f"{self.company_names[company - 1] if company else 'Private client'} "
                f"— {rng.choice(PRODUCTS)}"
            )
            external = f"SF-{number:08d}" if rng.random() < 0.4 else None
            batch["deals"].append(
                (
                    *(number, org, rep, name, company, value, cost, currency, value_base),
                    *(cost_base, stage, status, expected, created, closed, external),
                    closed or created,
                )
            )
            batch["deal_contacts"].extend((number, contact) for contact in contacts)
            if len(batch["deals"]) >= 10_000:
                yield batch
                batch = {"deals": [], "deal_contacts": []}
        if batch["deals"]:
            yield batch
