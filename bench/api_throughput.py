"""Requests per second and p50/p99 latency of the SDK edge, beside a trivial Django view.

    python bench/api_throughput.py [--duration 10] [--connections 32] [--flags 350]

Starts flagsvc as production does (uvicorn, 2 worker processes, PostgreSQL, Redis),
creates the flags through the services, then drives each endpoint with wrk
(installed with apt-get if missing) on the same machine. Targets on a 2-core
machine, load generator included: snapshot 304 >= 15,000 req/s, snapshot 200
>= 8,000 req/s, OFREP single >= 5,000 req/s, all with p99 <= 15 ms.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._stack import Stack, ensure_tool, machine, running

SETUP = r"""
import json
from audit.recorder import Actor
from flags import services
from flags.models import Environment

actor = Actor.system("bench")
production = services.environment_create(actor=actor, key="production")
services.segment_create(actor=actor, environment=production, key="staff", rules=[
    {"conditions": [{"attribute": "email", "operator": "ends_with", "value": "@example.com"}]}])
RULES = [
    [{"id": "dach", "conditions": [{"attribute": "country", "operator": "in", "value": ["DE", "AT", "CH"]}],
      "serve": {"variant": "on"}}],
    [{"id": "enterprise-eu", "conditions": [
        {"attribute": "country", "operator": "in", "value": ["DE", "FR", "NL"]},
        {"attribute": "plan", "operator": "equals", "value": "enterprise"}], "serve": {"variant": "on"}},
     {"id": "new-apps", "conditions": [{"attribute": "app_version", "operator": "semver_gte", "value": "5.0.0"}],
      "serve": {"split": [{"variant": "on", "weight": 5000}, {"variant": "off", "weight": 5000}]}}],
    [{"id": "staff", "conditions": [{"operator": "in_segment", "value": "staff"}], "serve": {"variant": "on"}}],
]
for i in range(N_FLAGS):
    key = f"bench-flag-{i:03d}"
    flag = services.flag_create(actor=actor, key=key, tags=["bench", f"team-{i % 7}"], owner=f"team-{i % 7}",
                                description=f"Benchmark flag {i}", client_visible=i % 2 == 0)
    on = (i * 137) % 10001
    services.flag_state_update(
        actor=actor, flag=flag, environment=production, enabled=True,
        targets=[{"variant": "on", "values": [f"qa-{j}" for j in range(3)]}] if i % 5 == 0 else [],
        rules=RULES[i % 3],
        default_serve={"split": [{"variant": "on", "weight": on}, {"variant": "off", "weight": 10000 - on}]},
    )
from django.db import connection
with connection.cursor() as cursor:
    cursor.execute("ANALYZE")  # as autovacuum would have by now in a long-running database
