"""The audit trail: append-only, hash-chained, verifiable, never forked by concurrent writers."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections, transaction

from audit.models import AppendOnlyError, AuditChainHead, AuditEvent
from audit.recorder import Actor, audit_record
from audit.verify import audit_chain_verify
from flags import services
from flags.models import Environment, Flag


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
    new_hash = forged.compute_hash()
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
    assert "audit chain OK: 7 events verified" in capsys.readouterr().out


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
