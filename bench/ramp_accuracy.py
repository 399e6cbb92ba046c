"""How punctually scheduled ramp-ups land: from each step's due time to what a streaming SDK sees.

    python bench/ramp_accuracy.py [--runs 3] [--steps 5] [--spacing 5] [--tick 1]

Starts the real stack (uvicorn with 2 workers, PostgreSQL, Redis, a Celery worker
with beat on the Redis broker, ROLLOUT_TICK_SECONDS=--tick), opens a raw SSE
subscriber on /api/v1/sdk/stream/ with a server key, and creates a rollout plan
through the API: step 1 five seconds ahead, then every step --spacing seconds
after the previous one was applied. For every step it prints when it fell due
(the plan's own record), when the scheduler applied it, and when the subscriber
saw the new split; then checks the audit trail: exactly one rollout_plan.step
event per step, in order (none applied twice, none skipped).

Target: every step seen within the beat interval + 1 s of its due time, over 3 runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._stack import PYTHON, ROOT, Stack, machine, running

FLAG = "ramp-flag"
SETUP = r"""
import json
from audit.recorder import Actor
from flags import services
actor = Actor.system("bench")
production = services.environment_create(actor=actor, key="production")
flag = services.flag_create(actor=actor, key="ramp-flag")
services.flag_state_update(actor=actor, flag=flag, environment=production, enabled=True)
for i in range(50):  # some company for the flag in every snapshot and patch
    other = services.flag_create(actor=actor, key=f"other-{i:02d}")
    services.flag_state_update(actor=actor, flag=other, environment=production, enabled=True)
_, server = services.token_issue(actor=actor, kind="server", name="bench-server", environment=production)
_, admin = services.token_issue(actor=actor, kind="admin", name="bench-admin")
print(json.dumps({"server": server, "admin": admin}))
"""
PLAN_PATH = f"/api/v1/flags/{FLAG}/environments/production/rollout-plan/"


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class Subscriber:
    """A raw SSE client: records when it first saw each weight of the flag's split (wall clock)."""

    def __init__(self, port: int, token: str) -> None:
        self.port, self.token = port, token
        self.seen: dict[int, datetime] = {}
        self.connected = asyncio.Event()

    async def run(self) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        writer.write(
            f"GET /api/v1/sdk/stream/ HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {self.token}\r\n"
            "Accept: text/event-stream\r\n\r\n".encode()
        )
        await writer.drain()
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                if line.startswith(b"id: "):
                    self.connected.set()
                if not line.startswith(b"data: "):
                    continue
                received = datetime.now(UTC)
                flag = (json.loads(line[6:]).get("flags") or {}).get(FLAG)
                serve = (flag or {}).get("default_serve") or {}
                if "split" in serve:
                    self.seen.setdefault(serve["split"][0]["weight"], received)
        except (ConnectionError, asyncio.CancelledError):
            return
        finally:
            writer.close()


async def call(port: int, method: str, path: str, token: str, body: Any = None) -> tuple[int, Any]:
    status, content = await request(port, method, path, token, body)
    return status, json.loads(content) if content.strip() else None


async def request(
    port: int, method: str, path: str, token: str, body: Any = None
) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    payload = json.dumps(body).encode() if body is not None else b""
    writer.write(
        (
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n"
        ).encode()
        + payload
    )
    await writer.drain()
    response = await reader.read()
    writer.close()
    head, _, content = response.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    if b"chunked" in head.lower():
        content = _unchunk(content)
    return status, content


def _unchunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out, data = out + data[:size], data[size + 2 :]
    return out


