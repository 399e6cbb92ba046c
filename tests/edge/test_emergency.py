"""A kill while the database is out: live everywhere within a second, recorded exactly once after."""

from __future__ import annotations

import contextlib
import io
import os
import time
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
import redis
from django.core.management import call_command
from django.db import DatabaseError, connection, connections

from audit.models import AuditEvent
from flags import propagation, services
from flags.models import EmergencyRecord, Flag, FlagState
from tests.edge.test_fanout_processes import (
    REDIS_TEST_URL,
    _Edge,
    _free_port,
    open_streams,
    wait_for_reports,
    web_workers,
)
from tests.edge.test_fanout_processes import two_workers as two_workers  # a fixture used here

pytestmark = [pytest.mark.postgres, pytest.mark.integration]

KILL = "/api/v1/flags/new-checkout/kill/"
OFREP = "/ofrep/v1/evaluate/flags/new-checkout"
KILLED = ("internal-tool", "price", "new-checkout")  # by the tag kill and the trigger


@contextlib.contextmanager
def database_refusing_connections() -> Iterator[None]:
    """What an outage looks like to the service: every connection to its database refused."""
    name = connection.settings_dict["NAME"]
    admin = psycopg.connect(
        f"postgres://{connection.settings_dict['USER']}@127.0.0.1:5432/postgres", autocommit=True
    )
    connection.close()
    try:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        yield
    finally:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        admin.close()
        # This process's connections were terminated and its pool may be backing off: start
        # afresh, so that a failure inside does not leave later tests without a database.
        connections.close_all()
        connection.close_pool()  # type: ignore[attr-defined]  # PostgreSQL's wrapper has it


@pytest.fixture
def workers(two_workers: _Edge) -> _Edge:
    wait_for_reports()  # both processes report what they serve
    return two_workers


def kills_recorded(*flags: str) -> int:
    """Counted once the test's own connections (terminated with the others) are replaced."""
    deadline = time.monotonic() + 10
    while True:
        connection.close()
        try:
            return AuditEvent.objects.filter(
                action="flag.kill", flag_key__in=flags or ["new-checkout"]
            ).count()
        except DatabaseError:
            assert time.monotonic() < deadline
            time.sleep(0.1)


def test_kill_with_the_database_down__live_on_every_stream_within_a_second_then_recorded_once(
    workers: _Edge, world: dict[str, Any]
) -> None:
    readers = open_streams(workers, world["tokens"]["server"])
    try:
        with database_refusing_connections():
            started = time.monotonic()
            with workers.client(world["tokens"]["kill"]) as client:
                response = client.post(
                    KILL, json={"environment": "production", "reason": "db on fire"}
                )
            answer = response.json()
            assert response.status_code == 200, answer
            assert answer["emergency"] is True and answer["durable"] is False
            assert "durable record is PENDING" in answer["message"]
            assert answer["propagation"]["message"].startswith("confirmed by ")
            version = answer["environment_version"]
            while not all(
                any(data.get("version") == version for *_, data in r.events) for r in readers
            ):
                assert time.monotonic() - started < 1.0, "a stream did not get the kill in 1 s"
                time.sleep(0.005)
            to_every_stream = time.monotonic() - started
            with workers.client(world["tokens"]["server"]) as client:
                for _ in range(4):  # both processes
                    evaluated = client.post(OFREP, json={"context": {"targetingKey": "u1"}})
                    assert evaluated.json()["reason"] == "DISABLED"
                    assert client.get("/api/v1/sdk/snapshot/").status_code == 200
            with workers.client() as client:  # still in rotation, saying what is down
                ready = client.get("/readyz")
            assert ready.status_code == 200 and ready.json()["checks"]["database"] == "down"
            back = time.monotonic()
        # The database is back: the kill is written to it and to the audit trail, once.
        deadline = time.monotonic() + 15
        while True:
            connection.close()
            with contextlib.suppress(Exception):
                if FlagState.objects.filter(
                    flag__key="new-checkout", environment__key="production", killed_at__isnull=False
                ).exists():
                    break
            assert time.monotonic() < deadline, "the emergency kill was never recorded"
            time.sleep(0.1)
        replayed = time.monotonic() - back
        time.sleep(1.5)  # every process has had its turn at the journal
        assert kills_recorded() == 1
        print(
            f"emergency kill: every stream in {to_every_stream * 1000:.0f} ms; "
            f"recorded {replayed:.1f} s after the database returned"
        )
        event = AuditEvent.objects.get(action="flag.kill", flag_key="new-checkout")
        assert event.actor == "kill-key" and "db on fire" in event.reason
        assert "emergency kill" in event.reason
        assert EmergencyRecord.objects.count() == 1
        assert redis.Redis.from_url(REDIS_TEST_URL).xlen("flagsvc:journal") == 0
        out = io.StringIO()
        call_command("audit_verify", stdout=out)
        assert "OK" in out.getvalue() or "ok" in out.getvalue().lower()
        # Every process converges on the database's version of the kill.
        with workers.client(world["tokens"]["server"]) as client:
            deadline = time.monotonic() + 10
            while client.get("/api/v1/sdk/snapshot/").json()["revision"].startswith("em"):
                assert time.monotonic() < deadline
                time.sleep(0.1)
    finally:
        for reader in readers:
            reader.close()


