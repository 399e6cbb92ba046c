"""The audit trail: append-only, HMAC-chained, verifiable, never forked by concurrent writers."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections, transaction

from audit.keys import ChainKeys
from audit.models import AppendOnlyError, AuditChainHead, AuditEvent
from audit.recorder import Actor, audit_record
from audit.verify import audit_chain_verify
from flags import services
from flags.models import Environment, Flag
from tests.audit.forgery import as_legacy, drop, edit_reason, hmac_with, plain_sha256, rechain

KEY_A = "key-a-secret-0123456789abcdefghijklmnop"
KEY_B = "key-b-secret-0123456789abcdefghijklmnop"


def _append(n: int, actor: Actor) -> None:
    for i in range(n):
        with transaction.atomic():
            audit_record(
                actor=actor,
                action="test.append",
                target_type="test",
                target_key=f"k{i}",
                after={"i": i},
            )


@pytest.mark.django_db
def test_event__cannot_be_saved_again_or_deleted(actor: Actor) -> None:
    _append(1, actor)
    event = AuditEvent.objects.get()
    event.reason = "rewritten"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.all().delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.update(reason="x")


@pytest.mark.django_db
@pytest.mark.django_db(transaction=True)
def test_audit_record__outside_a_transaction__is_refused(actor: Actor) -> None:
    with pytest.raises(RuntimeError, match="inside the change's transaction"):
        audit_record(actor=actor, action="x", target_type="t", target_key="k")
    assert not AuditEvent.objects.exists()


@pytest.mark.django_db
def test_chain__each_event_links_to_the_previous(
    make_flag: Callable[..., Flag], production: Environment, actor: Actor
) -> None:
    flag = make_flag()
    services.flag_kill(actor=actor, flag=flag, environment=production, reason="r")
    events = list(AuditEvent.objects.order_by("sequence"))
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(events))
    assert audit_chain_verify().ok


@pytest.mark.django_db
def test_verify__row_edited_in_sql__reports_that_event(
    actor: Actor, capsys: pytest.CaptureFixture[str]
) -> None:
    _append(5, actor)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE audit_auditevent SET reason = %s WHERE sequence = 3", ["nothing to see"]
        )
    report = audit_chain_verify()
    assert report.verified == 2
    assert "event #3 (test.append k2) was modified after it was written" in (report.problem or "")
    with pytest.raises(CommandError, match="BROKEN after 2 good events"):
        call_command("audit_verify")


@pytest.mark.django_db
def test_verify__row_deleted_in_sql__reports_the_gap(actor: Actor) -> None:
    _append(4, actor)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE sequence = 2")
    assert "event #2 is missing" in (audit_chain_verify().problem or "")


@pytest.mark.django_db
def test_verify__last_rows_deleted__detected_by_the_tip(actor: Actor) -> None:
    _append(4, actor)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE sequence = 4")
    assert "tip records event #4" in (audit_chain_verify().problem or "")


@pytest.mark.django_db
def test_verify__rewritten_and_rehashed_row__breaks_the_next_link(actor: Actor) -> None:
    _append(3, actor)
    forged = AuditEvent.objects.get(sequence=2)
    forged.reason = "forged"
    new_hash = forged.compute_hash(ChainKeys.from_settings())
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE audit_auditevent SET reason = %s, hash = %s WHERE sequence = 2",
            ["forged", new_hash],
        )
    assert "event #3 does not link" in (audit_chain_verify().problem or "")


@pytest.mark.django_db
def test_verify_command__intact_chain__prints_the_count(
    actor: Actor, capsys: pytest.CaptureFixture[str]
) -> None:
    _append(7, actor)
    call_command("audit_verify")
    out = capsys.readouterr().out
    assert "audit chain OK: 7 events verified; 0 legacy; HMAC-SHA256 by key test #1-#7" in out


@pytest.mark.django_db
def test_verify__reason_edited_and_later_hashes_recomputed_with_plain_sha256__is_detected(
    actor: Actor,
) -> None:
    _append(5, actor)
    rechain(edit_reason(2, "nothing to see"), plain_sha256)
    report = audit_chain_verify()
    assert report.verified == 1
    assert "event #2 (test.append k1) was modified after it was written" in (report.problem or "")
    with pytest.raises(CommandError, match="BROKEN after 1 good events") as error:
        call_command("audit_verify")
    assert error.value.returncode == 1


@pytest.mark.django_db
def test_verify__keyed_events_rewritten_as_legacy_sha256__is_detected_by_the_signed_tip(
    actor: Actor,
) -> None:
    _append(5, actor)
    rechain(lambda events: as_legacy(edit_reason(2, "nothing to see")(events)), plain_sha256)
    assert "the chain tip's signature does not match" in (audit_chain_verify().problem or "")


@pytest.mark.django_db
def test_verify__chain_recomputed_with_a_wrong_key__is_detected(actor: Actor) -> None:
    _append(5, actor)
    rechain(edit_reason(2, "nothing to see"), hmac_with("a-key-the-attacker-made-up"))
    problem = audit_chain_verify().problem or ""
    assert "event #2 (test.append k1) was modified after it was written" in problem
    assert "HMAC under key 'test'" in problem


@pytest.mark.django_db
def test_verify__row_deleted_and_the_rest_renumbered_and_rehashed__is_detected(
    actor: Actor,
) -> None:
    _append(5, actor)
    rechain(drop(2), plain_sha256)
    assert AuditEvent.objects.count() == 4
    report = audit_chain_verify()
    assert not report.ok and report.verified == 1
    assert "event #2 (test.append k2) was modified" in (report.problem or "")


def _signed_with_a_then_b(actor: Actor, settings: Any, *, on_b: int) -> None:
    """Two events signed with key a, then ``on_b`` after key b was put first."""
    settings.AUDIT_CHAIN_KEYS = {"a": KEY_A}
    _append(2, actor)
    settings.AUDIT_CHAIN_KEYS = {"b": KEY_B, "a": KEY_A}
    _append(on_b, actor)


@pytest.mark.django_db
def test_rotation__key_a_to_b__verifies_with_both_and_names_a_when_it_is_removed(
    actor: Actor, settings: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    settings.AUDIT_CHAIN_KEYS = {"a": KEY_A}
    _append(2, actor)
    settings.AUDIT_CHAIN_KEYS = {"b": KEY_B, "a": KEY_A}
    call_command("audit_rotate_key", "--reason", "yearly rotation", "--actor", "ops")
    _append(2, actor)

    events = list(AuditEvent.objects.order_by("sequence"))
    assert [e.key_id for e in events] == ["a", "a", "b", "b", "b"]
    rotation = events[2]
    assert (rotation.action, rotation.before, rotation.after) == (
        "audit.key_rotated",
        {"key_id": "a"},
        {"key_id": "b"},
    )
    call_command("audit_verify")
    assert "HMAC-SHA256 by key a #1-#2, b #3-#5" in capsys.readouterr().out

    settings.AUDIT_CHAIN_KEYS = {"b": KEY_B}
    with pytest.raises(CommandError) as error:
        call_command("audit_verify")
    assert "event #1 (test.append k0) is signed with key id 'a'" in str(error.value)
    assert "audit chain key id 'a' is not configured" in str(error.value)


@pytest.mark.django_db
def test_rotation__without_the_command__the_next_change_records_it(
    actor: Actor, settings: Any
) -> None:
    _signed_with_a_then_b(actor, settings, on_b=1)
    third = AuditEvent.objects.get(sequence=3)
    assert third.key_id == "b" and len(third.key_proof) == 64
    assert audit_chain_verify().ok
    call_command("audit_rotate_key")  # already on key b: writes nothing
    assert AuditEvent.objects.count() == 3


@pytest.mark.django_db
def test_rotation__moved_earlier_by_a_holder_of_the_new_key_only__is_detected(
    actor: Actor, settings: Any
) -> None:
    _signed_with_a_then_b(actor, settings, on_b=2)
    only_b = ChainKeys({"b": KEY_B})

    def resign_second_event_with_b(events: list[AuditEvent]) -> list[AuditEvent]:
        events[1].reason, events[1].key_id, events[1].key_proof = "forged", "b", "f" * 64
        events[2].key_proof = ""
        return events

    rechain(
        resign_second_event_with_b,
        lambda event: hmac_with(KEY_B)(event) if event.key_id == "b" else event.hash,
        sign_tip=lambda head: head.sign(only_b),
    )
    problem = audit_chain_verify().problem or ""
    assert "event #2 (test.append k1) switches the signing key from 'a' to 'b'" in problem
    assert "without a valid proof from 'a'" in problem


@pytest.mark.django_db
def test_rotation__previous_key_not_configured__refuses_the_write_and_says_which_key(
    actor: Actor, settings: Any
) -> None:
    settings.AUDIT_CHAIN_KEYS = {"a": KEY_A}
    _append(1, actor)
    settings.AUDIT_CHAIN_KEYS = {"b": KEY_B}
    with pytest.raises(CommandError, match=r"signed with key 'a'.*add a:<its secret>"):
        call_command("audit_rotate_key")
    assert AuditEvent.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_appenders__on_postgres__never_fork_the_chain() -> None:
    threads_n, per_thread = 8, 15
    barrier = threading.Barrier(threads_n)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            barrier.wait()
            _append(per_thread, Actor.cli(f"thread-{n}"))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    events = list(AuditEvent.objects.order_by("sequence"))
    assert len(events) == threads_n * per_thread
    assert len({e.prev_hash for e in events}) == len(events)  # no two events share a parent
    report = audit_chain_verify()
    assert report.ok and report.verified == threads_n * per_thread
    assert AuditChainHead.objects.get(pk=1).last_sequence == threads_n * per_thread