async def wait_completed(port: int, token: str, plan_id: int, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status, plan = await call(port, "GET", PLAN_PATH, token)
        if status == 200 and plan["id"] == plan_id and plan["status"] == "completed":
            return dict(plan)
        if time.monotonic() > deadline:
            raise SystemExit(f"plan #{plan_id} did not complete in {timeout:.0f} s: {plan}")
        await asyncio.sleep(0.2)


async def audit_steps(port: int, token: str, plan_id: int) -> list[int]:
    """Step numbers of the plan's rollout_plan.step events, oldest first (JSON Lines export)."""
    path = f"/api/v1/audit/?flag={FLAG}&action=rollout_plan.step&format=jsonl"
    status, body = await request(port, "GET", path, token)
    if status != 200:
        raise SystemExit(f"the audit export answered {status}: {body[:300]!r}")
    steps = []
    for line in body.splitlines():
        if line.strip():
            event = json.loads(line)
            if event["after"]["rollout_plan"]["id"] == plan_id:
                steps.append(event["after"]["rollout_plan"]["step"])
    return list(reversed(steps))


async def one_run(
    stack: Stack, tokens: dict[str, str], percentages: list[int], spacing: int, tick: float
) -> dict[str, Any]:
    subscriber = Subscriber(stack.port, tokens["server"])
    task = asyncio.create_task(subscriber.run())
    await asyncio.wait_for(subscriber.connected.wait(), timeout=30)
    start = datetime.now(UTC) + timedelta(seconds=5)
    steps: list[dict[str, Any]] = [{"percentage": percentages[0], "at": start.isoformat()}]
    steps += [{"percentage": p, "after": spacing} for p in percentages[1:]]
    status, plan = await call(
        stack.port, "PUT", PLAN_PATH, tokens["admin"], {"steps": steps, "reason": "bench"}
    )
    if status not in (200, 201):
        raise SystemExit(f"PUT rollout-plan answered {status}: {plan}")
    plan = await wait_completed(
        stack.port, tokens["admin"], plan["id"], 5 + spacing * len(percentages) + 30
    )
    await asyncio.sleep(max(1.0, tick))  # let the last patch reach the subscriber
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    rows = []
    for step in plan["steps"]:
        due, applied = moment(step["due_at"]), moment(step["applied_at"])
        seen = subscriber.seen.get(step["weight"])
        rows.append(
            {
                "step": step["step"],
                "percentage": step["percentage"],
                "due": due,
                "applied_ms": (applied - due).total_seconds() * 1000,
                "seen_ms": (seen - due).total_seconds() * 1000 if seen else None,
            }
        )
    return {
        "plan": plan["id"],
        "rows": rows,
        "audit": await audit_steps(stack.port, tokens["admin"], plan["id"]),
    }


def start_worker(stack: Stack) -> None:
    """Stack.start_worker's command, with the worker's banner and logs kept off the report."""
    log = (stack.tmp / "worker.log").open("wb")
    command = [
        PYTHON,
        "-m",
        "celery",
        "-A",
        "flagsvc",
        "worker",
        "--concurrency=2",
        "--loglevel=WARNING",
        "--beat",
        f"--schedule={stack.tmp / 'celerybeat-schedule'}",
    ]
    stack.processes.append(
        subprocess.Popen(
            command,
            cwd=ROOT,
            env=stack.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--spacing", type=int, default=5, help="seconds between steps")
    parser.add_argument("--tick", type=float, default=1.0, help="ROLLOUT_TICK_SECONDS")
    args = parser.parse_args()
    percentages = [round(100 * (n + 1) / args.steps) for n in range(args.steps)]
    target_ms = (args.tick + 1) * 1000
    extra = {"ROLLOUT_TICK_SECONDS": str(args.tick), "SDK_RATE_LIMIT_PER_SECOND": "0"}
    with running("ramp", redis_db=7, extra_env=extra) as stack:
        tokens = json.loads(stack.python(SETUP).strip().splitlines()[-1])
        stack.start_web()
        start_worker(stack)
        print(f"\nmachine:  {machine()}")
        print(f"server:   {stack.describe()}")
        print(
            f"worker:   celery -A flagsvc worker --beat --concurrency=2, broker "
            f"{stack.env['CELERY_BROKER_URL']}, ROLLOUT_TICK_SECONDS={args.tick:g}"
        )
        print(
            f"plan:     {args.steps} steps ({', '.join(f'{p}%' for p in percentages)}): step 1 "
            f"at now+5 s, then each {args.spacing} s after the previous one was applied; "
            f"{args.runs} runs"
        )
        print(
            "delays:   from the step's due time (recorded by the plan) to when the scheduler "
            "applied it, and to when a raw SSE subscriber (server key) read the new split\n"
        )
        worst = 0.0
        problems: list[str] = []
        for run in range(1, args.runs + 1):
            result = asyncio.run(one_run(stack, tokens, percentages, args.spacing, args.tick))
            expected = list(range(1, args.steps + 1))
            verdict = "each step once, in order" if result["audit"] == expected else "WRONG"
            print(
                f"run {run} (plan #{result['plan']}): audit rollout_plan.step events "
                f"{result['audit']} -> {verdict}"
            )
            print(f"  {'step':>4} {'pct':>5}  {'due (UTC)':<15} {'applied':>10} {'seen':>10}")
            for row in result["rows"]:
                seen = f"+{row['seen_ms']:.0f} ms" if row["seen_ms"] is not None else "NEVER"
                print(
                    f"  {row['step']:>4} {row['percentage']:>4g}%  {row['due']:%H:%M:%S.%f}"[:-3]
                    + f"  {'+' + format(row['applied_ms'], '.0f') + ' ms':>10} {seen:>10}"
                )
                if row["seen_ms"] is None:
                    problems.append(f"run {run} step {row['step']}: never seen")
                else:
                    worst = max(worst, row["seen_ms"])
            if result["audit"] != expected:
                problems.append(f"run {run}: audit steps {result['audit']} != {expected}")
        met = worst <= target_ms and not problems
        print(
            f"\nworst due->seen delay over {args.runs} runs: {worst:.0f} ms; target "
            f"<= beat interval + 1 s = {target_ms:.0f} ms, none twice, none skipped: "
            f"{'MET' if met else 'MISSED'}"
        )
        for problem in problems:
            print(f"  {problem}")


if __name__ == "__main__":
    main()