_, server = services.token_issue(actor=actor, kind="server", name="bench-server", environment=production)
_, client = services.token_issue(actor=actor, kind="client", name="bench-client", environment=production)
print(json.dumps({"server": server, "client": client, "version": Environment.objects.get(key="production").version}))
"""

CONTEXT = {
    "targetingKey": "user-4711",
    "country": "DE",
    "plan": "pro",
    "app_version": "4.2.0",
    "email": "x@shop.test",
}


def _lua(method: str, body: str | None, headers: dict[str, str]) -> str:
    lines = [f'wrk.method = "{method}"']
    if body is not None:
        lines.append(f"wrk.body = {json.dumps(body)}")
    for name, value in headers.items():
        lines.append(f'wrk.headers["{name}"] = {json.dumps(value)}')
    return "\n".join(lines) + "\n"


def _to_ms(text: str) -> float:
    number, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(url: str, script: str, *, duration: int, connections: int, threads: int) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    output = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{duration}s",
            "--latency",
            "-s",
            handle.name,
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    Path(handle.name).unlink()
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = _to_ms(re.search(r"^\s+50%\s+(\S+)", output, re.M).group(1))  # type: ignore[union-attr]
    p99 = _to_ms(re.search(r"^\s+99%\s+(\S+)", output, re.M).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors: (.*)", output)
    return {
        "rate": rate,
        "p50": p50,
        "p99": p99,
        "bad": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": errors.group(1) if errors else "",
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--threads", type=int, default=1, help="wrk threads (it shares the 2 cores)"
    )
    parser.add_argument("--flags", type=int, default=350)
    args = parser.parse_args()
    ensure_tool("wrk", "wrk")
    with running("api", extra_env={"SDK_RATE_LIMIT_PER_SECOND": "100000000"}) as stack:
        print(f"[bench] creating {args.flags} flags with rules through the services…", flush=True)
        setup = json.loads(
            stack.python(SETUP.replace("N_FLAGS", str(args.flags))).strip().splitlines()[-1]
        )
        stack.start_web()
        run_scenarios(stack, setup, args)


def run_scenarios(stack: Stack, setup: dict[str, object], args: argparse.Namespace) -> None:
    base = stack.base_url
    server = {"Authorization": f"Bearer {setup['server']}"}
    request = urllib.request.Request(f"{base}/api/v1/sdk/snapshot/", headers=server)
    with urllib.request.urlopen(request) as response:
        etag = response.headers["ETag"]
        plain_size = len(response.read())
    request = urllib.request.Request(
        f"{base}/api/v1/sdk/snapshot/", headers={**server, "Accept-Encoding": "gzip"}
    )
    with urllib.request.urlopen(request) as response:
        gzip_size = len(response.read())
    body = json.dumps({"context": CONTEXT})
    ofrep = {**server, "Content-Type": "application/json"}
    scenarios = [
        (
            "snapshot 304 (If-None-Match)",
            f"{base}/api/v1/sdk/snapshot/",
            _lua("GET", None, {**server, "If-None-Match": etag}),
            15000,
        ),
        (
            f"snapshot 200, {args.flags} flags, {plain_size // 1024} KB",
            f"{base}/api/v1/sdk/snapshot/",
            _lua("GET", None, server),
            8000,
        ),
        (
            f"snapshot 200 gzip, {gzip_size // 1024} KB",
            f"{base}/api/v1/sdk/snapshot/",
            _lua("GET", None, {**server, "Accept-Encoding": "gzip"}),
            8000,
        ),
        (
            "OFREP single evaluation",
            f"{base}/ofrep/v1/evaluate/flags/bench-flag-007",
            _lua("POST", body, ofrep),
            5000,
        ),
        (
            f"OFREP bulk ({args.flags} flags)",
            f"{base}/ofrep/v1/evaluate/flags",
            _lua("POST", body, ofrep),
            None,
        ),
        ("trivial Django view (reference)", f"{base}/healthz/django", _lua("GET", None, {}), None),
    ]
    for _, url, script, _ in scenarios:  # warm every process's caches and connections
        wrk(url, script, duration=1, connections=args.connections, threads=args.threads)
    print(f"\nmachine: {machine()}")
    print(f"server:  {stack.describe()}")
    print(
        f"load:    wrk -t{args.threads} -c{args.connections} -d{args.duration}s on the same machine; "
        f"snapshot version {setup['version']}\n"
    )
    print(f"{'endpoint':42} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx/3xx':>11}  target")
    results = []
    for name, url, script, target in scenarios:
        figures = wrk(
            url, script, duration=args.duration, connections=args.connections, threads=args.threads
        )
        results.append((name, figures, target))
        verdict = ""
        if target is not None:
            met = figures["rate"] >= target and figures["p99"] <= 15
            verdict = f">= {target:,} req/s, p99 <= 15 ms: {'MET' if met else 'MISSED'}"
        print(
            f"{name:42} {figures['rate']:>9,.0f} {figures['p50']:>8.2f} {figures['p99']:>8.2f} {figures['bad']:>11}  {verdict}"
        )
        if figures["socket_errors"]:
            print(f"{'':42} socket errors: {figures['socket_errors']}")
    django = results[-1][1]["rate"]
    print(
        "\nedge vs trivial Django view, same run: "
        + ", ".join(
            f"{name.split(',')[0]} {f['rate'] / django:.1f}x" for name, f, _ in results[:-1]
        )
    )


if __name__ == "__main__":
    main()
