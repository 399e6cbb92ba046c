"""The production launcher: N uvicorn processes on one SO_REUSEPORT port, restarted when they die."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.edge.test_fanout_processes import wait_until_serving
from tests.test_make_run import embedded_env, free_port

ROOT = Path(__file__).resolve().parent.parent


def _pids(url: str, connections: int = 24) -> set[int]:
    pids = set()
    for _ in range(connections):  # a new connection each time: the kernel picks a socket
        with httpx.Client() as client:
            pids.add(client.get(f"{url}/healthz", timeout=5).json()["pid"])
    return pids


@pytest.mark.integration
def test_serve__spreads_connections_over_workers_restarts_them_and_stops_cleanly(
    tmp_path: Path,
) -> None:
    env = embedded_env(tmp_path)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    launcher = subprocess.Popen(
        [sys.executable, "-m", "flagsvc.serve", "--port", str(port), "--workers", "2"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                pids = _pids(url)
                if len(pids) == 2:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "two workers did not answer"
            time.sleep(0.3)
        # keep-alive answers are not held back by Nagle + delayed ACK (40 ms each when
        # the workers' sockets lack TCP_NODELAY, as with `uvicorn --fd`)
        with httpx.Client(base_url=url) as client:
            client.get("/healthz")
            timings = []
            for _ in range(21):
                started = time.perf_counter()
                client.get("/healthz")
                timings.append(time.perf_counter() - started)
        assert sorted(timings)[10] < 0.02, sorted(timings)
        # a worker that dies is replaced
        victim = sorted(pids)[0]
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while True:
            try:
                now = _pids(url)
                if len(now) == 2 and victim not in now:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the dead worker was not replaced"
            time.sleep(0.3)
    finally:
        launcher.send_signal(signal.SIGTERM)
        output, _ = launcher.communicate(timeout=30)
    assert launcher.returncode == 0, output
    assert "starting another" in output
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{url}/healthz", timeout=1)


@pytest.mark.integration
def test_serve__sigterm_ends_open_sdk_streams_at_once__no_graceful_timeout_wait_no_errors(
    tmp_path: Path,
) -> None:
    env = embedded_env(tmp_path)
    for command in (["migrate", "--no-input"], ["seed_demo"]):
        subprocess.run(
            [sys.executable, "manage.py", *command],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
    issued = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "issue_token",
            "--kind",
            "server",
            "-e",
            "production",
            "--name",
            "svc",
        ],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    key = issued.stdout.strip().splitlines()[-1]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    launcher = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "flagsvc.serve",
            "--port",
            str(port),
            "--workers",
            "1",
            "--timeout-graceful-shutdown",
            "20",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    streams: list[Any] = []
    try:
        wait_until_serving(url)
        client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
        for _ in range(3):
            stream = client.stream("GET", "/api/v1/sdk/stream/")
            response = stream.__enter__()
            assert response.status_code == 200
            lines = response.iter_lines()
            while not next(lines).startswith("data:"):  # past the opening snapshot event
                pass
            streams.append((stream, lines))
        stopping = time.monotonic()
        launcher.send_signal(signal.SIGTERM)
        for _, lines in streams:  # each stream ends (the SDK reconnects elsewhere)
            for _ in lines:
                pass
        output, _ = launcher.communicate(timeout=30)
        stopped = time.monotonic() - stopping
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.communicate()
    print(f"stopped {stopped:.2f} s after SIGTERM with 3 streams open (graceful timeout 20 s)")
    assert launcher.returncode == 0, output
    assert stopped < 5, f"took {stopped:.1f} s to stop (graceful timeout 20 s)\n{output}"
    assert "ended 3 SDK stream(s)" in output, output
    assert "Exception in ASGI application" not in output and "Traceback" not in output, output
