"""Time from an error-ratio jump to the guardrail's kill reaching an SSE subscriber, on the real stack.

    python bench/guardrail_reaction.py [--breaches 5] [--tick 1] [--scrape 1]

Starts flagsvc the production way (bench/_stack.py: uvicorn workers, a Celery worker
with beat, PostgreSQL, Redis dbs 8 and 9), a real Prometheus (Debian's ``prometheus``)
scraping an exporter this script controls every ``--scrape`` seconds, and a guardrail
``checkout_error_ratio > 0.05 → kill`` checked every ``--tick`` seconds. Each breach:
the exporter's ratio jumps from 1% to 40%; the figure is the time from that jump until
a raw SSE subscriber (/api/v1/sdk/stream/) receives the kill's new version. Printed
beside its budget, scrape interval + guardrail tick + 1 s, with the ratio, and split
into the part Prometheus takes (jump → first query answering the new value) and the
rest (guardrail tick, kill, publication, stream). Between breaches the ratio goes back
to 1%, the guardrail sees it healthy, and the flag is restored through the API.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._stack import machine, running
from tests.prometheus import Exporter, Prometheus

QUERY = "max(checkout_error_ratio)"
HEALTHY, BROKEN = 0.01, 0.4

SETUP = r"""
import json
from audit.recorder import Actor
from flags import guardrails, services
actor = Actor.system("bench")
production = services.environment_create(actor=actor, key="production")
flag = services.flag_create(actor=actor, key="checkout")
services.flag_state_update(actor=actor, flag=flag, environment=production, enabled=True)
guardrails.guardrail_create(actor=actor, flag=flag, environment=production, name="errors",
    query=QUERY, comparison="gt", threshold=0.05, action="kill", watch_seconds=24 * 3600)
_, server = services.token_issue(actor=actor, kind="server", name="bench-server", environment=production)
_, admin = services.token_issue(actor=actor, kind="admin", name="bench-admin")
print(json.dumps({"server": server, "admin": admin}))
"""


class StreamWatcher:
    """A raw SSE subscriber: the arrival time (wall clock) of each event id."""

    def __init__(self, port: int, token: str) -> None:
        self.seen: dict[int, float] = {}
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.sendall(
            f"GET /api/v1/sdk/stream/ HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
            "Accept: text/event-stream\r\n\r\n".encode()
        )
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            arrived = time.time()
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                if line.startswith(b"id: "):
                    self.seen.setdefault(int(line[4:]), arrived)

    def first_after(self, version: int, timeout: float) -> tuple[int, float]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            newer = [(v, t) for v, t in self.seen.items() if v > version]
            if newer:
                return min(newer)
            time.sleep(0.005)
        raise SystemExit(f"no event after version {version} within {timeout}s")

    def close(self) -> None:
        self.sock.close()

    def latest(self) -> int:
        return max(self.seen, default=0)


def api(base: str, token: str, method: str, path: str, body: Any = None) -> Any:
    request = urllib.request.Request(
        base + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def wait_until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.02)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--breaches", type=int, default=5)
    parser.add_argument("--tick", type=float, default=1.0, help="GUARDRAIL_TICK_SECONDS")
    parser.add_argument("--scrape", type=float, default=1.0, help="Prometheus scrape interval")
    options = parser.parse_args()
    budget = options.scrape + options.tick + 1.0

    with (
        Exporter(HEALTHY) as exporter,
        Prometheus([exporter.target], interval=options.scrape) as prom,
    ):
        prom.wait_for(QUERY, HEALTHY)
        extra = {"GUARDRAIL_TICK_SECONDS": str(options.tick), "PROMETHEUS_URL": prom.url}
        with running("guardrail", workers=2, redis_db=8, extra_env=extra) as stack:
            keys = json.loads(
                stack.python(SETUP.replace("QUERY", repr(QUERY))).strip().splitlines()[-1]
            )
            stack.start_web()
            stack.start_worker(beat=True, concurrency=1)
            guardrail_path = "/api/v1/flags/checkout/environments/production/guardrails/errors/"
            watcher = StreamWatcher(stack.port, keys["server"])
            wait_until(lambda: watcher.latest() > 0, 30, "the stream's first event")

            def health() -> str:
                return str(api(stack.base_url, keys["admin"], "GET", guardrail_path)["health"])

            rows = []
            for run in range(1, options.breaches + 1):
                wait_until(lambda: health() == "ok", 30, "the guardrail to see healthy numbers")
                before = watcher.latest()
                visible: dict[str, float] = {}

                def watch_prometheus(into: dict[str, float] = visible) -> None:
                    into["at"] = prom.wait_for(QUERY, BROKEN)

                seen_by_prometheus = threading.Thread(target=watch_prometheus, daemon=True)
                jumped = exporter.set(BROKEN)
                seen_by_prometheus.start()
                version, arrived = watcher.first_after(before, timeout=60)
                seen_by_prometheus.join(30)
                state = api(
                    stack.base_url,
                    keys["admin"],
                    "GET",
                    "/api/v1/flags/checkout/environments/production/",
                )
                kill = state.get("kill") or {}
                if kill.get("by") != "guardrail:errors":
                    raise SystemExit(
                        f"run {run}: the new version {version} is not the guardrail's kill: {state}"
                    )
                reaction = arrived - jumped
                scrape = visible.get("at", arrived) - jumped
                rows.append((run, reaction, scrape, reaction - scrape))
                exporter.set(HEALTHY)
                prom.wait_for(QUERY, HEALTHY)
                wait_until(lambda: health() == "ok", 30, "the guardrail to see the recovery")
                api(
                    stack.base_url,
                    keys["admin"],
                    "POST",
                    "/api/v1/flags/checkout/restore/",
                    {"environment": "production", "reason": f"bench run {run} over"},
                )
                wait_until(lambda v=version: watcher.latest() > v, 30, "the restore on the stream")
            watcher.close()  # before the web tier stops: a stream left open delays its shutdown

    print(f"\nguardrail reaction: error-ratio jump -> kill on an SSE subscriber ({machine()})")
    print(
        f"stack: {stack.describe()}; Celery worker + beat, guardrail tick {options.tick:g}s; "
        f"Prometheus scrape interval {options.scrape:g}s"
    )
    print(
        f"budget per breach: scrape {options.scrape:g}s + tick {options.tick:g}s + 1s = {budget:g}s\n"
    )
    print(
        f"{'run':>4} {'reaction s':>11} {'budget s':>9} {'ratio':>6} {'prometheus s':>13} {'flagsvc s':>10}  within"
    )
    for run, reaction, scrape, rest in rows:
        print(
            f"{run:>4} {reaction:>11.3f} {budget:>9.3f} {reaction / budget:>6.2f} {scrape:>13.3f} "
            f"{rest:>10.3f}  {'yes' if reaction <= budget else 'NO'}"
        )
    worst = max(r[1] for r in rows)
    print(
        f"\nworst {worst:.3f}s of {budget:g}s budget (ratio {worst / budget:.2f}); "
        f"{'every run within budget' if worst <= budget else 'OVER BUDGET'}"
    )
    if worst > budget:
        sys.exit(1)


if __name__ == "__main__":
    main()
