"""`manage.py audit_checkpoint [--out FILE]`: export the verified chain's tip, to keep
outside the database."""

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.checkpoints import Checkpoint
from audit.models import AuditEvent
from audit.verify import audit_chain_verify


class Command(BaseCommand):
    help = (
        "Verify the audit chain, then print its tip as a checkpoint (one JSON line) or "
        "append it to --out FILE. Keep checkpoints where the database's users cannot write; "
        "audit_verify --checkpoints FILE proves they are still on the chain."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--out", type=Path, help="append the checkpoint line to this file")

    def handle(self, *args: Any, **options: Any) -> None:
        report = audit_chain_verify()
        if not report.ok:
            raise CommandError(
                f"no checkpoint written: audit chain BROKEN after {report.verified} good "
                f"events: {report.problem}"
            )
        if report.verified == 0:
            self.stderr.write("the audit trail is empty: nothing to checkpoint")
            return
        tip = AuditEvent.objects.get(sequence=report.verified)
        line = Checkpoint(tip.sequence, tip.hash, tip.key_id, tip.occurred_at.isoformat()).to_line()
        out: Path | None = options["out"]
        if out is None:
            self.stdout.write(line)
            return
        try:
            with out.open("a", encoding="utf-8") as file:
                file.write(line + "\n")
        except OSError as error:
            raise CommandError(f"cannot append to {out}: {error.strerror}", returncode=2) from None
        self.stdout.write(f"checkpoint #{tip.sequence} appended to {out}")