def test_tag_kill_and_trigger_with_the_database_down__applied_then_recorded_once(
    world: dict[str, Any], settings: Any
) -> None:
    if not os.environ.get("REDIS_URL"):
        pytest.skip("needs Redis: set REDIS_URL")
    # Given tagged flags and a trigger URL, known to the web processes when they started
    actor = world["actor"]
    for key in ("internal-tool", "price"):
        services.flag_update(actor=actor, flag=Flag.objects.get(key=key), tags=["payments"])
    _, secret = services.trigger_create(
        actor=actor, name="apm", flag=world["checkout"], environment=world["production"]
    )
    redis.Redis.from_url(REDIS_TEST_URL).flushdb()
    settings.REDIS_URL = REDIS_TEST_URL
    with web_workers(REDIS_TEST_URL) as edge:
        wait_for_reports()
        with database_refusing_connections():
            with edge.client(world["tokens"]["kill"]) as client:
                tagged = client.post(
                    "/api/v1/kill/",
                    json={"tag": "payments", "environment": "production", "reason": "psp down"},
                )
            with edge.client() as client:
                fired = client.post(f"/api/v1/triggers/{secret}/", json={"note": "5xx > 5%"})
            assert tagged.status_code == 200, tagged.json()
            assert tagged.json()["changed"] == ["internal-tool", "price"]
            assert tagged.json()["emergency"] is True and tagged.json()["durable"] is False
            assert fired.status_code == 200, fired.json()
            assert fired.json()["flag"] == "new-checkout" and fired.json()["killed"] is True
            # Each answer waited (at most a second) for every process to confirm; a process
            # that had not confirmed yet serves the kills moments later, never not at all.
            confirmed = [tagged.json()["propagation"], fired.json()["propagation"]]
            deadline = time.monotonic() + 5
            for _ in range(4):  # a new connection each time: both processes, likely
                with edge.client(world["tokens"]["server"]) as client:
                    while True:
                        flags = client.get("/api/v1/sdk/snapshot/").json()["flags"]
                        live = [key for key in flags if key in KILLED and flags[key]["kill"]]
                        if len(live) == len(KILLED):
                            break
                        assert time.monotonic() < deadline, f"served killed: {live}; {confirmed}"
                        time.sleep(0.05)
        # Then, once the database is back, each is recorded once, the tag kill under one incident
        deadline = time.monotonic() + 15
        while kills_recorded("new-checkout", "internal-tool", "price") < 3:
            assert time.monotonic() < deadline, "the journal was not replayed"
            time.sleep(0.2)
        time.sleep(1.5)
        assert kills_recorded("new-checkout", "internal-tool", "price") == 3
        events = AuditEvent.objects.filter(action="flag.kill")
        assert {e.actor for e in events} == {"kill-key", "trigger:apm"}
        assert len({e.incident_id for e in events if e.actor == "kill-key"}) == 1


