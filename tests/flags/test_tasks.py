"""The ``advance_rollouts`` task with real Celery workers: PostgreSQL + Redis, and the embedded default.

The workers are subprocesses (``python -m celery -A flagsvc worker``) on the test
database and a Redis broker (database 13, a queue of this run's own); beat is real
(``--beat``) or the test sends the tick itself.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from celery import Celery
from django.db import connection
from django.utils import timezone

from audit.models import AuditEvent
from audit.recorder import Actor
from flags import rollouts, services
from flags.models import Environment, Flag, FlagState, RolloutPlan
from flags.tasks import advance_rollouts

ROOT = Path(__file__).resolve().parents[2]
BROKER_URL = "redis://127.0.0.1:6379/13"
TICK = 0.5


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


class Workers:
    """Celery worker processes on this test's database and its own queue on the Redis broker."""

    def __init__(self, tmp_path: Path) -> None:
        db = connection.settings_dict
        self.tmp = tmp_path
        self.queue = f"flagsvc-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "CELERY_"))},
            "DJANGO_SETTINGS_MODULE": "flagsvc.settings",
            "DEBUG": "false",
            # SECRET_KEY: the test process's (flagsvc.settings_test), as every process of one
            # deployment shares it: sealed webhook secrets open in all of them.
            "ALLOWED_HOSTS": "127.0.0.1",
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:"
            f"{db['PORT'] or 5432}/{db['NAME']}",
            "CELERY_BROKER_URL": BROKER_URL,
            "CELERY_TASK_DEFAULT_QUEUE": self.queue,
            "ROLLOUT_TICK_SECONDS": str(TICK),
            "FLAGSVC_VAR_DIR": str(tmp_path),
            "LOG_LEVEL": "WARNING",
        }
        self.processes: list[tuple[subprocess.Popen[bytes], Path]] = []
        self.sender = Celery(broker=BROKER_URL)
        self.sender.conf.task_default_queue = self.queue

    def start(self, name: str, *, beat: bool = False, concurrency: int = 1) -> int:
        log = self.tmp / f"{name}.log"
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "flagsvc",
            "worker",
            f"--hostname={name}@%h",
            f"--concurrency={concurrency}",
            "--pool=prefork",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
        ]
        if beat:
            command += ["--beat", f"--schedule={self.tmp / f'{name}-beat'}"]
        with log.open("wb") as output:
            process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=self.env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append((process, log))
        _wait(lambda: b" ready." in log.read_bytes(), 60, f"worker {name} to start")
        return process.pid

    def tick(self, task_id: str | None = None) -> None:
        """One advance_rollouts message, as beat sends it (a given id simulates a duplicate)."""
        self.sender.send_task("flags.advance_rollouts", kwargs={"hint": False}, task_id=task_id)

    def logs(self) -> str:
        return "\n".join(
            f"--- {log.name}\n{log.read_text(errors='replace')[-4000:]}"
            for _, log in self.processes
        )

    def stop(self) -> None:
        for process, _ in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process, _ in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        client = redis.Redis.from_url(BROKER_URL)
        client.delete(self.queue)


@pytest.fixture
def workers(transactional_db: None, tmp_path: Path) -> Iterator[Workers]:
    if not os.environ.get("REDIS_URL"):
        pytest.skip("needs Redis: set REDIS_URL")
    group = Workers(tmp_path)
    try:
        yield group
    finally:
        group.stop()
        print(group.logs())  # shown by pytest only when the test failed


@pytest.fixture
def world(transactional_db: None) -> dict[str, Any]:
    actor = Actor.cli("tester")
    production = services.environment_create(actor=actor, key="production")
    flag = services.flag_create(actor=actor, key="new-checkout")
    services.flag_state_update(actor=actor, flag=flag, environment=production, enabled=True)
    return {"actor": actor, "production": production, "flag": flag}


def _plan(world: dict[str, Any], steps: list[dict[str, Any]]) -> RolloutPlan:
    return rollouts.rollout_plan_create(
        actor=world["actor"], flag=world["flag"], environment=world["production"], steps=steps
    )


