"""Time from a kill request until every streaming subscriber has the new version.

    python bench/kill_propagation.py [--subscribers 100 1000] [--kills 20] [--flags 350]

Starts the real stack (uvicorn, 2 workers, PostgreSQL, Redis), opens N raw SSE
subscribers (plain sockets, one coroutine each), fires kills with a kill key
through POST /api/v1/flags/{key}/kill/ and records, per subscriber, the time from
the start of the kill request until its stream delivered an event with the new
environment version.

Every figure is printed beside a reference measured in the same run: a bare
Starlette app (bench/bare_fanout.py) served by the same launcher with the same
topology — 2 processes, Redis pub/sub between them, the same raw subscribers —
whose POST only takes a version from a Redis counter and publishes it. The
ratio is what holds on a noisy day. Target: flagsvc's p99 within 2x of the
reference's at N = 1,000.

Then measures the kill endpoint's own latency (the answer includes waiting for
every edge process to confirm) while 500 snapshot polls per second run against
the server (a separate process paces them), beside the reference's POST under
the same polling.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import uvloop

from bench._stack import PYTHON, ROOT, free_port, machine, running

SETUP = r"""
import json
from audit.recorder import Actor
from flags import services
actor = Actor.system("bench")
production = services.environment_create(actor=actor, key="production")
for i in range(N_FLAGS):
    flag = services.flag_create(actor=actor, key=f"flag-{i:03d}", tags=["bench"])
    services.flag_state_update(actor=actor, flag=flag, environment=production, enabled=True,
        rules=[{"id": "de", "conditions": [{"attribute": "country", "operator": "in", "value": ["DE", "AT"]}], "serve": {"variant": "on"}}],
        default_serve={"split": [{"variant": "on", "weight": 2500}, {"variant": "off", "weight": 7500}]})
from django.db import connection
with connection.cursor() as cursor:
    cursor.execute("ANALYZE")  # as autovacuum would have by now in a long-running database
