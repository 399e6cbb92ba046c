"""Checkpoints: the chain's (sequence, hash) exported out of the database catch a rewrite
even by someone who holds the chain key."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction

from audit.keys import ChainKeys
from audit.models import AuditEvent
from audit.recorder import Actor, audit_record
from tests.audit.forgery import edit_reason, rechain


def _append(n: int, actor: Actor) -> None:
    for i in range(n):
        with transaction.atomic():
            audit_record(actor=actor, action="test.append", target_type="test", target_key=f"k{i}")


def _rewrite_with_the_right_key(sequence: int) -> None:
    keys = ChainKeys.from_settings()
    rechain(
        edit_reason(sequence, "nothing to see"),
        lambda e: e.compute_hash(keys),
        sign_tip=lambda h: h.sign(keys),
    )


@pytest.mark.django_db
def test_checkpoint_command__prints_the_verified_tip_as_one_json_line(
    actor: Actor, capsys: pytest.CaptureFixture[str]
) -> None:
    _append(3, actor)
    call_command("audit_checkpoint")
    checkpoint = json.loads(capsys.readouterr().out)
    tip = AuditEvent.objects.get(sequence=3)
    assert checkpoint["sequence"] == 3
    assert checkpoint["hash"] == tip.hash
    assert checkpoint["key_id"] == "test"


@pytest.mark.django_db
def test_verify__checkpoint_exported_before_a_rewrite_with_the_right_key__catches_it(
    actor: Actor, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checkpoints = tmp_path / "audit-checkpoints.jsonl"
    _append(3, actor)
    call_command("audit_checkpoint", "--out", str(checkpoints))
    _append(2, actor)
    call_command("audit_checkpoint", "--out", str(checkpoints))
    call_command("audit_verify", "--checkpoints", str(checkpoints))
    out = capsys.readouterr().out
    assert "5 events verified" in out and "2 exported checkpoints matched" in out

    _rewrite_with_the_right_key(2)

    call_command("audit_verify")  # the key alone cannot tell: the rewrite is well signed
    with pytest.raises(CommandError) as error:
        call_command("audit_verify", "--checkpoints", str(checkpoints))
    assert error.value.returncode == 1
    assert "BROKEN after 2 good events: event #3 does not match the exported checkpoint #3" in str(
        error.value
    )


@pytest.mark.django_db
def test_verify__checkpoint_beyond_the_end__catches_events_cut_off_with_the_key(
    actor: Actor, tmp_path: Path
) -> None:
    checkpoints = tmp_path / "audit-checkpoints.jsonl"
    _append(4, actor)
    call_command("audit_checkpoint", "--out", str(checkpoints))
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE sequence = 4")
    keys = ChainKeys.from_settings()
    rechain(lambda events: events, lambda e: e.hash, sign_tip=lambda head: head.sign(keys))

    call_command("audit_verify")
    with pytest.raises(CommandError, match="checkpoint #4 is beyond the last stored event #3"):
        call_command("audit_verify", "--checkpoints", str(checkpoints))


def _logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The audit.checkpoint lines as a log file holds them, prefix and all."""
    return [
        f"2026-11-29 03:00:00,000 INFO {r.name} {r.getMessage()}"
        for r in caplog.records
        if r.name == "audit.checkpoint"
    ]


@pytest.mark.django_db
def test_recorder__logs_committed_checkpoints_that_verify_reads_from_the_log(
    actor: Actor,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.INFO, logger="audit.checkpoint")
    _append(4, actor)
    lines = _logged(caplog)
    # Each write exports the tip it found committed: #1-#3; #4 goes out with the next write.
    assert [json.loads(line[line.index("{") :])["sequence"] for line in lines] == [1, 2, 3]
    log = tmp_path / "app.log"
    log.write_text("\n".join(lines) + "\n")
    call_command("audit_verify", "--checkpoints", str(log))
    assert "3 exported checkpoints matched" in capsys.readouterr().out

    _rewrite_with_the_right_key(3)
    with pytest.raises(CommandError, match="event #3 does not match the exported checkpoint #3"):
        call_command("audit_verify", "--checkpoints", str(log))


@pytest.mark.django_db
def test_recorder__rolled_back_event__is_never_exported(
    actor: Actor, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="audit.checkpoint")
    _append(2, actor)
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        audit_record(actor=actor, action="test.lost", target_type="test", target_key="k")
        1 / 0  # noqa: B018  the change fails after its audit event was written
    _append(2, actor)  # the next event takes the rolled-back one's sequence, #3
    log = tmp_path / "app.log"
    log.write_text("\n".join(_logged(caplog)) + "\n")
    call_command("audit_verify", "--checkpoints", str(log))


@pytest.mark.django_db
def test_recorder__every_n_events__exports_every_nth_and_each_key_change(
    actor: Actor, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.AUDIT_CHECKPOINT_EVERY = 2
    caplog.set_level(logging.INFO, logger="audit.checkpoint")
    _append(5, actor)
    settings.AUDIT_CHAIN_KEYS = {"next": "n" * 40, **settings.AUDIT_CHAIN_KEYS}
    _append(1, actor)  # #6, the first signed with the new key: exports the old key's last
    logged = [json.loads(r.getMessage()) for r in caplog.records if r.name == "audit.checkpoint"]
    assert [(c["sequence"], c["key_id"]) for c in logged] == [
        (2, "test"),
        (4, "test"),
        (5, "test"),
    ]
    settings.AUDIT_CHECKPOINT_EVERY = 5
    _append(2, actor)  # #7 and #8: neither #6 nor #7 is a multiple of 5 or a key change
    assert len([r for r in caplog.records if r.name == "audit.checkpoint"]) == 3


@pytest.mark.django_db
def test_verify__unreadable_checkpoints_file__exit_2_names_the_line(
    actor: Actor, tmp_path: Path
) -> None:
    _append(1, actor)
    checkpoints = tmp_path / "audit-checkpoints.jsonl"
    checkpoints.write_text('{"sequence": 1, "hash": "abc"}\n')
    with pytest.raises(CommandError, match="line 1 is not a checkpoint") as error:
        call_command("audit_verify", "--checkpoints", str(checkpoints))
    assert error.value.returncode == 2
    with pytest.raises(CommandError, match="cannot read checkpoints file"):
        call_command("audit_verify", "--checkpoints", str(tmp_path / "missing.jsonl"))


@pytest.mark.django_db
def test_checkpoint_command__broken_chain__exports_nothing(actor: Actor, tmp_path: Path) -> None:
    _append(3, actor)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditevent SET reason = 'x' WHERE sequence = 2")
    out = tmp_path / "audit-checkpoints.jsonl"
    with pytest.raises(CommandError, match="no checkpoint written: audit chain BROKEN"):
        call_command("audit_checkpoint", "--out", str(out))
    assert not out.exists()
