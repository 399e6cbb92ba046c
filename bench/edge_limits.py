"""What abusive and busy callers cost the SDK edge: unknown-key floods and service-rate OFREP.

    python bench/edge_limits.py [--unknown-keys 5000] [--ofrep 600] [--ofrep-rate 950]

Starts flagsvc as production does (2 uvicorn processes, PostgreSQL, Redis, default
limits), then from this one address:
1. sends ``--unknown-keys`` OFREP requests, each with a new random key, as fast as
   it can, and counts the database lookups of API tokens they caused (PostgreSQL's
   index and sequential scans of the token table) and the answers' statuses;
2. sends ``--ofrep`` single-flag evaluations with one server key, paced at
   ``--ofrep-rate`` per second (a service evaluating remotely), and counts 429s.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import secrets
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._stack import Stack, machine, running

SETUP = r"""
import json
from audit.recorder import Actor
from flags import services

actor = Actor.system("bench")
production = services.environment_create(actor=actor, key="production")
flag = services.flag_create(actor=actor, key="checkout", client_visible=True)
services.flag_state_update(
    actor=actor, flag=flag, environment=production, enabled=True,
    rules=[{"id": "de", "conditions": [{"attribute": "country", "operator": "equals", "value": "DE"}],
            "serve": {"variant": "on"}}],
    default_serve={"split": [{"variant": "on", "weight": 5000}, {"variant": "off", "weight": 5000}]},
)
_, server = services.token_issue(actor=actor, kind="server", name="bench-server", environment=production)
print(json.dumps({"server": server}))
"""

TOKEN_SCANS = r"""
from django.db import connection
with connection.cursor() as cursor:
    cursor.execute(
        "SELECT coalesce(idx_scan, 0) + coalesce(seq_scan, 0) FROM pg_stat_user_tables "
        "WHERE relname = 'flags_apitoken'"
    )
    print(cursor.fetchone()[0])
"""

BODY = {"context": {"targetingKey": "user-1", "country": "DE"}}


def token_scans(stack: Stack) -> int:
    time.sleep(11)  # an idle backend reports its table statistics within 10 s
    return int(stack.python(TOKEN_SCANS).strip().splitlines()[-1])


class Connection:
    """A raw HTTP/1.1 keep-alive connection: a Python HTTP client would be the bottleneck here."""

    def __init__(self, base: str) -> None:
        host, port = base.removeprefix("http://").split(":")
        self.host, self.port = host, int(port)
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, token: str) -> int:
        body = json.dumps(BODY).encode()
        request = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(request)
        head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
        length = int(head.split("content-length:", 1)[1].split("\r\n", 1)[0])
        await self.reader.readexactly(length)
        if "connection: close" in head:
            self.writer.close()
            self.writer = None
        return int(head.split(" ", 2)[1])


async def unknown_keys(
    base: str, count: int, concurrency: int
) -> tuple[collections.Counter[int], float]:
    statuses: collections.Counter[int] = collections.Counter()
    remaining = [count]

    async def caller() -> None:
        connection = Connection(base)
        while remaining[0] > 0:
            remaining[0] -= 1
            key = f"fsv_server_{secrets.token_urlsafe(32)}"
            statuses[await connection.post("/ofrep/v1/evaluate/flags", key)] += 1

    started = time.monotonic()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return statuses, time.monotonic() - started


async def paced_ofrep(
    base: str, token: str, count: int, rate: float, connections: int = 16
) -> tuple[collections.Counter[int], float]:
    """``count`` evaluations, request n sent at start + n / rate (over a few connections)."""
    statuses: collections.Counter[int] = collections.Counter()
    started = time.monotonic() + 0.2

    async def caller(first: int) -> None:
        connection = Connection(base)
        for n in range(first, count, connections):
            await asyncio.sleep(max(0.0, started + n / rate - time.monotonic()))
            statuses[await connection.post("/ofrep/v1/evaluate/flags/checkout", token)] += 1

    await asyncio.gather(*(caller(first) for first in range(connections)))
    return statuses, time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--unknown-keys", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--ofrep", type=int, default=600)
    parser.add_argument("--ofrep-rate", type=float, default=950.0)
    args = parser.parse_args()
    with running("limits", redis_db=8) as stack:  # Redis dbs 8 and 9
        setup = json.loads(stack.python(SETUP).strip().splitlines()[-1])
        stack.start_web()
        print(f"machine: {machine()}")
        print(f"server:  {stack.describe()}\n")

        # The token table is also read in the background (the edge's token watch): measure
        # that idle rate first and subtract it from the flood's window.
        idle_started, idle_scans = time.monotonic(), token_scans(stack)
        before = token_scans(stack)
        window_started = time.monotonic()
        idle_rate = (before - idle_scans) / (window_started - idle_started)
        statuses, seconds = asyncio.run(
            unknown_keys(stack.base_url, args.unknown_keys, args.concurrency)
        )
        scans = token_scans(stack) - before
        lookups = max(0, round(scans - idle_rate * (time.monotonic() - window_started)))
        print(
            f"{args.unknown_keys} random unknown keys in {seconds:.1f} s "
            f"({args.unknown_keys / seconds:.0f} req/s): about {lookups} token lookups in the "
            f"database ({lookups / seconds:.0f}/s; {scans} token-table scans less "
            f"{idle_rate:.1f}/s in the background); answers {dict(sorted(statuses.items()))}"
        )

        with urllib.request.urlopen(f"{stack.base_url}/metrics") as response:
            for line in response.read().decode().splitlines():
                if line.startswith("flagsvc_edge_key_lookups_total{"):
                    print(f"  the edge's own count: {line}")

        time.sleep(1.1)  # a fresh rate-limit window
        statuses, seconds = asyncio.run(
            paced_ofrep(stack.base_url, setup["server"], args.ofrep, args.ofrep_rate)
        )
        print(
            f"{args.ofrep} OFREP evaluations with one server key at {args.ofrep / seconds:.0f}/s: "
            f"{statuses.get(429, 0)} refused with 429; answers {dict(sorted(statuses.items()))}"
        )


if __name__ == "__main__":
    main()
