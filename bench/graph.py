"""Benchmark a Microsoft 365 mailbox backfill through Graph delta, end to end.

    .venv/bin/python bench/graph.py [--messages 20000] [--latency 0.25] [--page-size 250]
        [--mail-permission Mail.Read|Mail.ReadBasic] [--no-headers-in-pages]

The local Graph emulator (tests/emulators/microsoft.py, over TLS) runs in its own process
with `--messages` messages (80% Inbox, 20% Sent Items; 300 external domains, some internal
mail, no-reply senders, and 8% newsletters and notifications told automated only by their
List-Unsubscribe / List-Id / Precedence / Auto-Submitted headers; every received message
carries Exchange-like transport headers of about 2 KB) and answers every Graph request after
`--latency` seconds (a delta page of a few hundred messages with $select takes 0.2–0.5 s on
Exchange Online; a JSON batch is answered once, its requests running in parallel).
`--mail-permission` is the instance's consent (Mail.Read, the default, reads the headers;
Mail.ReadBasic cannot). `--no-headers-in-pages` puts received mail there without transport
headers, so that every received message's headers are asked for in JSON batches: the cost
if Graph left `internetMessageHeaders` out of the delta pages. Tally connects
through the real consent flow (msal, PKCE), then one worker syncs the connection through the
real runner into a fresh SQLite database (the embedded mode): delta pages -> parse ->
ingest, one transaction per page with its cursor and the token cache.

Printed: messages per second (wall), Graph requests per 1,000 messages (pages, and JSON
batches of header reads when the pages lack them: at most 60 in all), the requests inside
those batches, the share of Graph's per-mailbox throttling budget used (10,000 requests per
10 minutes, a batch's requests counted one by one; 4 concurrent requests), activities and
the automated mail filtered, and Tally's CPU per message (this process's CPU time, every
thread: msal, httpx2, parsing, inference, SQLite; the emulator's CPU is in the other
process). See bench/README.md, "Graph backfill".
"""

from __future__ import annotations

import argparse
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection as Pipe

from emulated import (
    EmulatorProcess,
    acme,
    drain,
    open_database,
    say,
    say_cpu,
    say_status,
    serve,
    tally_workdir,
)

EMAIL = "ana@acme.example"
REDIRECT = "https://tally.bench/api/v1/connections/oauth/microsoft/callback"


NEWSLETTER_HEADERS = [
    {"List-Unsubscribe": "<https://news.example/u>", "List-Id": "<news.client.example>"},
    {"List-Unsubscribe": "<mailto:leave@lists.example>"},
    {"Precedence": "bulk"},
    {"Auto-Submitted": "auto-generated"},
]


