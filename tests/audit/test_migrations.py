"""Upgrading to the keyed chain: events written before it stay as they are and still verify."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from audit.models import AuditEvent, canonical_json
from audit.recorder import Actor, audit_record

BEFORE_KEYS = [("audit", "0002_chain_head")]


@pytest.fixture
def legacy_trail(transactional_db: None) -> Iterator[None]:
    """Three events written by the SHA-256 recorder, then the upgrade to the latest migration."""
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE_KEYS)
    old = executor.loader.project_state(BEFORE_KEYS).apps
    OldEvent, OldHead = (
        old.get_model("audit", "AuditEvent"),
        old.get_model("audit", "AuditChainHead"),
    )
    head, _ = OldHead.objects.get_or_create(pk=1)
    for sequence in (1, 2, 3):
        fields = {
            "sequence": sequence,
            "occurred_at": timezone.now(),
            "actor": "alice",
            "actor_kind": "user",
            "action": "flag.kill",
            "target_type": "flag",
            "target_key": f"legacy-{sequence}",
            "reason": "before keyed hashing",
            "prev_hash": head.last_hash,
        }
        content = AuditEvent(**fields).content()  # the SHA-256 content, as the old code hashed it
        event = OldEvent.objects.create(
            **fields, hash=hashlib.sha256(canonical_json(content).encode()).hexdigest()
        )
        head.last_sequence, head.last_hash = sequence, event.hash
        head.save()
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    yield


@pytest.mark.django_db(transaction=True)
def test_upgrade__legacy_events_verify_the_old_way_and_new_ones_with_hmac(
    legacy_trail: None, actor: Actor, capsys: pytest.CaptureFixture[str]
) -> None:
    assert list(AuditEvent.objects.order_by("sequence").values_list("key_id", flat=True)) == [
        "",
        "",
        "",
    ]
    for i in range(2):
        with transaction.atomic():
            audit_record(actor=actor, action="test.append", target_type="test", target_key=f"k{i}")
    call_command("audit_verify")
    out = capsys.readouterr().out
    assert "audit chain OK: 5 events verified" in out
    assert "3 legacy (plain SHA-256, written before keyed hashing: #1-#3)" in out
    assert "HMAC-SHA256 by key test #4-#5" in out


@pytest.mark.django_db(transaction=True)
def test_upgrade__legacy_event_edited_in_sql__is_still_detected(legacy_trail: None) -> None:
    with connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditevent SET reason = 'x' WHERE sequence = 2")
    with pytest.raises(CommandError, match=r"event #2 .* was modified after it was written"):
        call_command("audit_verify")


@pytest.mark.django_db(transaction=True)
def test_upgrade__keyed_events_cannot_be_passed_off_as_legacy(
    legacy_trail: None, actor: Actor
) -> None:
    with transaction.atomic():
        audit_record(actor=actor, action="test.append", target_type="test", target_key="k")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditevent SET key_id = '' WHERE sequence = 4")
    with pytest.raises(CommandError, match=r"event #4 .* was modified after it was written"):
        call_command("audit_verify")
