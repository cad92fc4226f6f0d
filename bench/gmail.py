"""Benchmark a Gmail backfill against the local Google emulator under a per-user quota.

    .venv/bin/python bench/gmail.py [--messages 20000] [--units 6000] [--window 1.0]
        [--metadata-only] [--guard 0.05] [--expire-access-every SECONDS] [--token-latency S]

The emulator (tests/emulators/google.py, in a process of its own so its CPU is not counted)
holds `--messages` real Enron messages, whole (headers, MIME parts, bodies), and enforces a
per-user quota with Google's method costs (messages.get 20 units, messages.list 5,
history.list 2, getProfile 1) over a sliding window: by default 6,000 units a *second*,
Google's per-minute figure with each minute compressed into a second, so a backfill that would
take over an hour at Google's real rate takes about a minute. The real GmailConnector
(google-api-python-client, batch requests) pulls everything with a pacer configured with the
same figures: exact counting (gmail.readonly: format=full with a fields mask of headers and
MIME tree) by default, format=metadata with `--metadata-only`.

`--guard` is the pacer's margin (Quota.guard, 5 % by default): in a compressed window the
time a request takes to reach the emulator on a loaded machine can exceed 5 % of a second,
which a real minute's 3 s never is; a larger guard, or `--units 60000 --window 10` (the same
rate, a window ten times longer), takes those 429s out of the figures.

`--expire-access-every S` makes the emulator kill the account's access tokens every S seconds
(each then answers 401, a batch's parts one by one, until the client refreshes), and
`--token-latency` slows the token endpoint: a run with 401s, where google-api-python-client
resends a batch's 401 parts by itself.

Printed: wall time, the share of the quota used over the run (units the emulator charged /
units the quota allowed in that time; target ≥ 90 %), the 429 and 401 answers (target: 0
429s), HTTP requests per 1,000 messages beside the API's minimum (a list of 500 ids and
batches of 100 gets: 12 per 1,000), the body data the emulator sent (target 0), and Tally's
CPU per message (this process only).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from emulated import ROOT, say, timed

from connectors.google import App, Endpoints, GmailConnector, Quota
from connectors.google.pacing import Pacer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--units", type=int, default=6000, help="quota units per window")
    parser.add_argument("--window", type=float, default=1.0, help="quota window, seconds")
    parser.add_argument("--in-flight", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument(
        "--guard", type=float, default=0.05, help="the pacer's window margin (Quota.guard)"
    )
    parser.add_argument("--metadata-only", action="store_true", help="gmail.metadata mode")
    parser.add_argument("--expire-access-every", type=float, default=0.0, help="seconds")
    parser.add_argument("--token-latency", type=float, default=0.0, help="seconds")
    args = parser.parse_args()

    say(f"filling the emulator with {args.messages:,} messages…", stream=sys.stderr)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.emulators.google",
            "--messages",
            str(args.messages),
            "--units",
            str(args.units),
            "--window",
            str(args.window),
            "--expire-access-every",
            str(args.expire_access_every),
            "--token-latency",
            str(args.token_latency),
            *(["--metadata-only"] if args.metadata_only else []),
        ],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert server.stdin is not None and server.stdout is not None
    hello = json.loads(server.stdout.readline())
    quota = Quota(
        units_per_window=args.units,
        window_seconds=args.window,
        max_in_flight=args.in_flight,
        max_wait_seconds=600.0,
        guard=args.guard,
    )
    gmail = GmailConnector(
        account=hello["account"],
        refresh_token=hello["refresh_token"],
        app=App("tally-test-client", "tally-test-secret"),
        endpoints=Endpoints(api_url=hello["url"], token_uri=hello["url"] + "token"),
        quota=quota,
        batch_size=args.batch_size,
        pacer=Pacer(quota),
        metadata_only=args.metadata_only,
    )
    say("backfilling…", stream=sys.stderr)
    since = datetime.now(UTC) - timedelta(days=365 * 10)
    with timed() as timing:
        count = sum(len(page.messages) for page in gmail.pull(None, since=since))
    wall, cpu = timing.wall, timing.cpu
    server.stdin.close()
    stats = json.loads(server.stdout.readline())
    server.wait(timeout=30)

    allowed = args.units * wall / args.window
    # less the token requests (google-auth's first one, the library's refreshes after 401s)
    requests = stats["http_requests"] - stats["by_method"].get("token", 0)
    per_thousand = requests / count * 1000
    minimum = 1000 / 500 + 1000 / 100
    say("| figure | value |\n|---|---|")
    say(f"| messages | {count:,} |")
    say(f"| wall time | {wall:.1f} s |")
    say(f"| quota units charged | {stats['units']:,} |")
    say(f"| share of the quota used | {stats['units'] / allowed:.1%} |")
    say(f"| mode | {'metadata only' if args.metadata_only else 'exact (format=full + fields)'} |")
    say(f"| 429 answers | {stats['rejected']} |")
    say(f"| 401 answers (parts) | {stats['unauthorized']} |")
    say(f"| body data sent | {stats['body_bytes']:,} characters |")
    say(f"| HTTP requests per 1,000 messages | {per_thousand:.1f} (API minimum {minimum:.0f}) |")
    say(f"| Tally CPU per message | {cpu / count * 1e6:.0f} µs |")
    say(f"| time waiting for quota (summed over threads) | {gmail.pacer.waited:.1f} s |")
    say(f"| calls by method | {stats['by_method']} |")


if __name__ == "__main__":
    main()