def emulator_process(
    pipe: Pipe, messages: int, latency: float, page_max: int, transport: bool
) -> None:
    from tests.emulators.microsoft import MicrosoftEmulator

    rng = random.Random(7)
    ms = MicrosoftEmulator(max_page_size=page_max).start()
    ms.add_user(EMAIL, aliases=["a.silva@acme.example"])
    now = datetime.now(UTC)
    domains = [f"client{d}.example" for d in range(300)]
    for i in range(messages):
        when = now - timedelta(minutes=25 * i + rng.randint(0, 20))
        if i % 5 == 4:
            to = [f"p{rng.randint(0, 50)}@{rng.choice(domains)}"]
            ms.deliver(EMAIL, "sentitems", sender=EMAIL, to=to, subject=f"Re: offer {i}", when=when)
            continue
        roll = rng.random()
        headers: dict[str, str] = {}
        if roll < 0.08:
            sender = f"colleague{rng.randint(0, 9)}@acme.example"
        elif roll < 0.15:
            sender = f"noreply@{rng.choice(domains)}"
        elif roll < 0.25:  # a person-like sender: only the headers say it is automated
            sender = f"News <news@{rng.choice(domains)}>"
            headers = rng.choice(NEWSLETTER_HEADERS)
        else:
            sender = f"Person {i} <p{rng.randint(0, 50)}@{rng.choice(domains)}>"
        ms.deliver(
            EMAIL,
            sender=sender,
            to=[EMAIL],
            cc=[],
            subject=f"Question {i}",
            when=when,
            headers=headers,
            transport=transport,
        )
    ms.latency = latency
    hello = {
        "authority": ms.authority,
        "graph": ms.graph,
        "ca": str(ms.ca_path),
        "client_id": ms.client_id,
        "client_secret": ms.client_secret,
    }

    def stats() -> dict[str, int]:
        user = ms.user(EMAIL)
        return {
            "requests": ms.graph_requests,
            "batches": ms.calls["batch"],
            "inner": ms.inner_requests,
            "max_in_flight": user.max_in_flight,
            "refused": user.refused,
        }

    serve(pipe, hello, stats, ms.stop, consent=ms.consent)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--latency", type=float, default=0.25)
    parser.add_argument("--page-size", type=int, default=250)
    parser.add_argument(
        "--mail-permission", choices=("Mail.Read", "Mail.ReadBasic"), default="Mail.Read"
    )
    parser.add_argument("--no-headers-in-pages", action="store_true")
    options = parser.parse_args()

    workdir = tally_workdir("tally-graph-bench-")
    graph = EmulatorProcess(
        emulator_process,
        options.messages,
        options.latency,
        max(options.page_size, 1000),
        not options.no_headers_in_pages,
    )
    say(f"seeding {options.messages:,} messages in the emulator…", flush=True)
    emulator = graph.hello()

    from httpx2 import URL
    from pydantic import SecretStr

    from app.config import settings
    from app.connections import oauth
    from app.db import session_scope
    from app.models import Role
    from app.sync import microsoft as instance
    from app.users import schemas, service
    from connectors.microsoft import MicrosoftApp, MicrosoftOAuth

    settings.microsoft_client_id = emulator["client_id"]
    settings.microsoft_client_secret = SecretStr(emulator["client_secret"])
    settings.microsoft_authority = emulator["authority"]
    settings.microsoft_graph_url = emulator["graph"]
    settings.microsoft_ca_bundle = emulator["ca"]
    settings.microsoft_page_size = options.page_size
    settings.backfill_days = 3650
    open_database(workdir)

    app = MicrosoftApp(
        emulator["client_id"],
        emulator["client_secret"],
        emulator["authority"],
        emulator["graph"],
        emulator["ca"],
        mail_permission=options.mail_permission,
    )
    configured = instance.microsoft_app  # the instance's setting, until app/config.py has it

    def consented() -> MicrosoftApp:
        base = configured()
        assert base is not None  # the settings above name the emulator's app
        return replace(base, mail_permission=options.mail_permission)

    instance.microsoft_app = consented
    client = MicrosoftOAuth(app)
    started = client.start(REDIRECT, login_hint=EMAIL)
    back = URL(graph.ask("consent", started.authorization_url))
    consent = client.finish(started.flow, dict(back.params), REDIRECT)
    with session_scope() as session:
        _, admin = acme(session)
        user, _ = service.create_user(
            session,
            admin,
            schemas.UserCreate(
                email=EMAIL, name="Ana", role=Role.rep, aliases=list(consent.aliases)
            ),
        )
        oauth.connect(
            session,
            user,
            "microsoft",
            account=consent.account,
            config=dict(consent.config),
            secret=dict(consent.secret),
        )

    run = drain(graph)
    seen, wall = run.connection["seen"], run.timing.wall
    requests, batches, inner = run.spent("requests"), run.spent("batches"), run.spent("inner")
    say_status(run)
    say(f"mail permission        {options.mail_permission}")
    say(
        f"messages seen          {seen:,} ({run.connection['activities']:,} activities, "
        f"{run.connection['filtered']:,} filtered)"
    )
    say(f"wall                   {wall:.1f} s (latency {options.latency:.2f} s per request)")
    say(f"messages per second    {seen / wall:,.0f}")
    say(f"Graph requests         {requests} = {1000 * requests / seen:.2f} per 1,000 messages")
    say(
        f"header reads           {batches} JSON batches ({1000 * batches / seen:.2f} per 1,000 "
        f"messages) holding {inner:,} requests"
    )
    budget = requests - batches + inner
    per_ten_minutes = budget / wall * 600
    say(
        f"throttling budget      {budget / 10_000:.2%} of 10,000 requests / 10 min for this "
        f"backfill; at this pace {per_ten_minutes:,.0f} requests / 10 min = "
        f"{per_ten_minutes / 10_000:.1%} of the rate"
    )
    say(
        f"concurrency            peak {run.after['max_in_flight']} of 4 in flight, "
        f"{run.after['refused']} refused"
    )
    say_cpu(run)


if __name__ == "__main__":
    main()
