"""Publication after commit: what the store holds is always exactly the full snapshot."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from django.conf import settings

from audit.recorder import Actor
from flags import publish, services
from flags.models import Environment, Flag, Segment
from flags.selectors import snapshot_build
from tests.conftest import refreshed

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def empty_store() -> Iterator[None]:
    publish.local_store().clear()
    if settings.REDIS_URL:
        with contextlib.suppress(redis.ConnectionError):
            redis.Redis.from_url(settings.REDIS_URL).flushdb()
    yield
    publish.local_store().clear()


def stored(environment: Environment) -> dict[str, Any] | None:
    return publish.store().current_document(environment.key, refreshed(environment).lineage)


def test_every_change__store_holds_exactly_the_full_snapshot(
    actor: Actor, production: Environment, django_capture_on_commit_callbacks: Any
) -> None:
    split = {"split": [{"variant": "on", "weight": 2500}, {"variant": "off", "weight": 7500}]}
    rule = {
        "id": "beta",
        "conditions": [{"operator": "in_segment", "value": "beta"}],
        "serve": {"variant": "on"},
    }
    steps: list[Callable[[], Any]] = [
        lambda: services.flag_create(actor=actor, key="zeta", tags=["payments"]),
        lambda: services.flag_create(actor=actor, key="alpha-1", tags=["payments"]),
        lambda: services.flag_create(actor=actor, key="alpha.2"),
        lambda: services.segment_create(
            actor=actor, environment=production, key="beta", included=["u1"]
        ),
        lambda: services.flag_state_update(
            actor=actor,
            flag=Flag.objects.get(key="zeta"),
            environment=production,
            enabled=True,
            default_serve=split,
            rules=[rule],
        ),
        lambda: services.flag_kill(
            actor=actor, flag=Flag.objects.get(key="zeta"), environment=production, reason="r"
        ),
        lambda: services.segment_update(
            actor=actor, segment=Segment.objects.get(key="beta"), included=["u2"]
        ),
        lambda: services.flag_kill_by_tag(
            actor=actor, tag="payments", environment=production, reason="r"
        ),
        lambda: services.flag_restore_by_tag(
            actor=actor, tag="payments", environment=production, reason="r"
        ),
        lambda: services.flag_update(
            actor=actor, flag=Flag.objects.get(key="alpha.2"), client_visible=True
        ),
        lambda: services.flag_archive(actor=actor, flag=Flag.objects.get(key="alpha.2")),
        lambda: services.flag_unarchive(actor=actor, flag=Flag.objects.get(key="alpha.2")),
        lambda: services.flag_state_update(
            actor=actor, flag=Flag.objects.get(key="zeta"), environment=production, rules=[]
        ),
        lambda: services.segment_delete(actor=actor, segment=Segment.objects.get(key="beta")),
    ]
    for step in steps:
        with django_capture_on_commit_callbacks(execute=True):
            step()
        document = stored(production)
        assert document == snapshot_build(refreshed(production))
        assert list(document["flags"]) == sorted(document["flags"])


def test_kill__publishes_a_delta_with_only_the_killed_flag(
    actor: Actor, production: Environment, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        for i in range(20):
            services.flag_create(actor=actor, key=f"flag-{i:02d}")
    messages: list[dict[str, Any]] = []
    publish.local_store().listeners.append(messages.append)
    try:
        if settings.REDIS_URL:
            pubsub = redis.Redis.from_url(settings.REDIS_URL).pubsub(ignore_subscribe_messages=True)
            pubsub.subscribe(publish.CHANNEL)
        with django_capture_on_commit_callbacks(execute=True):
            services.flag_kill(
                actor=actor,
                flag=Flag.objects.get(key="flag-07"),
                environment=production,
                reason="r",
            )
        if settings.REDIS_URL:
            import json
            import time

            deadline = time.monotonic() + 2
            while not messages and time.monotonic() < deadline:
                message = pubsub.get_message(timeout=0.1)
                if message:
                    messages.append(json.loads(message["data"]))
    finally:
        publish.local_store().listeners.remove(messages.append)
    (message,) = [m for m in messages if m["type"] == "snapshot"]
    assert message["version"] == refreshed(production).version
    assert message["delta"]["previous_version"] == message["version"] - 1
    assert list(message["delta"]["flags"]) == ["flag-07"] and message["delta"]["segments"] == {}
    assert message["delta"]["flags"]["flag-07"]["kill"]["reason"] == "r"


def test_publish__store_behind_or_unknown_change__falls_back_to_a_full_build(
    actor: Actor, production: Environment, make_flag: Callable[..., Flag]
) -> None:
    make_flag("a")  # published nowhere: on_commit callbacks did not run
    current = refreshed(production)
    payload = publish.snapshot_store_current(
        "production",
        identity=(current.lineage, current.version, current.revision),
        flags=["a"],
    )
    assert payload is not None and payload.document == snapshot_build(refreshed(production))


def test_kill_publication__built_from_memory_without_a_query__same_bytes_as_a_rebuild(
    actor: Actor,
    production: Environment,
    make_flag: Callable[..., Flag],
    django_capture_on_commit_callbacks: Any,
    django_assert_max_num_queries: Any,
) -> None:
    # Given a published environment with many flags
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(30):
            make_flag(f"flag-{n:02d}")
    # When one is killed (and then restored), its publication patches the previous
    # document with the state the service saved: nothing is read back
    for operation in (services.flag_kill, services.flag_restore):
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            operation(
                actor=actor,
                flag=Flag.objects.get(key="flag-07"),
                environment=production,
                reason="r",
            )
        with django_assert_max_num_queries(0):
            for callback in callbacks:
                callback()
        # Then the store holds exactly the full snapshot, byte for byte
        rebuilt = publish.encode_snapshot(snapshot_build(refreshed(production)))
        assert publish.json_bytes(stored(production)) == rebuilt.body