_, server = services.token_issue(actor=actor, kind="server", name="bench-server", environment=production)
_, kill = services.token_issue(actor=actor, kind="kill", name="bench-kill", environment=production)
print(json.dumps({"server": server, "kill": kill}))
"""


VERBOSE = False


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


class Subscriber:
    """A raw SSE client: records when each version id arrives."""

    def __init__(self, host: str, port: int, token: str) -> None:
        self.host, self.port, self.token = host, port, token
        self.seen: dict[int, float] = {}
        self.connected = asyncio.Event()

    async def run(self) -> None:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        writer.write(
            f"GET /api/v1/sdk/stream/ HTTP/1.1\r\nHost: {self.host}\r\nAuthorization: Bearer {self.token}\r\n"
            "Accept: text/event-stream\r\n\r\n".encode()
        )
        await writer.drain()
        buffer = b""
        try:
            while True:
                # One read per network packet (not per line): the subscribers cost the machine
                # as little as a real SDK's would, and the timestamp is when the bytes arrived.
                chunk = await reader.read(65536)
                if not chunk:
                    return
                arrived = time.perf_counter()
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.startswith(b"id: "):
                        self.seen.setdefault(int(line[4:]), arrived)
                        self.connected.set()
        except (ConnectionError, asyncio.CancelledError):
            return
        finally:
            writer.close()


async def http(
    host: str, port: int, method: str, path: str, headers: dict[str, str], body: bytes = b""
) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection(host, port)
    head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {len(body)}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    writer.write(head.encode() + b"\r\n" + body)
    await writer.drain()
    response = await reader.read()
    writer.close()
    status = int(response.split(b" ", 2)[1])
    return status, response.split(b"\r\n\r\n", 1)[1]


async def propagation(
    port: int, tokens: dict[str, str], subscribers: int, kills: int
) -> list[float]:
    host = "127.0.0.1"
    clients = [Subscriber(host, port, tokens["server"]) for _ in range(subscribers)]
    tasks = [asyncio.create_task(c.run()) for c in clients]
    await asyncio.wait_for(asyncio.gather(*(c.connected.wait() for c in clients)), timeout=60)
    headers = {"Authorization": f"Bearer {tokens['kill']}", "Content-Type": "application/json"}
    # Warm both worker processes' code paths and connection pools on another flag (a
    # production server is warm); the measured kills follow.
    for n in range(8):
        action = "kill" if n % 2 == 0 else "restore"
        await http(
            host,
            port,
            "POST",
            f"/api/v1/flags/flag-099/{action}/",
            headers,
            json.dumps({"reason": "warm-up"}).encode(),
        )
    await asyncio.sleep(0.5)
    delays: list[float] = []
    per_kill: list[tuple[float, float, float]] = []
    for n in range(kills):
        action = "kill" if n % 2 == 0 else "restore"
        body = json.dumps({"reason": f"bench {action} {n}"}).encode()
        started = time.perf_counter()
        status, answer = await http(
            host, port, "POST", f"/api/v1/flags/flag-007/{action}/", headers, body
        )
        if status != 200:
            raise SystemExit(f"{action} answered {status}: {answer[:300]!r}")
        version = json.loads(answer)["environment_version"]
        deadline = time.perf_counter() + 10
        while not all(version in c.seen for c in clients):
            if time.perf_counter() > deadline:
                missing = sum(version not in c.seen for c in clients)
                raise SystemExit(f"{missing} subscribers never saw version {version}")
            await asyncio.sleep(0.002)
        these = sorted((c.seen[version] - started) * 1000 for c in clients)
        per_kill.append((these[0], these[len(these) // 2], these[-1]))
        delays += these
        await asyncio.sleep(0.3)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if VERBOSE:
        print(
            "  per kill (first/median/last subscriber, ms): "
            + ", ".join(f"{a:.0f}/{b:.0f}/{c:.0f}" for a, b, c in per_kill)
        )
    return delays


def poller(port: int, token: str, rate: int, seconds: float, results: Any) -> None:
    """A separate process sending ``rate`` snapshot polls per second on keep-alive connections."""

    async def main() -> None:
        connections = 25
        interval = connections / rate
        done = 0
        statuses: dict[int, int] = {}
        stop = time.perf_counter() + seconds

        async def one() -> None:
            nonlocal done
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            request = (
                f"GET /api/v1/sdk/snapshot/ HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
                "Accept-Encoding: gzip\r\n\r\n"
            ).encode()
            next_at = time.perf_counter()
            while time.perf_counter() < stop:
                writer.write(request)
                await writer.drain()
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                statuses[status] = statuses.get(status, 0) + 1
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                if length:
                    await reader.readexactly(length)
                done += 1
                next_at += interval
                await asyncio.sleep(max(0, next_at - time.perf_counter()))
            writer.close()

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(connections)))
        results.put({"rate": done / (time.perf_counter() - started), "statuses": statuses})

    uvloop.run(main())


async def kill_latency_under_load(port: int, kill_token: str, calls: int) -> list[float]:
    headers = {"Authorization": f"Bearer {kill_token}", "Content-Type": "application/json"}
    latencies = []
    for n in range(calls):
        action = "kill" if n % 2 == 0 else "restore"
        body = json.dumps({"reason": f"latency {n}"}).encode()
        started = time.perf_counter()
        status, answer = await http(
            "127.0.0.1", port, "POST", f"/api/v1/flags/flag-011/{action}/", headers, body
        )
        latencies.append((time.perf_counter() - started) * 1000)
        if status != 200:
            raise SystemExit(f"{action} answered {status}: {answer[:300]!r}")
        await asyncio.sleep(0.05)
    return latencies


class Reference:
    """bench/bare_fanout.py under flagsvc.serve, on its own port and Redis database."""

    def __init__(self, workers: int = 2, redis_db: int = 10) -> None:
        import redis

        self.port = free_port()
        url = f"redis://127.0.0.1:6379/{redis_db}"
        redis.Redis.from_url(url).flushdb()
        self.process = subprocess.Popen(
            [
                PYTHON,
                "-m",
                "flagsvc.serve",
                "--app",
                "bench.bare_fanout:app",
                "--port",
                str(self.port),
                "--workers",
                str(workers),
                "--backlog",
                "4096",
            ],
            cwd=ROOT,
            env={**os.environ, "REDIS_URL": url},
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("the reference server did not start") from None
                time.sleep(0.2)

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=15)


def row(label: str, delays: list[float], reference: list[float] | None) -> str:
    p50, p99 = statistics.median(delays), percentile(delays, 99)
    line = f"{label:>22} {len(delays):>7} {p50:>8.1f} {p99:>8.1f} {max(delays):>8.1f}"
    if reference:
        line += f"   x{p50 / statistics.median(reference):.2f} p50, x{p99 / percentile(reference, 99):.2f} p99"
    return line


def latency_under_load(
    port: int, token: str, calls: int, seconds: float, kill_token: str
) -> tuple[list[float], dict[str, Any]]:
    results: Any = multiprocessing.Queue()
    load = multiprocessing.Process(target=poller, args=(port, token, 500, seconds, results))
    load.start()
    time.sleep(2)
    latencies = uvloop.run(kill_latency_under_load(port, kill_token, calls))
    load.join()
    return latencies, results.get()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subscribers", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--kills", type=int, default=20, help="kill/restore requests per N")
    parser.add_argument("--flags", type=int, default=350)
    parser.add_argument("--latency-calls", type=int, default=100)
    parser.add_argument("--verbose", action="store_true", help="print each kill's spread")
    args = parser.parse_args()
    global VERBOSE
    VERBOSE = args.verbose
    with running("kill", redis_db=11, extra_env={"SDK_RATE_LIMIT_PER_SECOND": "0"}) as stack:
        print(f"[bench] creating {args.flags} flags…", flush=True)
        tokens = json.loads(
            stack.python(SETUP.replace("N_FLAGS", str(args.flags))).strip().splitlines()[-1]
        )
        stack.start_web()
        print(f"\nmachine: {machine()}")
        print(f"server:  {stack.describe()}")
        print(
            f"kill:    POST /api/v1/flags/flag-007/{{kill,restore}}/ with a kill key, {args.kills} per N; "
            "delay = request start -> event with the new version read by the subscriber\n"
        )
        print(f"reference: {REFERENCE_LABEL}\n")
        print(
            f"{'subscribers / server':>22} {'events':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}   flagsvc / reference"
        )
        for n in args.subscribers:
            reference = Reference()
            try:
                ref_delays = uvloop.run(propagation(reference.port, REF_TOKENS, n, args.kills))
            finally:
                reference.stop()
            delays = uvloop.run(propagation(stack.port, tokens, n, args.kills))
            print(row(f"{n} reference", ref_delays, None))
            print(row(f"{n} flagsvc", delays, ref_delays))
            if n >= 1000:
                ratio = percentile(delays, 99) / percentile(ref_delays, 99)
                print(
                    f"{'':>22} target p99 within 2x of the reference: {'MET' if ratio <= 2 else 'MISSED'} (x{ratio:.2f})"
                )

        seconds = args.latency_calls * 0.05 + 15
        latencies, polled = latency_under_load(
            stack.port, tokens["server"], args.latency_calls, seconds, tokens["kill"]
        )
        reference = Reference()
        try:
            ref_latencies, ref_polled = latency_under_load(
                reference.port, "x", args.latency_calls, seconds, "x"
            )
        finally:
            reference.stop()
        print(
            f"\nkill endpoint under {polled['rate']:.0f} snapshot polls/s ({polled['statuses']}): "
            f"{len(latencies)} kill/restore calls, p50 {statistics.median(latencies):.1f} ms, "
            f"p99 {percentile(latencies, 99):.1f} ms, max {max(latencies):.1f} ms "
            "(answers after every edge process confirmed)"
        )
        print(
            f"reference POST under {ref_polled['rate']:.0f} polls/s: p50 {statistics.median(ref_latencies):.1f} ms, "
            f"p99 {percentile(ref_latencies, 99):.1f} ms; ratio x{statistics.median(latencies) / statistics.median(ref_latencies):.2f} p50, "
            f"x{percentile(latencies, 99) / percentile(ref_latencies, 99):.2f} p99"
        )


REFERENCE_LABEL = (
    "bench/bare_fanout.py: bare Starlette under the same launcher (2 processes, SO_REUSEPORT), "
    "POST -> Redis INCR + PUBLISH -> each process writes the same patch event (same bytes as "
    "flagsvc's) to its raw SSE subscribers"
)
REF_TOKENS = {"server": "x", "kill": "x"}


if __name__ == "__main__":
    main()