def _steps_applied(plan: RolloutPlan) -> list[AuditEvent]:
    """The plan's state changes on the audit trail: the scheduler's steps and people's skips."""
    events = AuditEvent.objects.filter(
        action__in=("rollout_plan.step", "rollout_plan.skip")
    ).order_by("sequence")
    return [e for e in events if e.after["rollout_plan"]["id"] == plan.pk]


def _weight(flag: Flag, environment: Environment) -> int:
    serve = FlagState.objects.get(flag=flag, environment=environment).default_serve
    return int(serve["split"][0]["weight"]) if "split" in serve else -1


def _status(plan: RolloutPlan) -> str:
    return RolloutPlan.objects.get(pk=plan.pk).status


def _in(seconds: float) -> str:
    return (timezone.now() + timedelta(seconds=seconds)).isoformat()


@pytest.mark.postgres
@pytest.mark.integration
def test_two_workers_each_with_beat__apply_every_step_once_and_on_time(
    workers: Workers, world: dict[str, Any]
) -> None:
    # Given two workers, each running beat by mistake (two ticks every TICK seconds)
    workers.start("one", beat=True, concurrency=2)
    workers.start("two", beat=True, concurrency=2)
    # When a plan's steps fall due a second or two apart
    plan = _plan(
        world,
        [
            {"percentage": 10, "at": _in(2)},
            {"percentage": 20, "after": 1},
            {"percentage": 35.5, "after": 1},
            {"percentage": 50, "at": _in(6)},
            {"percentage": 100, "after": 1},
        ],
    )
    _wait(lambda: _status(plan) == "completed", 40, "the plan to complete")
    # Then each step was applied exactly once, in order, by the scheduler, soon after it fell due
    events = _steps_applied(plan)
    assert [e.after["rollout_plan"]["step"] for e in events] == [1, 2, 3, 4, 5]
    assert {e.actor for e in events} == {"scheduler"}
    assert [e.after["default_serve"]["split"][0]["weight"] for e in events] == [
        1000,
        2000,
        3550,
        5000,
        10000,
    ]
    versions = [e.after["version"] for e in events]
    assert versions == sorted(set(versions))
    for step in RolloutPlan.objects.get(pk=plan.pk).steps.all():
        assert step.due_at is not None and step.applied_at is not None
        assert timedelta(0) <= step.applied_at - step.due_at < timedelta(seconds=TICK + 1), step
    assert _weight(world["flag"], world["production"]) == 10000


@pytest.mark.postgres
@pytest.mark.integration
def test_duplicated_ticks_on_two_workers__apply_nothing_twice(
    workers: Workers, world: dict[str, Any]
) -> None:
    workers.start("one", concurrency=4)
    workers.start("two", concurrency=4)
    plan = _plan(
        world,
        [
            {"percentage": 5, "at": _in(1)},
            {"percentage": 15, "after": 1},
            {"percentage": 25, "after": 1},
        ],
    )
    # Every 50 ms, the same message twice (as a broker redelivering it) plus a fresh one.
    deadline = time.monotonic() + 30
    while _status(plan) != "completed":
        assert time.monotonic() < deadline, "the plan did not complete"
        task_id = str(uuid.uuid4())
        workers.tick(task_id)
        workers.tick(task_id)
        workers.tick()
        time.sleep(0.05)
    time.sleep(1)  # let the queued duplicates run too
    events = _steps_applied(plan)
    assert [e.after["rollout_plan"]["step"] for e in events] == [1, 2, 3]
    assert _weight(world["flag"], world["production"]) == 2500


