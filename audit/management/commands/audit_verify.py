"""`manage.py audit_verify [--checkpoints FILE]`: prove the audit trail has not been edited,
cut or rewritten."""

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.checkpoints import CheckpointFileError, parse_checkpoints
from audit.verify import audit_chain_verify


class Command(BaseCommand):
    help = (
        "Verify the audit trail's HMAC chain, key rotations and signed tip (and exported "
        "checkpoints); exit 1 at the first broken link."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--checkpoints",
            type=Path,
            help="a file of exported checkpoints, one JSON object per line (audit_checkpoint "
            "--out, or the audit.checkpoint log lines): each must still be on the chain",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        checkpoints = []
        if options["checkpoints"] is not None:
            path: Path = options["checkpoints"]
            try:
                with path.open(encoding="utf-8") as lines:
                    checkpoints = parse_checkpoints(lines)
            except OSError as error:
                raise CommandError(
                    f"cannot read checkpoints file {path}: {error.strerror}", returncode=2
                ) from None
            except CheckpointFileError as error:
                raise CommandError(f"checkpoints file {path}: {error}", returncode=2) from None
        report = audit_chain_verify(checkpoints=checkpoints)
        if not report.ok:
            raise CommandError(
                f"audit chain BROKEN after {report.verified} good events: {report.problem}"
            )
        self.stdout.write(f"audit chain OK: {report.summary()}")
