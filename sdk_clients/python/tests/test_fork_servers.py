"""Fork safety where it matters: gunicorn --preload workers and a Celery prefork worker, both
forked after the client started in their parent, each seeing a kill within a second or two."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import LiveFlagsvc, wait_until

pytestmark = pytest.mark.live
HERE = Path(__file__).resolve().parent
KEY = "payments.provider-b"
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def environment(live: LiveFlagsvc, **extra: str) -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    return {
        **inherited,
        "FLAGSVC_URL": live.url,
        "FLAGSVC_SDK_KEY": live.server_key,
        "PYTHONPATH": str(HERE / "forkapps"),
        **extra,
    }


def stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture
def gunicorn(live: LiveFlagsvc, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [
            str(BIN / "gunicorn"),
            "--preload",
            "--workers",
            "2",
            "--bind",
            f"127.0.0.1:{port}",
            "--chdir",
            str(HERE / "forkapps"),
            "wsgi_app:app",
        ],
        env=environment(live),
        stdout=open(tmp_path / "gunicorn.log", "w"),  # noqa: SIM115 - the process owns it
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _get(url) is not None, timeout=30, interval=0.2)
        yield url
    finally:
        stop(process)


def _get(url: str) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(url + "/" + KEY, timeout=5) as response:
            return json.loads(response.read())
    except OSError:
        return None


def answers_by_worker(url: str, workers: int) -> dict[int, dict[str, Any]]:
    seen: dict[int, dict[str, Any]] = {}
    deadline = time.monotonic() + 10
    while len(seen) < workers and time.monotonic() < deadline:
        answer = _get(url)
        if answer is not None:
            seen[answer["pid"]] = answer
    assert len(seen) == workers, seen
    return seen


def test_gunicorn_preload__every_worker_has_its_own_updater_and_sees_a_kill(
    live: LiveFlagsvc, gunicorn: str
) -> None:
    before = answers_by_worker(gunicorn, 2)
    for answer in before.values():
        assert answer["pid"] != answer["master"]  # forked from the master that made the client
        assert answer["enabled"] is True
        assert answer["updater"] == f"flagsvc-updater-{answer['pid']}"  # started in the worker
    started = time.monotonic()
    live.kill(KEY)
    try:

        def all_killed() -> bool:
            return all(not a["enabled"] for a in answers_by_worker(gunicorn, 2).values())

        wait_until(all_killed, timeout=2.0, interval=0.01)
        assert time.monotonic() - started < 2.0
    finally:
        live.restore(KEY)
    wait_until(
        lambda: all(a["enabled"] for a in answers_by_worker(gunicorn, 2).values()), timeout=3
    )


@pytest.fixture
def celery_worker(live: LiveFlagsvc, tmp_path: Path) -> Iterator[Any]:
    broker = tmp_path / "broker"
    for folder in ("queue", "processed", "results", "control"):
        (broker / folder).mkdir(parents=True)
    env = environment(live, CELERY_TEST_DIR=str(broker))
    process = subprocess.Popen(
        [
            str(BIN / "celery"),
            "-A",
            "celery_app",
            "worker",
            "--pool",
            "prefork",
            "--concurrency",
            "2",
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-Q",
            "flagsvc-sdk-tests",
        ],
        env=env,
        cwd=HERE / "forkapps",
        stdout=open(tmp_path / "celery.log", "w"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    os.environ["CELERY_TEST_DIR"] = str(broker)
    os.environ.setdefault("FLAGSVC_URL", live.url)
    os.environ.setdefault("FLAGSVC_SDK_KEY", live.server_key)
    sys.path.insert(0, str(HERE / "forkapps"))
    try:
        import celery_app

        yield celery_app
        celery_app.client.close()
    finally:
        stop(process)
        sys.path.remove(str(HERE / "forkapps"))


def results_by_child(celery_app: Any, children: int) -> dict[int, dict[str, Any]]:
    seen: dict[int, dict[str, Any]] = {}
    deadline = time.monotonic() + 30
    while len(seen) < children and time.monotonic() < deadline:
        pending = [celery_app.check.delay(KEY) for _ in range(4)]
        for result in pending:
            answer = result.get(timeout=30, interval=0.02)
            seen[answer["pid"]] = answer
    assert len(seen) == children, seen
    return seen


def test_celery_prefork__every_child_keeps_its_flags_fresh(
    live: LiveFlagsvc, celery_worker: Any
) -> None:
    before = results_by_child(celery_worker, 2)
    for answer in before.values():
        assert answer["pid"] != answer["parent"]
        assert answer["enabled"] is True
        assert answer["updater"] is True
    live.kill(KEY)
    try:
        time.sleep(1.0)  # a second for the stream to reach every child
        after = results_by_child(celery_worker, 2)
        assert all(answer["enabled"] is False for answer in after.values()), after
    finally:
        live.restore(KEY)
