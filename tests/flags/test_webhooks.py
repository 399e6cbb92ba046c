"""Outbound webhooks against a local receiver: signed, retried with backoff, logged, disabled
after repeated failures — and never in the way of the change that caused them."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from audit.models import AuditEvent
from audit.recorder import Actor
from flags import services, webhooks
from flags.errors import ValidationFailed
from flags.models import Environment, Flag, FlagState, WebhookDelivery, WebhookSubscription
from flags.webhooks import queue
from tests.prometheus import free_port
from tests.receiver import Receiver


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, float]]:
    """Deliveries handed to 'Celery' (recorded here instead), with their countdowns."""
    calls: list[tuple[int, float]] = []
    monkeypatch.setattr(
        queue, "delivery_queue", lambda i, countdown=0: calls.append((i, countdown))
    )
    return calls


@pytest.fixture
def checkout(make_flag: Callable[..., Flag], production: Environment, actor: Actor) -> Flag:
    flag = make_flag("checkout")
    services.flag_state_update(actor=actor, flag=flag, environment=production, enabled=True)
    return flag


def kill(flag: Flag, environment: Environment, reason: str = "5xx spike") -> None:
    services.flag_kill(actor=Actor.cli("alice"), flag=flag, environment=environment, reason=reason)


def deliver_all(queued: list[tuple[int, float]]) -> list[float | None]:
    """Run the queued attempts (and their retries) as the worker would, minus the waiting."""
    countdowns = []
    while queued:
        delivery_id, _ = queued.pop(0)
        countdown = webhooks.webhook_delivery_attempt(delivery_id)
        countdowns.append(countdown)
        if countdown is not None:
            queued.append((delivery_id, countdown))
    return countdowns


def test_kill__delivered_after_commit_signed_with_the_secret_shown_once(
    production: Environment,
    checkout: Flag,
    actor: Actor,
    queued: list[tuple[int, float]],
    django_capture_on_commit_callbacks: Any,
) -> None:
    with Receiver() as receiver:
        subscription, secret = webhooks.webhook_create(
            actor=actor, environment=production, name="ops", url=receiver.url, kinds=["kill"]
        )
        assert secret.startswith("fsv_whsec_") and secret[-4:] == subscription.secret_hint
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            kill(checkout, production)
            assert queued == []  # nothing leaves before the commit
        assert len(callbacks) >= 1 and len(queued) == 1
        assert deliver_all(queued) == [None]
        (request,) = receiver.wait(1)
    timestamp = int(request.headers["X-Flagsvc-Timestamp"])
    assert abs(time.time() - timestamp) < 30
    assert webhooks.signature_valid(
        secret, timestamp, request.body, request.headers["X-Flagsvc-Signature"]
    )
    assert not webhooks.signature_valid(
        "fsv_whsec_other", timestamp, request.body, request.headers["X-Flagsvc-Signature"]
    )
    body = json.loads(request.body)
    assert body["kind"] == "kill"
    assert body["event"]["action"] == "flag.kill"
    assert body["event"]["actor"] == "alice" and body["event"]["reason"] == "5xx spike"
    assert body["summary"] == "alice killed checkout in production: 5xx spike"
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 200)
    assert delivery.latency_ms is not None and delivery.latency_ms > 0


def test_subscription__only_its_environment_and_kinds(
    environments: dict[str, Environment],
    checkout: Flag,
    actor: Actor,
    queued: list[tuple[int, float]],
    django_capture_on_commit_callbacks: Any,
) -> None:
    production, staging = environments["production"], environments["staging"]
    webhooks.webhook_create(
        actor=actor, environment=production, name="k", url="http://x.test/", kinds=["kill"]
    )
    webhooks.webhook_create(actor=actor, environment=staging, name="all", url="http://y.test/")
    with django_capture_on_commit_callbacks(execute=True):
        kill(checkout, production)
        services.flag_state_update(
            actor=actor, flag=checkout, environment=production, enabled=False
        )
        services.flag_state_update(actor=actor, flag=checkout, environment=staging, enabled=True)
        services.token_issue(actor=actor, kind="server", name="s", environment=staging)
    sent = sorted(WebhookDelivery.objects.values_list("subscription__name", "action"))
    assert sent == [("all", "flag_state.update"), ("k", "flag.kill")]


def test_rolled_back_change__sends_nothing(
    production: Environment, checkout: Flag, actor: Actor, queued: list[tuple[int, float]]
) -> None:
    webhooks.webhook_create(actor=actor, environment=production, name="ops", url="http://x.test/")
    with pytest.raises(RuntimeError), transaction.atomic():
        kill(checkout, production)
        raise RuntimeError("the change fails after its audit event")
    assert not WebhookDelivery.objects.exists() and queued == []


@override_settings(WEBHOOK_RETRY_BASE_SECONDS=2.0, WEBHOOK_MAX_ATTEMPTS=4)
def test_receiver_errors__retried_with_exponential_backoff_then_logged(
    production: Environment,
    checkout: Flag,
    actor: Actor,
    queued: list[tuple[int, float]],
    django_capture_on_commit_callbacks: Any,
) -> None:
    with Receiver(answers=[500, 503, 200]) as receiver:
        webhooks.webhook_create(actor=actor, environment=production, name="ops", url=receiver.url)
        with django_capture_on_commit_callbacks(execute=True):
            kill(checkout, production)
        assert deliver_all(queued) == [2.0, 4.0, None]
        requests = receiver.wait(3)
    assert len({r.headers["X-Flagsvc-Delivery"] for r in requests}) == 1
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 3, 200)
    assert WebhookSubscription.objects.get().consecutive_failures == 0


@override_settings(
    WEBHOOK_RETRY_BASE_SECONDS=1.0, WEBHOOK_MAX_ATTEMPTS=3, WEBHOOK_TIMEOUT_SECONDS=1.0
)
def test_receiver_down__the_change_stands_and_the_delivery_gives_up_after_its_attempts(
    production: Environment,
    checkout: Flag,
    actor: Actor,
    queued: list[tuple[int, float]],
    django_capture_on_commit_callbacks: Any,
) -> None:
    webhooks.webhook_create(
        actor=actor, environment=production, name="ops", url=f"http://127.0.0.1:{free_port()}/"
    )
    with django_capture_on_commit_callbacks(execute=True):
        kill(checkout, production)
    assert FlagState.objects.get(flag=checkout, environment=production).killed
    assert deliver_all(queued) == [1.0, 2.0, None]
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("failed", 3, None)
    assert "refused" in delivery.last_error.lower()


def test_broker_down__the_change_stands_and_the_sweep_sends_it_later(
    production: Environment,
    checkout: Flag,
    actor: Actor,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    def broker_down(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(queue.current_app, "send_task", broker_down)
    webhooks.webhook_create(actor=actor, environment=production, name="ops", url="http://x.test/")
    with django_capture_on_commit_callbacks(execute=True):
        kill(checkout, production)
    assert FlagState.objects.get(flag=checkout, environment=production).killed
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "pending" and delivery.attempts == 0
    sent: list[Any] = []
    monkeypatch.setattr(queue.current_app, "send_task", lambda *a, **k: sent.append(k["args"]))
    from datetime import timedelta

    from django.utils import timezone

    assert webhooks.deliveries_overdue_requeue(now=timezone.now() + timedelta(minutes=2)) == 1
    assert sent == [[delivery.pk]]


@override_settings(WEBHOOK_RETRY_BASE_SECONDS=1.0, WEBHOOK_MAX_ATTEMPTS=2, WEBHOOK_DISABLE_AFTER=3)
def test_repeated_failures__subscription_disabled_with_an_audit_event(
    production: Environment,
    checkout: Flag,
    actor: Actor,
    queued: list[tuple[int, float]],
    django_capture_on_commit_callbacks: Any,
) -> None:
    with Receiver(answers=[500]) as receiver:
        webhooks.webhook_create(actor=actor, environment=production, name="ops", url=receiver.url)
        with django_capture_on_commit_callbacks(execute=True):
            kill(checkout, production)
            services.flag_restore(actor=actor, flag=checkout, environment=production, reason="ok")
        deliver_all(queued)
        receiver.wait(3)
        subscription = WebhookSubscription.objects.get()
        assert not subscription.enabled
        assert "3 failed delivery attempts in a row" in subscription.disabled_reason
        event = AuditEvent.objects.get(action="webhook.disable")
        assert event.actor == "webhooks" and event.actor_kind == "system"
        assert sorted(WebhookDelivery.objects.values_list("status", flat=True)) == [
            "failed",
            "failed",
        ]
        with django_capture_on_commit_callbacks(execute=True):
            kill(checkout, production)
        assert WebhookDelivery.objects.count() == 2 and queued == []
        # A person switches it back on: deliveries resume
        webhooks.webhook_set_enabled(
            actor=actor, subscription=subscription, enabled=True, reason="fixed"
        )
        assert WebhookSubscription.objects.get().consecutive_failures == 0


def test_formatters__slack_line_and_grafana_marker() -> None:
    document = {
        "sequence": 7,
        "occurred_at": "2026-11-29T20:00:00Z",
        "actor": "guardrail:checkout-errors",
        "action": "flag.kill",
        "target_key": "checkout@production",
        "flag": "checkout",
        "environment": "production",
        "after": {},
        "reason": "guardrail checkout-errors breached: ratio = 0.4 > 0.05",
    }
    link = "https://flags.example.com/admin/flags/flag/?q=checkout"
    assert webhooks.slack_message(document, "kill", link) == {
        "text": ":red_circle: guardrail:checkout-errors killed "
        f"<{link}|checkout> in production: guardrail checkout-errors breached: ratio = 0.4 > 0.05"
    }
    marker = webhooks.grafana_annotation(document, "kill", None)
    assert marker["time"] == 1795982400000  # 2026-11-29T20:00:00Z in ms
    assert marker["tags"] == [
        "flagsvc",
        "kill",
        "flag.kill",
        "flag:checkout",
        "environment:production",
    ]
    assert marker["text"].startswith("guardrail:checkout-errors killed checkout in production")
    assert webhooks.event_kind("rollout_plan.step") == "rollout"
    assert webhooks.event_kind("guardrail.breach") == "guardrail"
    assert webhooks.event_kind("token.issue") is None


# --- with a real Celery worker (Redis broker) -------------------------------------------------


@pytest.fixture
def celery_workers(transactional_db: None, tmp_path: Path) -> Iterator[Any]:
    from tests.flags.test_tasks import Workers

    group = Workers(tmp_path)
    group.env.update(WEBHOOK_RETRY_BASE_SECONDS="0.5", WEBHOOK_MAX_ATTEMPTS="5")
    try:
        yield group
    finally:
        group.stop()
        print(group.logs())


@pytest.mark.integration
@pytest.mark.postgres
def test_worker__delivers_after_commit_and_retries_with_growing_delays(
    celery_workers: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    actor = Actor.cli("tester")
    production = services.environment_create(actor=actor, key="production")
    flag = services.flag_create(actor=actor, key="checkout")
    monkeypatch.setattr(
        queue,
        "delivery_queue",
        lambda i, countdown=0: celery_workers.sender.send_task(queue.DELIVER_TASK, args=[i]),
    )
    celery_workers.start("w1")
    with Receiver(answers=[500, 500, 500, 200]) as receiver:
        _, secret = webhooks.webhook_create(
            actor=actor, environment=production, name="ops", url=receiver.url
        )
        started = time.monotonic()
        kill(flag, production)
        requests = receiver.wait(4, timeout=60)
    gaps = [b.at - a.at for a, b in itertools.pairwise(requests)]
    assert requests[0].at - started < 5
    assert gaps[0] >= 0.45 and gaps[1] >= 0.95 and gaps[2] >= 1.95, gaps  # 0.5, 1, 2 s
    for request in requests:
        timestamp = int(request.headers["X-Flagsvc-Timestamp"])
        assert webhooks.signature_valid(
            secret, timestamp, request.body, request.headers["X-Flagsvc-Signature"]
        )
    deadline = time.monotonic() + 10
    while WebhookDelivery.objects.get().status != "delivered":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert WebhookDelivery.objects.get().attempts == 4


def _readme_examples() -> dict[str, str]:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("### Verifying a webhook signature") :]
    return {
        "python": re.search(r"```python\n(.*?)```", section, re.S).group(1),  # type: ignore[union-attr]
        "js": re.search(r"```js\n(.*?)```", section, re.S).group(1),  # type: ignore[union-attr]
    }


def test_readme_examples__verify_a_real_delivery_and_refuse_a_forged_one(
    production: Environment,
    checkout: Flag,
    actor: Actor,
    queued: list[tuple[int, float]],
    django_capture_on_commit_callbacks: Any,
    tmp_path: Path,
) -> None:
    with Receiver() as receiver:
        _, secret = webhooks.webhook_create(
            actor=actor, environment=production, name="ops", url=receiver.url
        )
        with django_capture_on_commit_callbacks(execute=True):
            kill(checkout, production)
        deliver_all(queued)
        (request,) = receiver.wait(1)
    forged = request.body.replace(b"alice", b"mallory")
    checks = [(secret, request.body), (secret, forged), ("fsv_whsec_wrong", request.body)]
    assert readme_verifiers(request.headers, checks, tmp_path) == [True, False, False]


def readme_verifiers(headers: Any, checks: list[tuple[str, bytes]], tmp_path: Path) -> list[bool]:
    """What the README's Python verifier and (if node is here) its Node one answer for each
    (secret, body) with these headers; asserts they agree."""
    examples = _readme_examples()
    namespace: dict[str, Any] = {}
    exec(examples["python"], namespace)
    answers = [namespace["verify"](secret, headers, body) for secret, body in checks]
    node = shutil.which("node")
    if node is None:
        return answers
    (tmp_path / "verify.mjs").write_text(examples["js"])
    lowered = {k.lower(): v for k, v in headers.items()}
    calls = []
    for i, (secret, body) in enumerate(checks):
        (tmp_path / f"body{i}.bin").write_bytes(body)
        calls.append(f"verify({json.dumps(secret)}, headers, readFileSync('body{i}.bin'))")
    script = (
        'import { verify } from "./verify.mjs"; import { readFileSync } from "node:fs";\n'
        f"const headers = {json.dumps(lowered)};\n"
        f"console.log(JSON.stringify([{', '.join(calls)}]));\n"
    )
    (tmp_path / "check.mjs").write_text(script)
    result = subprocess.run(
        [node, "check.mjs"], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout) == answers, "the README's Node and Python verifiers disagree"
    return answers


def test_rotate_secret__both_sign_during_the_overlap__then_only_the_new_one__audited(
    production: Environment,
    checkout: Flag,
    actor: Actor,
    queued: list[tuple[int, float]],
    django_capture_on_commit_callbacks: Any,
    tmp_path: Path,
) -> None:
    with Receiver() as receiver:
        subscription, first = webhooks.webhook_create(
            actor=actor, environment=production, name="ops", url=receiver.url
        )
        subscription, second = webhooks.webhook_rotate_secret(
            actor=actor, subscription=subscription, overlap_hours=24, reason="yearly"
        )
        assert second != first and second[-4:] == subscription.secret_hint

        def deliver(change: Callable[[], Any]) -> Any:
            count = len(receiver.received)
            with django_capture_on_commit_callbacks(execute=True):
                change()
            deliver_all(queued)
            return receiver.wait(count + 1)[-1]

        # During the overlap: signed with both, the new one first; either secret verifies.
        during = deliver(lambda: kill(checkout, production))
        header = during.headers["X-Flagsvc-Signature"]
        assert re.fullmatch(r"sha256=[0-9a-f]{64}, sha256=[0-9a-f]{64}", header)
        timestamp = int(during.headers["X-Flagsvc-Timestamp"])
        assert header.split(", ")[0] == webhooks.signature(second, timestamp, during.body)
        checks = [(first, during.body), (second, during.body), ("fsv_whsec_x", during.body)]
        assert readme_verifiers(during.headers, checks, tmp_path) == [True, True, False]
        # The overlap is over: only the new secret signs.
        WebhookSubscription.objects.filter(pk=subscription.pk).update(
            previous_secret_expires_at=timezone.now() - timedelta(seconds=1)
        )
        after = deliver(
            lambda: services.flag_restore(
                actor=actor, flag=checkout, environment=production, reason="fixed"
            )
        )
        assert re.fullmatch(r"sha256=[0-9a-f]{64}", after.headers["X-Flagsvc-Signature"])
        checks = [(first, after.body), (second, after.body)]
        assert readme_verifiers(after.headers, checks, tmp_path) == [False, True]
        # A leaked secret: overlap 0 retires it at once.
        subscription, third = webhooks.webhook_rotate_secret(
            actor=actor, subscription=subscription, overlap_hours=0, reason="leaked"
        )
        leaked = deliver(lambda: kill(checkout, production))
        checks = [(second, leaked.body), (third, leaked.body)]
        assert readme_verifiers(leaked.headers, checks, tmp_path) == [False, True]
    events = list(AuditEvent.objects.filter(action="webhook.rotate_secret").order_by("sequence"))
    assert [e.reason for e in events] == ["yearly", "leaked"]
    assert events[0].before["secret_hint"] == first[-4:]
    assert events[0].after["secret_hint"] == second[-4:]
    assert events[0].after["previous_secret_until"] is not None
    assert events[1].after["previous_secret_until"] is None
    for event in events:
        text = json.dumps([event.before, event.after])
        assert not any(secret in text for secret in (first, second, third))


@pytest.mark.parametrize("overlap", [-1, webhooks.MAX_OVERLAP_HOURS + 1, True, "24", None])
def test_rotate_secret__bad_overlap__refused_naming_the_range_and_nothing_changes(
    production: Environment, actor: Actor, overlap: Any
) -> None:
    subscription, secret = webhooks.webhook_create(
        actor=actor, environment=production, name="ops", url="https://ops.example.com/h"
    )
    with pytest.raises(ValidationFailed) as refused:
        webhooks.webhook_rotate_secret(
            actor=actor, subscription=subscription, overlap_hours=overlap
        )
    assert refused.value.fields == {"overlap_hours": "a number of hours from 0 to 168"}
    assert WebhookSubscription.objects.get().signing_secret == secret
    assert not AuditEvent.objects.filter(action="webhook.rotate_secret").exists()


def test_update__changes_what_is_given__one_audit_event__deliveries_go_to_the_new_url(
    production: Environment,
    checkout: Flag,
    actor: Actor,
    queued: list[tuple[int, float]],
    django_capture_on_commit_callbacks: Any,
) -> None:
    subscription, secret = webhooks.webhook_create(
        actor=actor,
        environment=production,
        name="ops",
        url="https://old.example.com/h",
        kinds=["rollout"],
        authorization="Bearer old",
    )
    with Receiver() as receiver:
        updated = webhooks.webhook_update(
            actor=actor,
            subscription=subscription,
            url=receiver.url,
            kinds=["kill"],
            authorization="Bearer new",
            reason="moved the receiver",
        )
        assert (updated.name, updated.kinds, updated.format) == ("ops", ["kill"], "json")
        with django_capture_on_commit_callbacks(execute=True):
            kill(checkout, production)
        deliver_all(queued)
        (request,) = receiver.wait(1)
    assert request.headers["Authorization"] == "Bearer new"
    assert webhooks.signature_valid(
        secret,
        int(request.headers["X-Flagsvc-Timestamp"]),
        request.body,
        request.headers["X-Flagsvc-Signature"],
    )  # the secret is untouched by an update
    event = AuditEvent.objects.get(action="webhook.update")
    assert event.reason == "moved the receiver"
    assert (event.before["url"], event.after["url"]) == ("https://old.example.com/h", receiver.url)
    assert "Bearer" not in json.dumps([event.before, event.after])
    # Nothing to change: no event. Enabled alone: named as such.
    webhooks.webhook_update(actor=actor, subscription=updated, kinds=["kill"])
    assert AuditEvent.objects.filter(action="webhook.update").count() == 1
    webhooks.webhook_update(actor=actor, subscription=updated, enabled=False)
    assert AuditEvent.objects.filter(action="webhook.disable").count() == 1


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"url": "ftp://x.example.com"}, "url"),
        ({"url": "https://x.example.com/" + "a" * 500}, "url"),
        ({"name": " "}, "name"),
        ({"kinds": ["everything"]}, "kinds"),
        ({"format": "xml"}, "format"),
        ({"authorization": "Bearer x\r\nX-Injected: 1"}, "authorization"),
        ({"enabled": "yes"}, "enabled"),
    ],
)
def test_update__bad_value__refused_naming_the_field_and_nothing_changes(
    production: Environment, actor: Actor, changes: dict[str, Any], field: str
) -> None:
    subscription, _ = webhooks.webhook_create(
        actor=actor, environment=production, name="ops", url="https://ops.example.com/h"
    )
    with pytest.raises(ValidationFailed) as refused:
        webhooks.webhook_update(
            actor=actor, subscription=subscription, **{"name": "renamed", **changes}
        )
    assert set(refused.value.fields) == {field}
    assert WebhookSubscription.objects.get().url == "https://ops.example.com/h"
    assert not AuditEvent.objects.filter(action="webhook.update").exists()
