"""A real flagsvc for the SDKs' tests: `python -m tests.sdk_server --name node`.

Starts flagsvc the way production runs it (``bench/_stack.py``: a fresh PostgreSQL
database, its own Redis database numbers, ``python -m flagsvc.serve`` on a free port),
loads the demo data and issues one key of each kind for ``production``, then prints one
JSON line on stdout::

    {"url": "http://127.0.0.1:41234", "environment": "production",
     "serverKey": "...", "clientKey": "...", "killKey": "...", "adminToken": "..."}

It serves until its stdin closes or it gets SIGTERM/SIGINT, then stops every process it
started. The Node, React and Python SDK tests start it as a child process; each caller
passes its own ``--name`` (the database name) and ``--redis-db`` so that suites can run side
by side; ``--env NAME=VALUE`` (repeatable) adds a setting for flagsvc's processes, such
as the browser test's allowed origin. ``--stop-web`` / ``--start-web`` lines on stdin stop
and start the web tier (the database stays), for "flagsvc dies mid-run" tests: the answer
is a line ``{"web": "stopped"}`` or ``{"web": "started"}``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._stack import Stack  # noqa: E402

ISSUE_KEYS = """
import json
from audit.recorder import Actor
from flags import services
from flags.models import ApiToken, Environment

environment = Environment.objects.get(key="production")
actor = Actor.system("sdk tests")
keys = {}
for name, kind, bound in (
    ("serverKey", ApiToken.Kind.SERVER, True),
    ("clientKey", ApiToken.Kind.CLIENT, True),
    ("killKey", ApiToken.Kind.KILL, True),
    ("adminToken", ApiToken.Kind.ADMIN, False),
):
    _, raw = services.token_issue(
        actor=actor, kind=kind, name=f"sdk tests {kind}",
        environment=environment if bound else None, reason="SDK test harness",
    )
    keys[name] = raw
print(json.dumps(keys))
"""


def stop_web(stack: Stack) -> None:
    for process in stack.processes:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
    for process in stack.processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
    stack.processes.clear()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--name", default="sdk", help="names the database (flagsvc_bench_<name>)")
    parser.add_argument("--redis-db", type=int, default=8, help="uses this and the next number")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an extra setting for flagsvc's processes (repeatable), e.g. CORS_ALLOWED_ORIGINS=...",
    )
    args = parser.parse_args()
    extra_env = {"DEBUG": "false"}
    for assignment in args.env:
        name, equals, value = assignment.partition("=")
        if not equals or not name:
            parser.error(f"--env takes NAME=VALUE, not {assignment!r}")
        extra_env[name] = value
    # The protocol owns stdout; everything the child processes print goes to stderr.
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)

    stack = Stack(
        f"sdk_{args.name}",
        workers=args.workers,
        redis_db=args.redis_db,
        extra_env=extra_env,
    )

    def on_signal(signum: int, frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        stack.manage("migrate", "--no-input", "-v0")
        stack.manage("seed_demo")
        keys = json.loads(stack.python(ISSUE_KEYS).strip().splitlines()[-1])
        stack.start_web()
        protocol.write(
            json.dumps({"url": stack.base_url, "environment": "production", **keys}) + "\n"
        )
        for line in sys.stdin:
            command = line.strip()
            if command == "--stop-web":
                stop_web(stack)
                protocol.write(json.dumps({"web": "stopped"}) + "\n")
            elif command == "--start-web":
                if not stack.processes:
                    stack.start_web()
                protocol.write(json.dumps({"web": "started"}) + "\n")
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