@pytest.mark.postgres
@pytest.mark.integration
def test_worker_killed_mid_step__rolls_back_then_the_redelivered_task_applies_it_once(
    workers: Workers, world: dict[str, Any]
) -> None:
    plan = _plan(world, [{"percentage": 10}, {"percentage": 20, "after": "1h"}])
    version = Environment.objects.get(pk=world["production"].pk).version
    db = connection.settings_dict
    holder = psycopg.connect(
        host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"], dbname=db["NAME"]
    )
    try:
        # Given the worker will block inside the step's transaction, after changing the
        # state and the environment version, when it appends to the audit chain
        holder.execute("SELECT * FROM audit_auditchainhead WHERE id = 1 FOR UPDATE")
        main_pid = workers.start("victim", concurrency=1)
        workers.tick()

        def blocked_backend() -> int | None:
            holder.execute("SELECT pg_stat_clear_snapshot()")  # a fresh view every time
            row = holder.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            ).fetchone()
            return int(row[0]) if row else None

        _wait(lambda: blocked_backend() is not None, 20, "the step to block on the audit chain")
        backend = blocked_backend()
        # When the pool process is killed mid-task (its database session goes with it)
        (child,) = subprocess.run(
            ["pgrep", "-P", str(main_pid)], capture_output=True, text=True
        ).stdout.split()
        os.kill(int(child), signal.SIGKILL)
        holder.execute("SELECT pg_terminate_backend(%s)", [backend])
    finally:
        holder.rollback()
        holder.close()
    # Then nothing of the killed attempt remains, and the broker's redelivery (late ack,
    # reject on worker lost) applies the step exactly once, with no further tick sent
    _wait(lambda: len(_steps_applied(plan)) == 1, 30, "the redelivered task to apply the step")
    time.sleep(1)
    (event,) = _steps_applied(plan)
    assert event.after["rollout_plan"]["step"] == 1
    assert Environment.objects.get(pk=world["production"].pk).version == version + 1
    assert _weight(world["flag"], world["production"]) == 1000
    assert "WorkerLostError" in workers.logs()


@pytest.mark.postgres
@pytest.mark.integration
def test_kill_pause_resume_skip_abort__with_beat_running(
    workers: Workers, world: dict[str, Any]
) -> None:
    actor, flag, production = world["actor"], world["flag"], world["production"]
    workers.start("one", beat=True, concurrency=2)
    plan = _plan(
        world,
        [
            {"percentage": 10},
            {"percentage": 20, "after": 2},
            {"percentage": 30, "after": 2},
            {"percentage": 40, "after": 2},
            {"percentage": 50, "after": 2},
        ],
    )
    _wait(lambda: len(_steps_applied(plan)) == 1, 15, "step 1")

    # A kill pauses the plan; nothing advances while it is paused, not even after restore
    outcome = services.flag_kill(actor=actor, flag=flag, environment=production, reason="5xx")
    assert _status(plan) == "paused"
    time.sleep(3)
    services.flag_restore(actor=actor, flag=flag, environment=production, reason="fixed")
    time.sleep(1.5)
    assert len(_steps_applied(plan)) == 1 and _status(plan) == "paused"
    pause = AuditEvent.objects.get(action="rollout_plan.pause")
    assert pause.actor == "tester" and str(outcome.state.kill_incident) in pause.reason

    # Resume: step 2 comes 2 s later (the delay counts from the resume)
    resumed_at = timezone.now()
    rollouts.rollout_plan_resume(actor=actor, plan=plan, reason="all clear")
    _wait(lambda: len(_steps_applied(plan)) == 2, 10, "step 2 after resume")
    step_two = RolloutPlan.objects.get(pk=plan.pk).steps.get(number=2)
    assert step_two.applied_at is not None
    assert step_two.applied_at - resumed_at >= timedelta(seconds=2)

    # Skip to step 4 by hand; the scheduler carries on with step 5 two seconds later
    rollouts.rollout_plan_skip_to_step(actor=actor, plan=plan, step=4, reason="looks good")
    _wait(lambda: _status(plan) == "completed", 10, "step 5")
    events = _steps_applied(plan)
    assert [(e.action, e.actor, e.after["rollout_plan"]["step"]) for e in events] == [
        ("rollout_plan.step", "scheduler", 1),
        ("rollout_plan.step", "scheduler", 2),
        ("rollout_plan.skip", "tester", 4),
        ("rollout_plan.step", "scheduler", 5),
    ]
    assert _weight(flag, production) == 5000

    # Abort: a new plan that is aborted before its first step never applies it
    second = rollouts.rollout_plan_replace(
        actor=actor, flag=flag, environment=production, steps=[{"percentage": 60, "after": 2}]
    )
    rollouts.rollout_plan_abort(actor=actor, plan=second, reason="changed my mind")
    time.sleep(3)
    assert _steps_applied(second) == [] and _weight(flag, production) == 5000


