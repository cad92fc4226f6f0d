"""Benchmark chat ingest (semantics §11) through POST /api/v1/activities/ingest/chat.

    .venv/bin/python bench/chat.py                        # SQLite and PostgreSQL, ~3 min
    .venv/bin/python bench/chat.py --backend sqlite --channels 500 --live 500
    .venv/bin/python bench/chat.py --backend postgresql --history 50000 --probes 40
    .venv/bin/python bench/chat.py --backend sqlite --profile /tmp/chat

Signed requests into `app.main.create_app()` as an ASGI server hands them over, on one
fresh database per backend: batches of 1,000 and of 50 messages, live single messages, late
ones of four kinds, and one channel with a long history. The phases, the generated channels
and the columns printed are described in bench/README.md, "Chat ingest".
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import cProfile
import hashlib
import hmac
import json
import os
import pstats
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

WORKDIR = Path(tempfile.mkdtemp(prefix="tally-chat-bench-"))
# settings are read when app is first imported: keys of our own, not the user's data dir
os.environ.setdefault("TALLY_DATA_DIR", str(WORKDIR))
os.environ.setdefault("TALLY_SECRET_KEYS", Fernet.generate_key().decode())
os.environ.setdefault("TALLY_LOG_LEVEL", "WARNING")

import anyio.to_thread  # noqa: E402
from ingest import ServerClock, fresh_database, say  # noqa: E402
from sqlalchemy import event, select, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from app.chat import service  # noqa: E402
from app.chat.conversations import Sent  # noqa: E402
from app.db import Database, session_scope, set_database  # noqa: E402
from app.main import create_app  # noqa: E402
from app.models import Role, User  # noqa: E402
from app.runtime import settle_heap  # noqa: E402
from app.users import schemas  # noqa: E402
from app.users.service import create_org, create_user, new_webhook_secret  # noqa: E402

INGEST = "/api/v1/activities/ingest/chat"
GAP = timedelta(minutes=240)  # the default chat_gap_minutes
REPS = 20
EPOCH = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
CHECKPOINTS = (1_000, 5_000, 20_000)
LATE_KINDS = ("in order", "inside a run", "moves a start", "joins two runs")
Message = dict[str, Any]


@dataclass
class Channel:
    name: str
    reps: tuple[str, ...]
    guests: tuple[str, ...]
    rng: random.Random
    at: datetime  # the next burst's first message
    busy: bool = False  # pauses of at most a day
    count: int = 0
    pending: list[Message] = field(default_factory=list)
    times: list[datetime] = field(default_factory=list)  # every message posted, sorted

    def message(self, at: datetime, sender: str | None) -> Message:
        self.count += 1
        return {
            "id": f"{self.name}.{self.count}",
            "sender": sender,
            "sent_at": at.isoformat(),
            "text_length": self.rng.randint(2, 400),
        }

    def burst(self) -> list[Message]:
        rng, out = self.rng, []
        for i in range(rng.randint(2, 12)):
            if i:
                self.at += timedelta(minutes=rng.uniform(1, 25))
            speakers = self.reps if rng.random() < 0.5 else self.guests
            out.append(self.message(self.at, rng.choice(speakers) if rng.random() > 0.03 else None))
        # a quarter of the pauses can be bridged by one late message (between 1 and 2 gaps)
        joinable = rng.random() < 0.25
        longest = 24 * 60 if self.busy else 72 * 60
        minutes = rng.uniform(245, 470) if joinable else rng.uniform(16 * 60, longest)
        self.at += timedelta(minutes=minutes)
        return out

    def take(self, n: int) -> list[Message]:
        while len(self.pending) < n:
            self.pending += self.burst()
        out, self.pending = self.pending[:n], self.pending[n:]
        return out


def rep(number: int) -> str:
    return f"rep{number}@acme.example"


def channels(seed: int, count: int, prefix: str, *, busy: bool = False) -> list[Channel]:
    made = []
    for c in range(count):
        rng = random.Random(f"{seed}/{prefix}/{c}")
        domain = f"client{rng.randrange(1500)}.example" if rng.random() > 0.1 else "gmail.com"
        guests = tuple(f"{prefix}{c}{g}@{domain}" for g in "ab"[: rng.randint(1, 2)])
        reps = tuple(sorted({rep(rng.randrange(REPS)) for _ in range(rng.randint(1, 2))}))
        start = EPOCH + timedelta(minutes=rng.uniform(0, 30 * 24 * 60))
        made.append(Channel(f"{prefix}{c}", reps, guests, rng, start, busy))
    return made


def runs_of(times: list[datetime]) -> list[tuple[datetime, datetime]]:
    found: list[tuple[datetime, datetime]] = []
    for moment in times:
        if found and moment - found[-1][1] < GAP:
            found[-1] = (found[-1][0], moment)
        else:
            found.append((moment, moment))
    return found


def late_moment(channel: Channel, kind: str) -> datetime | None:
    """Where a late message of `kind` goes: the past run nearest the middle of the history
    that allows it (None if none does)."""
    if kind == "in order":
        return channel.times[-1] + timedelta(minutes=3)
    runs = runs_of(channel.times)
    middle = len(runs) // 2
    for i in sorted(range(1, len(runs) - 1), key=lambda i: abs(i - middle)):
        (start, end), pause = runs[i], runs[i][0] - runs[i - 1][1]
        if kind == "inside a run" and end - start > timedelta(minutes=2):
            return start + (end - start) / 2
        if kind == "moves a start" and pause >= GAP + timedelta(minutes=30):
            return start - timedelta(minutes=10)
        if kind == "joins two runs" and pause < 2 * GAP - timedelta(minutes=2):
            return runs[i - 1][1] + pause / 2
    return None


@dataclass
class Phase:
    name: str
    walls: list[float] = field(default_factory=list)
    messages: int = 0
    inside: float = 0.0  # seconds in service.ingest
    statements: int = 0
    loaded: int = 0  # messages read back by the re-derive window
    cpu: float = 0.0
    server: float = 0.0
    outcome: Counter[str] = field(default_factory=Counter)


class Poster:
    """Signed requests through the app, each timed (wall, inside ingest(), CPU, statements).
    The app gets them as an ASGI server hands them over (one event loop in this thread, sync
    code in the app's threadpool); TestClient was dropped: it added ~3 ms a request of its own.
    Under --profile the threadpool runs inline, so that cProfile sees the whole request."""

    def __init__(self, database: Database, org_id: int, secret: str, profile: bool) -> None:
        self.app, self.loop = create_app(), asyncio.new_event_loop()
        self.query, self.secret = f"org={org_id}".encode(), secret.encode()
        self.clock = ServerClock(database)
        self.inside, self.statements, self.loaded = 0.0, 0, 0
        self.profile = cProfile.Profile() if profile else None
        if profile:
            anyio.to_thread.run_sync = _inline  # type: ignore[assignment]
        event.listen(database.engine, "before_cursor_execute", self._statement)
        ingest, load = service.ingest, service._load

        def timed_ingest(*args: Any, **kwargs: Any) -> service.IngestResult:
            t0 = time.perf_counter()
            try:
                return ingest(*args, **kwargs)
            finally:
                self.inside += time.perf_counter() - t0

        def counted_load(
            session: Session, channel_pk: int, low: datetime | None, high: datetime | None
        ) -> list[Sent]:
            found = load(session, channel_pk, low, high)
            self.loaded += len(found)
            return found

        service.ingest = timed_ingest
        service._load = counted_load

    def _statement(self, *_: Any) -> None:
        self.statements += 1

    def _send(self, body: bytes, headers: list[tuple[bytes, bytes]]) -> tuple[int, bytes]:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": INGEST,
            "raw_path": INGEST.encode(),
            "query_string": self.query,
            "root_path": "",
            "headers": [*headers, (b"host", b"127.0.0.1"), (b"content-length", b"%d" % len(body))],
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
        }
        answer: list[bytes] = []
        status, pending = [0], [{"type": "http.request", "body": body, "more_body": False}]

        async def receive() -> dict[str, Any]:
            return pending.pop() if pending else {"type": "http.disconnect"}

        async def send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            elif message["type"] == "http.response.body":
                answer.append(message.get("body", b""))

        self.loop.run_until_complete(self.app(scope, receive, send))
        return status[0], b"".join(answer)

    def post(self, phase: Phase, channel: Channel, messages: list[Message]) -> None:
        participants = [*channel.reps, *channel.guests]
        body = json.dumps(
            {"source": "livechat", "channel_id": channel.name, "messages": messages}
            | {"participants": participants}
        ).encode()
        stamp = str(int(time.time())).encode()
        mac = hmac.new(self.secret, stamp + b"." + body, hashlib.sha256).hexdigest()
        headers = [(b"x-tally-timestamp", stamp), (b"x-tally-signature", b"sha256=" + mac.encode())]
        headers.append((b"content-type", b"application/json"))
        inside, statements, loaded = self.inside, self.statements, self.loaded
        s0, c0, t0 = self.clock(), time.process_time(), time.perf_counter()
        if self.profile:
            self.profile.enable()
        status, answer = self._send(body, headers)
        if self.profile:
            self.profile.disable()
        t1, c1, s1 = time.perf_counter(), time.process_time(), self.clock()
        if status != 200:
            sys.exit(f"{phase.name}: {status} {answer.decode()}")
        phase.walls.append(t1 - t0)
        phase.cpu, phase.server = phase.cpu + c1 - c0, phase.server + s1 - s0
        phase.inside += self.inside - inside
        phase.statements += self.statements - statements
        phase.loaded += self.loaded - loaded
        phase.messages += len(messages)
        phase.outcome.update({k: v for k, v in json.loads(answer).items() if k != "duplicates"})
        for m in messages:
            bisect.insort(channel.times, datetime.fromisoformat(m["sent_at"]))


async def _inline(function: Callable[..., Any], *args: Any, **_: Any) -> Any:
    return function(*args)


def setup(database: Database) -> tuple[int, str]:
    set_database(database)
    with session_scope() as session:
        org, _ = create_org(
            session,
            schemas.OrgCreate(name="Acme", domains=["acme.example"], timezone="Europe/Brussels"),
        )
        admin = session.scalars(select(User).where(User.org_id == org.id)).one()
        for r in range(REPS):
            user = schemas.UserCreate(email=rep(r), name=f"Rep {r}", role=Role.rep)
            create_user(session, admin, user)
        return org.id, new_webhook_secret(session, admin)


def analyze(database: Database, args: argparse.Namespace) -> None:
    """What autovacuum would have done by then (this server runs with it off)."""
    if args.analyze == "auto" and not database.is_sqlite:
        with database.engine.begin() as connection:
            connection.execute(text("ANALYZE"))


def late_phases(poster: Poster, args: argparse.Namespace, pool: list[Channel]) -> list[Phase]:
    phases = {kind: Phase(f"late: {kind}") for kind in LATE_KINDS}
    picked = random.Random(args.seed).sample(pool, min(len(pool), 4 * args.late))
    for number, channel in enumerate(picked):
        kind = LATE_KINDS[number % 4]
        moment = late_moment(channel, kind)
        if moment is not None:
            poster.post(phases[kind], channel, [channel.message(moment, channel.guests[0])])
    return list(phases.values())


def long_history(poster: Poster, database: Database, args: argparse.Namespace) -> list[Phase]:
    [channel] = channels(args.seed, 1, "long", busy=True)
    build = Phase("long channel built, 1000/request")
    out = [build]
    for size in sorted({c for c in CHECKPOINTS if c < args.history} | {args.history}):
        while len(channel.times) < size:
            poster.post(build, channel, channel.take(min(1000, size - len(channel.times))))
        analyze(database, args)
        say(f"  long channel at {len(channel.times):,} messages", err=True)
        in_order, late = Phase(f"{size:,}: in order"), Phase(f"{size:,}: late")
        for probe in range(args.probes):
            poster.post(in_order, channel, channel.take(1))
            moment = late_moment(channel, ("joins two runs", "moves a start")[probe % 2])
            if moment is not None:
                poster.post(late, channel, [channel.message(moment, channel.guests[0])])
        out += [in_order, late]
    return out


def bench(backend: str, args: argparse.Namespace) -> list[list[Phase]]:
    with fresh_database(backend, WORKDIR, "chat") as database:
        org_id, secret = setup(database)
        settle_heap()
        poster = Poster(database, org_id, secret, bool(args.profile))
        [warm] = channels(args.seed, 1, "warm")
        for _ in range(5):  # first requests pay for lazy imports and the pool
            poster.post(Phase("warm-up"), warm, warm.take(10))
        say(f"[{backend}] batch 1000", err=True)
        big, pool = (
            channels(args.seed, args.big, "big"),
            channels(args.seed, args.channels, "c"),
        )
        batch1000, batch50 = Phase("batch, 1000/request"), Phase("batch, 50/request")
        for channel in big:
            poster.post(batch1000, channel, channel.take(1000))
        say(f"[{backend}] batch 50", err=True)
        for start in range(0, args.per_channel, 50):
            for channel in pool:
                poster.post(batch50, channel, channel.take(min(50, args.per_channel - start)))
        analyze(database, args)
        say(f"[{backend}] live", err=True)
        upcoming = sorted(
            ((m["sent_at"], i, m) for i, c in enumerate(pool) for m in c.take(12)),
            key=lambda item: datetime.fromisoformat(item[0]),
        )
        live = Phase("live, 1/request")
        for _, i, message in upcoming[: args.live]:
            poster.post(live, pool[i], [message])
        say(f"[{backend}] late", err=True)
        late = late_phases(poster, args, pool)
        say(f"[{backend}] long history", err=True)
        history = long_history(poster, database, args)
        if poster.profile:
            report_profile(poster.profile, f"{args.profile}.{backend}.prof")
        set_database(None)
    return [[batch1000, batch50, live], late, history]


def report_profile(profile: cProfile.Profile, path: str) -> None:
    profile.dump_stats(path)
    say(f"profile of every request: {path}", err=True)
    stats = pstats.Stats(path, stream=sys.stderr)
    stats.sort_stats("tottime").print_stats(25)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def row(backend: str, p: Phase) -> None:
    n, walls, o = len(p.walls), sorted(p.walls), p.outcome
    if n:
        say(
            f"| {backend} | {p.name} | {n:,} | {p.messages:,} | {p.messages / sum(walls):,.0f} "
            f"| {ms(sum(walls) / n)} | {ms(walls[n // 2])} | {ms(walls[int(n * 0.95)])} "
            f"| {ms(p.inside / n)} | {p.statements / n:.1f} | {p.loaded / n:,.0f} "
            f"| {ms(p.cpu / n)} | {ms(p.server / n) if p.server else '—'} "
            f"| {o['activities_added']:,} / {o['activities_removed']:,} "
            f"/ {o['activities_changed']:,} |"
        )


HEADER = (
    "| backend | phase | requests | messages | messages/s | ms/request mean | p50 | p95 "
    "| in ingest() ms | statements/request | messages read/request | client CPU ms "
    "| server CPU ms | added / removed / changed |\n"
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--big", type=int, default=20, help="channels of 1,000 messages")
    parser.add_argument("--channels", type=int, default=2000)
    parser.add_argument("--per-channel", type=int, default=50)
    parser.add_argument("--live", type=int, default=2000, help="single-message requests")
    parser.add_argument("--late", type=int, default=50, help="late messages of each kind")
    parser.add_argument("--history", type=int, default=20_000, help="the long channel")
    parser.add_argument("--probes", type=int, default=20, help="per checkpoint and kind")
    parser.add_argument("--seed", type=int, default=20261207)
    parser.add_argument("--analyze", choices=("auto", "off"), default="auto")
    parser.add_argument("--profile", metavar="PATH", help="cProfile every request")
    args = parser.parse_args(argv)
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    load = os.getloadavg()[0]
    started = time.perf_counter()
    try:
        results = {backend: bench(backend, args) for backend in backends}
    finally:
        shutil.rmtree(WORKDIR, ignore_errors=True)
    say(
        f"\n{args.channels:,} channels × {args.per_channel}, {args.big} × 1,000, live "
        f"{args.live:,}, late {args.late} × 4, history {args.history:,}, seed {args.seed}; "
        f"{os.cpu_count()} CPUs, load {load:.1f} before, {os.getloadavg()[0]:.1f} after, "
        f"{time.perf_counter() - started:.0f} s{' (PROFILED: times inflated)' * bool(args.profile)}"
    )
    for title, index in (("Steady ingest", 0), ("Late messages", 1), ("Long history", 2)):
        say(f"\n### {title}\n\n{HEADER}")
        for backend, found in results.items():
            for phase in found[index]:
                row(backend, phase)
    return 0


if __name__ == "__main__":
    sys.exit(main())