def test_kill_with_the_database_and_redis_down__503_naming_the_last_resort(
    world: dict[str, Any], settings: Any
) -> None:
    dead_redis = f"redis://127.0.0.1:{_free_port()}/0"
    settings.REDIS_URL = dead_redis
    with web_workers(dead_redis, ready_path="/healthz", EDGE_FALLBACK_WATCH_SECONDS="0.2") as edge:
        time.sleep(2)  # the processes load their keys and snapshots from the database
        with database_refusing_connections(), edge.client(world["tokens"]["kill"]) as client:
            response = client.post(KILL, json={"environment": "production", "reason": "x"})
    assert response.status_code == 503
    assert response.headers["retry-after"]
    error = response.json()["error"]
    assert error["code"] == "database_and_cache_unavailable"
    assert "nothing was changed" in error["message"] and "docs/runbook.md" in error["message"]
    assert kills_recorded() == 0


def test_cli_kill_emergency__applied_through_redis_then_recorded_once(
    live_edge: Any, world: dict[str, Any], settings: Any
) -> None:
    if not settings.REDIS_URL:
        pytest.skip("needs Redis (REDIS_URL)")
    deadline = time.monotonic() + 10
    while not propagation.reports():  # the in-process edge has reported what it serves
        assert time.monotonic() < deadline
        time.sleep(0.05)
    out = io.StringIO()
    call_command(
        "kill",
        "new-checkout",
        "-e",
        "production",
        "-r",
        "from the bastion",
        "--emergency",
        stdout=out,
    )
    assert "EMERGENCY: KILLED new-checkout in production through Redis" in out.getvalue()
    assert "Its durable record is PENDING" in out.getvalue()
    assert "Propagation: confirmed by 1 of 1 edge processes" in out.getvalue()
    # The edge's replay loop records it (the database is up here) — once.
    deadline = time.monotonic() + 10
    while kills_recorded() == 0:
        assert time.monotonic() < deadline, "the journal was not replayed"
        time.sleep(0.1)
    time.sleep(1.5)
    assert kills_recorded() == 1
    state = FlagState.objects.get(flag__key="new-checkout", environment__key="production")
    assert state.killed and "from the bastion" in state.kill_reason


def database_state(edge: _Edge) -> str:
    with contextlib.suppress(httpx.HTTPError), edge.client() as client:
        return str(client.get("/readyz", timeout=10).json()["checks"]["database"])
    return "no answer"


def test_database_back_after_an_outage_longer_than_the_pool_retries__ready_within_seconds(
    world: dict[str, Any], settings: Any
) -> None:
    if not os.environ.get("REDIS_URL"):
        pytest.skip("needs Redis: set REDIS_URL")
    redis.Redis.from_url(REDIS_TEST_URL).flushdb()
    settings.REDIS_URL = REDIS_TEST_URL
    # A short retry window stands for the default 10 s, to keep the outage short: without it,
    # psycopg's pool retries at 1, 3, 7, 15 s… and would be back 7 s after this 8 s outage.
    with web_workers(REDIS_TEST_URL, workers=1, DATABASE_POOL_RECONNECT_TIMEOUT="2") as edge:
        assert database_state(edge) == "ok"
        with database_refusing_connections():
            outage = time.monotonic() + 8
            while time.monotonic() < outage:  # requests keep coming while it is out
                assert database_state(edge) != "ok"
                time.sleep(0.3)
        back = time.monotonic()
        while (state := database_state(edge)) != "ok":
            assert time.monotonic() - back < 3, f"still {state!r} 3 s after the database returned"
            time.sleep(0.1)
        print(f"database ready again {time.monotonic() - back:.1f} s after it returned")