# --- the tick's extra runs between ticks (no broker: apply_async is recorded) --------------------


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch, settings: Any) -> list[dict[str, Any]]:
    settings.ROLLOUT_TICK_SECONDS = 15
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(advance_rollouts, "apply_async", lambda **kw: calls.append(kw))
    return calls


@pytest.mark.django_db
def test_tick__applies_due_steps_and_queues_one_run_for_the_next_due_before_the_next_tick(
    world: dict[str, Any], queued: list[dict[str, Any]]
) -> None:
    plan = _plan(world, [{"percentage": 10}, {"percentage": 20, "after": 3}])
    assert advance_rollouts() == 1
    (run,) = queued
    assert run["eta"] == RolloutPlan.objects.get(pk=plan.pk).next_due_at
    horizon = run["kwargs"]["until"]
    assert run["kwargs"]["hint"] is True
    assert 14 < horizon - timezone.now().timestamp() <= 15
    # a queued run keeps the tick's horizon: it queues the next due only if it is before it
    assert advance_rollouts(until=horizon) == 0 and len(queued) == 2
    assert advance_rollouts(until=timezone.now().timestamp()) == 0 and len(queued) == 2


@pytest.mark.django_db
def test_tick__next_step_after_the_next_tick__queues_nothing(
    world: dict[str, Any], queued: list[dict[str, Any]]
) -> None:
    _plan(world, [{"percentage": 10}, {"percentage": 20, "after": "1m"}])
    assert advance_rollouts() == 1 and queued == []
    assert advance_rollouts(hint=False) == 0 and queued == []


# --- the embedded default: SQLite and the filesystem broker, as `make run` starts them -----------


@pytest.mark.integration
def test_embedded_default__worker_with_beat_on_the_filesystem_broker_advances_a_plan(
    tmp_path: Path,
) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "SECRET_KEY")
    }
    env.update(
        DEBUG="true",
        FLAGSVC_VAR_DIR=str(tmp_path),
        DJANGO_SETTINGS_MODULE="flagsvc.settings",
        ROLLOUT_TICK_SECONDS=str(TICK),
        LOG_LEVEL="WARNING",
    )

    def manage(*args: str) -> str:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    manage("migrate", "--no-input", "-v0")
    manage(
        "shell",
        "-c",
        "from audit.recorder import Actor; from flags import rollouts, services\n"
        "a = Actor.cli('laptop'); e = services.environment_create(actor=a, key='development')\n"
        "f = services.flag_create(actor=a, key='new-checkout')\n"
        "rollouts.rollout_plan_create(actor=a, flag=f, environment=e, "
        "steps=[{'percentage': 10}, {'percentage': 50, 'after': 1}])",
    )
    log = tmp_path / "worker.log"
    # The worker command of `make run` (flagsvc/run.py): a worker with embedded beat.
    with log.open("wb") as output:
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "flagsvc",
                "worker",
                "--beat",
                "--loglevel=INFO",
                "--concurrency=1",
                f"--schedule={tmp_path / 'celerybeat-schedule'}",
            ],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def steps() -> list[tuple[str, str]]:
        with sqlite3.connect(tmp_path / "flagsvc.sqlite3") as database:
            return database.execute(
                "SELECT actor, reason FROM audit_auditevent WHERE action = 'rollout_plan.step' "
                "ORDER BY sequence"
            ).fetchall()

    try:
        _wait(lambda: len(steps()) == 2, 60, "two steps on the embedded stack")
    except AssertionError:
        print(log.read_text(errors="replace")[-4000:])
        raise
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=20)
    assert steps() == [
        ("scheduler", "rollout plan #1 step 1/2: 10%"),
        ("scheduler", "rollout plan #1 step 2/2: 50%"),
    ]
    assert (tmp_path / "celery" / "queue").is_dir()  # the ticks went through the filesystem broker
