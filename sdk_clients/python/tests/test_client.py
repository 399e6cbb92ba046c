"""The client's protocol against a scripted flagsvc: ETag polling, the stream's patch and
version events, Last-Event-ID, fallbacks, 401/403, malformed data, fork, thread safety."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import FakeFlagsvc, flag, snapshot, sse, wait_until

from flagsvc_sdk import FlagsvcClient, Status
from flagsvc_sdk.client import FIRST_RETRY_SECONDS

SNAPSHOT = "/api/v1/sdk/snapshot/"
STREAM = "/api/v1/sdk/stream/"


def client_of(fake: FakeFlagsvc, **options: Any) -> FlagsvcClient:
    options.setdefault("timeout", 2.0)
    return FlagsvcClient(fake.url, "fsv_server_test", **options)


def patch(version: int, previous: int, flags: dict[str, Any]) -> bytes:
    data = {
        "environment": "production",
        "version": version,
        "previous_version": previous,
        "flags": flags,
        "segments": {},
    }
    return sse("patch", version, data)


def test_start__gets_the_gzip_snapshot_with_the_key_and_serves_it(fake: FakeFlagsvc) -> None:
    with client_of(fake, stream=False) as client:
        assert client.wait_for_ready(5) is True
        assert client.is_enabled("beta", {"targetingKey": "u1"}) is True
        assert client.status == Status.READY
    headers = fake.last(SNAPSHOT)
    assert headers["authorization"] == "Bearer fsv_server_test"
    assert "gzip" in headers["accept-encoding"]
    assert "if-none-match" not in headers


def test_polling__sends_the_etag__304_keeps_the_snapshot__a_new_version_is_installed(
    fake: FakeFlagsvc,
) -> None:
    changes: list[frozenset[str]] = []
    with client_of(fake, stream=False, poll_interval=0.2) as client:
        client.on_change(changes.append)
        assert client.wait_for_ready(5)
        wait_until(lambda: fake.count(SNAPSHOT) >= 3)
        assert fake.last(SNAPSHOT)["if-none-match"] == '"production:1-r1:gzip"'
        assert client.version == 1
        fake.document = snapshot(2, flag("beta", enabled=False), flag("gamma"))
        wait_until(lambda: client.version == 2, timeout=2)
        assert client.is_enabled("beta") is False
        assert client.is_enabled("gamma") is True
        assert client.evaluate("beta").reason == "DISABLED"
    assert changes[0] == {"beta"}  # the first install from nothing
    assert changes[-1] == {"beta", "gamma"}


@pytest.mark.parametrize("status", [401, 403])
def test_refused_key__stops_all_network_activity_with_one_error(
    fake: FakeFlagsvc, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    fake.status = status
    caplog.set_level(logging.WARNING, logger="flagsvc_sdk")
    started = time.monotonic()
    with client_of(fake, poll_interval=0.1, defaults={"beta": True}) as client:
        assert client.wait_for_ready(5) is False
        assert time.monotonic() - started < 2  # a refusal settles at once
        time.sleep(1.0)
        assert fake.count("/api/") == 1
        assert client.status == Status.UNAUTHORIZED
        assert client.is_enabled("beta") is True  # defaults keep serving
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "refused the SDK key" in errors[0].getMessage()


def test_refused_on_the_stream__stops_too(
    fake: FakeFlagsvc, caplog: pytest.LogCaptureFixture
) -> None:
    fake.stream_status = 401
    with client_of(fake, poll_interval=0.1) as client:
        assert client.wait_for_ready(5)
        wait_until(lambda: client.status == Status.UNAUTHORIZED)
        count = fake.count("/api/")
        time.sleep(0.8)
        assert fake.count("/api/") == count == 2
    assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 1


def test_stream_patch__following_our_version__is_applied_without_a_refetch(
    fake: FakeFlagsvc,
) -> None:
    with client_of(fake) as client:
        assert client.wait_for_ready(5)
        wait_until(lambda: fake.streams)
        killed = flag("beta", kill={"by": "oncall", "at": "2026-01-01T00:00:00Z", "reason": "x"})
        started = time.monotonic()
        fake.push(patch(2, 1, {"beta": killed, "gamma": flag("gamma")}))
        wait_until(lambda: not client.is_enabled("beta"), timeout=1)
        assert time.monotonic() - started < 1
        assert client.evaluate("beta").reason == "DISABLED"
        assert client.is_enabled("gamma") is True
        assert client.version == 2
        fake.push(patch(3, 2, {"gamma": None}))  # null removes the flag
        wait_until(lambda: client.version == 3)
        assert client.evaluate("gamma").error_code == "FLAG_NOT_FOUND"
    assert fake.count(SNAPSHOT) == 1


def test_stream_patch__with_a_gap__refetches_the_snapshot(fake: FakeFlagsvc) -> None:
    with client_of(fake) as client:
        assert client.wait_for_ready(5)
        wait_until(lambda: fake.streams)
        fake.document = snapshot(5, flag("beta"), flag("delta"))
        fake.push(patch(5, 4, {"beta": flag("beta", enabled=False)}))  # 4 is not our 1
        wait_until(lambda: client.version == 5)
        assert client.is_enabled("beta") is True  # the refetched snapshot, not the patch
        assert client.is_enabled("delta") is True
    assert fake.count(SNAPSHOT) == 2


def test_stream_version_event__newer__refetches(fake: FakeFlagsvc) -> None:
    with client_of(fake) as client:
        assert client.wait_for_ready(5)
        wait_until(lambda: fake.streams)
        fake.document = snapshot(2, flag("beta", enabled=False))
        fake.push(sse("version", 2, {"environment": "production", "version": 2}))
        wait_until(lambda: client.version == 2)
        assert client.is_enabled("beta") is False


def test_malformed_patch__is_refused_whole__the_last_good_snapshot_stays(fake: FakeFlagsvc) -> None:
    with client_of(fake) as client:
        assert client.wait_for_ready(5)
        wait_until(lambda: fake.streams)
        broken = {"beta": flag("beta", enabled=False), "bad": {"key": "bad", "variants": {}}}
        fake.push(patch(2, 1, broken))
        wait_until(lambda: fake.count(SNAPSHOT) == 2)  # refused, so refetched
        assert client.version == 1
        assert client.is_enabled("beta") is True  # no half of the patch applied
        assert client.evaluate("bad").error_code == "FLAG_NOT_FOUND"
        fake.push(b"id: 2\nevent: patch\ndata: {not json\n\n")
        wait_until(lambda: fake.count(SNAPSHOT) == 3)
        assert client.is_enabled("beta") is True


def test_malformed_snapshot__is_refused__the_last_good_one_serves_until_a_good_one(
    fake: FakeFlagsvc,
) -> None:
    with client_of(fake, stream=False, poll_interval=0.1) as client:
        assert client.wait_for_ready(5)
        fake.document = snapshot(2, flag("beta", enabled=False), {"key": "x"})
        wait_until(lambda: fake.count(SNAPSHOT) >= 3)
        fake.raw_body = b'{"truncated": '
        fake.document = snapshot(3, flag("beta", enabled=False))
        wait_until(lambda: fake.count(SNAPSHOT) >= 6)
        assert client.version == 1
        assert client.is_enabled("beta") is True
        assert client.last_error and "not JSON" in client.last_error
        fake.raw_body = None
        wait_until(lambda: client.version == 3, timeout=3)
        assert client.is_enabled("beta") is False


def test_reconnect__sends_last_event_id__and_applies_the_catch_up(fake: FakeFlagsvc) -> None:
    with client_of(fake) as client:
        assert client.wait_for_ready(5)
        wait_until(lambda: fake.streams)
        fake.push(patch(2, 1, {"beta": flag("beta", enabled=False)}))
        wait_until(lambda: client.version == 2)
        fake.document = snapshot(2, flag("beta", enabled=False))
        fake.drop_streams()
        wait_until(lambda: fake.count(STREAM) == 2, timeout=3)
        assert fake.last(STREAM)["last-event-id"] == "2"
        wait_until(lambda: fake.streams)
        fake.push(patch(3, 2, {"beta": flag("beta")}))
        wait_until(lambda: client.version == 3)
        assert client.is_enabled("beta") is True
    assert fake.count(SNAPSHOT) == 1  # a reconnect needs no refetch


def test_stream_unavailable__polling_keeps_the_client_fresh(fake: FakeFlagsvc) -> None:
    fake.stream_status = 503
    with client_of(fake, poll_interval=0.3) as client:
        assert client.wait_for_ready(5)
        fake.document = snapshot(2, flag("beta", enabled=False))
        wait_until(lambda: client.version == 2, timeout=3)
        assert client.is_enabled("beta") is False


def test_backoff__doubles_from_the_first_retry__jittered__capped_by_the_poll_interval() -> None:
    client = FlagsvcClient(None, None, offline=True, poll_interval=5)
    for failures, full in ((1, FIRST_RETRY_SECONDS), (2, 1.0), (3, 2.0), (4, 4.0), (9, 5.0)):
        delays = [client._delay(failures) for _ in range(200)]
        assert all(full / 2 <= d <= full for d in delays)
        assert max(delays) - min(delays) > full / 10  # jittered, not in step


def test_down_at_start__bootstrap_serves__start_is_bounded(
    closed_port: str, tmp_path: Path
) -> None:
    bootstrap = tmp_path / "bootstrap.json"
    bootstrap.write_text(json.dumps(snapshot(4, flag("beta", enabled=False))))
    started = time.monotonic()
    client = FlagsvcClient(
        closed_port, "fsv_server_test", bootstrap=bootstrap, defaults={"gamma": True}, timeout=0.5
    )
    constructed = time.monotonic() - started
    try:
        assert constructed < 0.1  # the constructor never waits for the network
        assert client.wait_for_ready() is False
        assert time.monotonic() - started < 1.0  # bounded by timeout
        assert client.is_enabled("beta") is False
        assert client.version == 4
        assert client.is_enabled("gamma") is True  # not in the bootstrap: defaults
        assert client.evaluate("gamma").error_code == "FLAG_NOT_FOUND"
        assert client.status == Status.STARTING
    finally:
        client.close()


def test_down_at_start__no_bootstrap__defaults_serve_with_provider_not_ready(
    closed_port: str,
) -> None:
    with FlagsvcClient(closed_port, "k", defaults={"beta": True}, timeout=0.3) as client:
        assert client.wait_for_ready() is False
        assert client.is_enabled("beta") is True
        assert client.is_enabled("other") is False
        assert client.get_value("limit", None, 7) == 7
        result = client.evaluate("beta")
        assert (result.value, result.reason, result.error_code) == (
            True,
            "ERROR",
            "PROVIDER_NOT_READY",
        )


def test_bad_bootstrap__is_ignored_with_a_warning(
    closed_port: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bootstrap = tmp_path / "bootstrap.json"
    bootstrap.write_text("{")
    with FlagsvcClient(closed_port, "k", bootstrap=bootstrap, timeout=0.2) as client:
        assert client.snapshot is None
        assert client.is_enabled("beta") is False
    assert any("bootstrap" in r.getMessage() for r in caplog.records)


def test_unknown_flag_wrong_type_and_bad_context__answer_the_default_with_a_reason() -> None:
    document = snapshot(
        1,
        flag("beta"),
        {
            **flag("limit"),
            "type": "number",
            "variants": {"low": 1, "high": 9},
            "off_variant": "low",
            "default_serve": {"variant": "high"},
        },
        flag(
            "ruled",
            rules=[
                {
                    "conditions": [{"attribute": "plan", "operator": "equals", "value": "pro"}],
                    "serve": {"variant": "off"},
                }
            ],
        ),
    )
    client = FlagsvcClient(None, None, offline=True, bootstrap=document)
    assert client.get_value("limit", {}, 3) == 9
    assert client.get_value("limit", {}, 2.5) == 9  # ints and floats are both numbers
    mismatch = client.evaluate("limit", {}, "text")
    assert (mismatch.value, mismatch.error_code) == ("text", "TYPE_MISMATCH")
    assert client.is_enabled("limit", {}) is False  # not a boolean: the default
    missing = client.evaluate("nope", {}, False)
    assert (missing.value, missing.reason, missing.error_code) == (False, "ERROR", "FLAG_NOT_FOUND")
    assert client.variant("nope") is None
    bad_context: Any = ["not", "a", "mapping"]
    assert client.is_enabled("ruled", bad_context, default=True) is True
    assert client.evaluate("ruled", bad_context, False).error_code == "GENERAL"


def test_evaluation__takes_no_lock__and_sees_whole_snapshots_while_they_change() -> None:
    def both(on: bool, version: int) -> dict[str, Any]:
        return snapshot(version, flag("a", enabled=on), flag("b", enabled=on))

    client = FlagsvcClient(None, None, offline=True, bootstrap=both(True, 1))
    from flagsvc_sdk.snapshot import Snapshot

    stop = threading.Event()
    torn: list[tuple[bool, bool]] = []
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            while not stop.is_set():
                view = client.view()
                pair = (view.is_enabled("a"), view.is_enabled("b"))
                if pair[0] != pair[1]:
                    torn.append(pair)
        except BaseException as exc:  # pragma: no cover - the failure being tested for
            errors.append(exc)

    readers = [threading.Thread(target=reader) for _ in range(4)]
    for thread in readers:
        thread.start()
    with client._lock:  # a writer holding the lock does not stop the readers
        time.sleep(0.05)
    for version in range(2, 400):
        client._install(Snapshot.from_document(both(version % 2 == 1, version)), from_server=True)
    stop.set()
    for thread in readers:
        thread.join()
    assert not errors and not torn


def test_close__stops_the_updater_and_its_stream(fake: FakeFlagsvc) -> None:
    client = client_of(fake)
    assert client.wait_for_ready(5)
    wait_until(lambda: fake.streams)
    thread = client._thread
    assert thread is not None and thread.is_alive()
    client.close()
    assert not thread.is_alive()
    assert client.status == Status.CLOSED
    count = fake.count("/api/")
    time.sleep(0.5)
    assert fake.count("/api/") == count
    assert client.is_enabled("beta") is True  # memory still answers


def test_fork__the_child_gets_an_updater_of_its_own_without_any_call(fake: FakeFlagsvc) -> None:
    with client_of(fake) as client:
        assert client.wait_for_ready(5)
        wait_until(lambda: len(fake.streams) == 1)
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: no call to the SDK besides evaluating
            os.close(read_end)
            try:
                deadline = time.monotonic() + 5
                while client.is_enabled("beta") and time.monotonic() < deadline:
                    time.sleep(0.01)
                thread = client._thread
                report = {
                    "seen": not client.is_enabled("beta"),
                    "version": client.version,
                    "own_thread": thread is not None and thread.is_alive(),
                }
                os.write(write_end, json.dumps(report).encode())
            finally:
                os._exit(0)
        os.close(write_end)
        wait_until(lambda: len(fake.streams) == 2)  # the child opened its own stream
        fake.push(patch(2, 1, {"beta": flag("beta", enabled=False)}))
        report = json.loads(os.read(read_end, 1000))
        os.waitpid(pid, 0)
        assert report == {"seen": True, "version": 2, "own_thread": True}
        wait_until(lambda: not client.is_enabled("beta"))  # and the parent goes on too


def test_on_change__a_raising_callback_is_logged_and_updates_go_on(
    fake: FakeFlagsvc, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[frozenset[str]] = []

    def broken(keys: frozenset[str]) -> None:
        raise RuntimeError("listener bug")

    with client_of(fake) as client:
        assert client.wait_for_ready(5)
        client.on_change(broken)
        remove = client.on_change(calls.append)
        wait_until(lambda: fake.streams)
        fake.push(patch(2, 1, {"beta": flag("beta", enabled=False)}))
        wait_until(lambda: calls == [frozenset({"beta"})])
        remove()
        fake.push(patch(3, 2, {"beta": flag("beta")}))
        wait_until(lambda: client.version == 3)
        assert client.is_enabled("beta") is True
        assert calls == [frozenset({"beta"})]  # removed listeners hear nothing more
    assert any("on_change callback raised" in r.getMessage() for r in caplog.records)


def test_key_revoked_mid_run__one_error__updates_stop__last_values_serve(
    fake: FakeFlagsvc, caplog: pytest.LogCaptureFixture
) -> None:
    with client_of(fake, poll_interval=0.2) as client:
        assert client.wait_for_ready(5)
        wait_until(lambda: fake.streams)
        fake.status = 401
        fake.drop_streams()  # the reconnect meets the revoked key
        wait_until(lambda: client.status == Status.UNAUTHORIZED, timeout=3)
        count = fake.count("/api/")
        time.sleep(0.8)
        assert fake.count("/api/") == count
        assert client.is_enabled("beta") is True
    assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 1


def test_version_event__naming_our_version__costs_no_request(fake: FakeFlagsvc) -> None:
    with client_of(fake) as client:
        assert client.wait_for_ready(5)
        wait_until(lambda: fake.streams)
        fake.push(sse("version", 1, {"environment": "production", "version": 1}))
        fake.push(patch(2, 1, {"beta": flag("beta", enabled=False)}))
        wait_until(lambda: client.version == 2)
    assert fake.count(SNAPSHOT) == 1
