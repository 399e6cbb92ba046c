"""`manage.py audit_verify`: prove the audit trail has not been edited or cut."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from audit.verify import audit_chain_verify


class Command(BaseCommand):
    help = "Verify the audit trail's hash chain; exit non-zero at the first broken link."

    def handle(self, *args: Any, **options: Any) -> None:
        report = audit_chain_verify()
        if not report.ok:
            raise CommandError(
                f"audit chain BROKEN after {report.verified} good events: {report.problem}"
            )
        self.stdout.write(f"audit chain OK: {report.verified} events verified")
