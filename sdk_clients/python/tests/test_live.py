"""Against a real flagsvc (tests.sdk_server): a change and a kill reach ``is_enabled`` within a
second through the stream; flagsvc dying mid-run costs nothing but freshness; it recovers."""

from __future__ import annotations

import time

import pytest
from conftest import LiveFlagsvc, wait_until

from flagsvc_sdk import FlagsvcClient, Status

pytestmark = pytest.mark.live
KEY = "payments.provider-b"  # demo data: a boolean served "on" to everyone
USER = {"targetingKey": "user-1"}


def test_kill__reaches_is_enabled_within_one_second(live: LiveFlagsvc) -> None:
    changed: list[frozenset[str]] = []
    with FlagsvcClient(live.url, live.server_key) as client:
        assert client.wait_for_ready(10)
        client.on_change(changed.append)
        assert client.is_enabled(KEY, USER) is True
        time.sleep(0.3)  # the stream is open
        started = time.monotonic()
        live.kill(KEY)
        try:
            wait_until(lambda: not client.is_enabled(KEY, USER), timeout=1.0, interval=0.001)
            seen_after = time.monotonic() - started
            assert client.evaluate(KEY, USER).reason == "DISABLED"
            assert KEY in changed[-1]
        finally:
            live.restore(KEY)
        wait_until(lambda: client.is_enabled(KEY, USER), timeout=1.0)
    assert seen_after < 1.0


def test_stream_update__disabling_a_flag_reaches_is_enabled_within_one_second(
    live: LiveFlagsvc,
) -> None:
    with FlagsvcClient(live.url, live.server_key) as client:
        assert client.wait_for_ready(10)
        time.sleep(0.3)
        version = client.version
        started = time.monotonic()
        live.set_enabled(KEY, False)
        try:
            wait_until(lambda: not client.is_enabled(KEY, USER), timeout=1.0, interval=0.001)
            assert time.monotonic() - started < 1.0
            assert client.version is not None and version is not None
            assert client.version > version
        finally:
            live.set_enabled(KEY, True)
        wait_until(lambda: client.is_enabled(KEY, USER), timeout=1.0)


def test_polling_only__etag_poll_picks_up_a_change(live: LiveFlagsvc) -> None:
    with FlagsvcClient(live.url, live.server_key, stream=False, poll_interval=0.3) as client:
        assert client.wait_for_ready(10)
        live.kill(KEY)
        try:
            wait_until(lambda: not client.is_enabled(KEY, USER), timeout=2.0)
        finally:
            live.restore(KEY)
        wait_until(lambda: client.is_enabled(KEY, USER), timeout=2.0)


def test_wrong_key__401_stops_the_client(live: LiveFlagsvc) -> None:
    with FlagsvcClient(live.url, "fsv_server_not-a-key", defaults={KEY: True}) as client:
        assert client.wait_for_ready(10) is False
        assert client.status == Status.UNAUTHORIZED
        assert client.is_enabled(KEY, USER) is True


def test_flagsvc_down_at_start__bootstrap_serves__start_bounded__ready_when_it_returns(
    live: LiveFlagsvc,
) -> None:
    with FlagsvcClient(live.url, live.server_key) as first:
        assert first.wait_for_ready(10)
        assert first.snapshot is not None
        bootstrap = dict(first.snapshot.document)
    bootstrap["flags"] = {**bootstrap["flags"], KEY: {**bootstrap["flags"][KEY], "enabled": False}}
    live.stop_web()
    try:
        started = time.monotonic()
        client = FlagsvcClient(
            live.url, live.server_key, bootstrap=bootstrap, poll_interval=1.0, timeout=1.0
        )
        assert client.wait_for_ready() is False
        assert time.monotonic() - started < 1.5
        assert client.is_enabled(KEY, USER) is False  # the bootstrap's value
        assert client.status == Status.STARTING
    finally:
        live.start_web()
    with client:
        assert client.wait_for_ready(10)
        assert client.is_enabled(KEY, USER) is True  # the server's value replaces it


def test_flagsvc_dies_mid_run__last_values_serve__no_exception__recovers(
    live: LiveFlagsvc,
) -> None:
    with FlagsvcClient(live.url, live.server_key, poll_interval=1.0, timeout=2.0) as client:
        assert client.wait_for_ready(10)
        value = client.is_enabled(KEY, USER)
        hero = client.get_value("homepage.hero", USER, {})
        live.stop_web()
        try:
            wait_until(lambda: client.status == Status.STALE, timeout=10)
            answers = {client.is_enabled(KEY, USER) for _ in range(10_000)}
            assert answers == {value}  # no exception, last known value, 10,000 times
            assert client.get_value("homepage.hero", USER, {}) == hero
        finally:
            live.start_web()
        wait_until(lambda: client.status == Status.READY, timeout=10)
        live.kill(KEY)  # a change after the restart reaches the recovered client
        try:
            wait_until(lambda: not client.is_enabled(KEY, USER), timeout=3.0)
        finally:
            live.restore(KEY)
        wait_until(lambda: client.is_enabled(KEY, USER), timeout=3.0)
