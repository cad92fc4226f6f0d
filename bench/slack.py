"""Benchmark a Slack workspace backfill through the real slack_sdk, runner and chat ingest.

    .venv/bin/python bench/slack.py [--channels 500] [--per-channel 100] [--latency 0.15]
        [--scale 20] [--threads 4] [--replies 5]

The local Slack emulator (tests/emulators/slack.py) runs in its own process with
`--channels` Slack Connect channels of `--per-channel` messages each (`--threads` of them
thread parents with `--replies` replies; two of our 50 reps and two people of the customer
speak in each channel, in a burst of 10 messages a day; every customer person distinct:
1,000 external people for 500 channels) and answers every request after `--latency`
seconds (Slack's Web API answers in about 0.1-0.3 s). It enforces Slack's tiers per
method (Tier 2: 20, Tier 3: 50, Tier 4: 100 requests a minute) with 429 + Retry-After.
Time is scaled: a Slack minute lasts 60/`--scale` seconds on both sides (the connector
paces to the same window), since at Slack's real pace the run takes most of an hour; the
figures at Slack's real pace are projected from the requests made.

Tally's admin (rep0, the installing Slack user) installs the app through the real consent
(oauth.v2.access), then one worker syncs the connection through the real runner into a
fresh SQLite database (the embedded mode): pages of one channel -> app.chat.service.ingest,
one transaction per page with its cursor.

Printed: messages per second (wall, scaled; and projected at Slack's real limits), requests
per 1,000 messages by method, the share of each method's rate limit used, 429s met, and
Tally's CPU per message (this process: slack_sdk, the connector, §11, SQLite). See
bench/README.md, "Slack backfill".
"""

from __future__ import annotations

import argparse
import time
from multiprocessing.connection import Connection as Pipe
from typing import Any

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

EMAIL = "rep0@acme.example"
REDIRECT = "https://tally.bench/api/v1/connections/oauth/slack/callback"
REPS = 50
PER_MINUTE = {"conversations.list": 20, "conversations.history": 50}
PER_MINUTE |= {"conversations.replies": 50, "users.info": 100, "auth.test": 100}


def emulator_process(pipe: Pipe, options: dict[str, Any]) -> None:
    from tests.emulators.slack import SlackEmulator

    slack = SlackEmulator(window_seconds=60.0 / options["scale"]).start()
    for rep in range(REPS):
        slack.add_user(f"UREP{rep}", f"rep{rep}@acme.example")
    now = time.time() - 86400
    for c in range(options["channels"]):
        reps = [f"UREP{c % REPS}", f"UREP{(c + 7) % REPS}"]
        guests = [f"UX{c}A", f"UX{c}B"]
        for guest in guests:
            slack.add_user(guest, f"{guest.lower()}@client{c}.example", team_id=f"TC{c}")
        slack.add_channel(f"C{c:04}", "public", ["UBOT", *reps, *guests], name=f"c{c}", ext=True)
        speakers = [*reps, *guests]
        top = options["per_channel"] - options["threads"] * options["replies"]
        start = now - 60 * 86400 + c * 60
        parents = []
        for i in range(top):  # bursts of 10 messages 5 minutes apart, one a day
            when = start + (i // 10) * 86400 + (i % 10) * 300
            parents.append(slack.post(f"C{c:04}", speakers[i % 4], when))
        for t in range(options["threads"]):
            parent = parents[t * (top // max(options["threads"], 1))]
            for r in range(options["replies"]):
                when = float(parent) + 37 * (r + 1)  # between the burst's messages
                slack.post(f"C{c:04}", speakers[(r + 1) % 4], when, thread_ts=parent)
    slack.latency = options["latency"]
    serve(
        pipe,
        {"url": slack.url, "client_id": slack.client_id, "secret": slack.client_secret},
        lambda: {"calls": dict(slack.calls), "limited": dict(slack.limited)},
        slack.stop,
        grant=slack.grant,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--channels", type=int, default=500)
    parser.add_argument("--per-channel", type=int, default=100)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--replies", type=int, default=5)
    parser.add_argument("--latency", type=float, default=0.15)
    parser.add_argument("--scale", type=float, default=20.0)
    options = parser.parse_args()
    if options.per_channel <= options.threads * options.replies:
        parser.error("--per-channel must exceed --threads × --replies (the threads' parents)")

    workdir = tally_workdir("tally-slack-bench-")
    slack = EmulatorProcess(emulator_process, vars(options))
    total = options.channels * options.per_channel
    say(f"seeding {total:,} messages in {options.channels} channels…", flush=True)
    emulator = slack.hello()

    from pydantic import SecretStr

    from app.config import settings
    from app.connections import oauth
    from app.db import session_scope
    from app.models import Role
    from app.sync.slack import slack_oauth
    from app.users import schemas, service

    settings.slack_client_id = emulator["client_id"]
    settings.slack_client_secret = SecretStr(emulator["secret"])
    settings.slack_api_url = emulator["url"]
    settings.slack_window_seconds = 60.0 / options.scale
    settings.slack_max_wait_seconds = 60.0
    settings.backfill_days = 3650
    open_database(workdir)

    client = slack_oauth()
    assert client is not None
    started = client.start(REDIRECT)
    code = slack.ask("grant", "UREP0")
    consent = client.finish(started.flow, {"code": code, "state": started.state}, REDIRECT)
    with session_scope() as session:
        # the installer is the admin: a workspace's first install is an admin's
        _, admin = acme(session, admin_email=EMAIL)
        for r in range(1, REPS):
            rep = schemas.UserCreate(email=f"rep{r}@acme.example", name=f"Rep {r}", role=Role.rep)
            service.create_user(session, admin, rep)
        oauth.connect(
            session,
            admin,
            "slack",
            account=consent.account,
            config=dict(consent.config),
            secret=dict(consent.secret),
        )

    run = drain(slack)
    seen, wall = run.connection["seen"], run.timing.wall
    calls: dict[str, int] = run.spent("calls")
    calls.pop("oauth.v2.access", None)
    requests = sum(calls.values())
    limited: dict[str, int] = run.spent("limited")
    minutes = wall * options.scale / 60  # Slack minutes elapsed
    # at Slack's real pace each method is paced on its own: the slowest sets the wall time
    real = max(
        [requests * options.latency]
        + [60 * n / (PER_MINUTE.get(m, 20) * 0.9) for m, n in calls.items()]
    )
    say_status(run)
    say(
        f"messages               {seen:,} seen, {run.connection['imported']:,} stored, "
        f"{run.connection['activities']:,} activities"
    )
    say(
        f"wall                   {wall:.1f} s at 1/{options.scale:g} of Slack's minute "
        f"(latency {options.latency:.2f} s per request) = {seen / wall:,.0f} messages/s"
    )
    say(f"at Slack's real limits {real / 60:.1f} min (projected) = {seen / real:,.1f} messages/s")
    say(f"requests               {requests:,} = {1000 * requests / seen:.1f} per 1,000 messages")
    for method, n in sorted(calls.items()):
        allowed = PER_MINUTE.get(method, 20)
        say(
            f"  {method:<22} {n:>6,} = {1000 * n / seen:6.1f} per 1,000; "
            f"{n / minutes:6.1f} a Slack minute = {n / minutes / allowed:.0%} of its "
            f"{allowed}/min; {limited.get(method, 0)} × 429"
        )
    say_cpu(run)


if __name__ == "__main__":
    main()
