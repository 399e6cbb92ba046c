"""`manage.py audit_rotate_key`: record on the chain that the configured signing key takes over."""

import getpass
import socket
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.keys import AuditKeyError, ChainKeys
from audit.recorder import Actor, audit_key_rotate


class Command(BaseCommand):
    help = (
        "After putting a new id:secret first in AUDIT_CHAIN_KEYS (keeping the old one after "
        "it), write the audit.key_rotated event: signed with the new key and proven with the "
        "old one. Without it the next change records the rotation."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--reason", "-r", default="", help="why (recorded on the audit trail)")
        parser.add_argument(
            "--actor",
            default="",
            help="who is acting (default: the OS user and host, e.g. alice@ops-box)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        actor = Actor.cli(options["actor"] or f"{getpass.getuser()}@{socket.gethostname()}")
        signing_id = ChainKeys.from_settings().signing_id
        try:
            event = audit_key_rotate(actor=actor, reason=options["reason"])
        except AuditKeyError as error:
            raise CommandError(str(error)) from None
        if event is None:
            self.stdout.write(f"the audit chain is already signed with key {signing_id!r}")
            return
        previous = event.before["key_id"]
        self.stdout.write(
            f"audit chain key rotated from {repr(previous) if previous else 'legacy SHA-256'} "
            f"to {signing_id!r} at event #{event.sequence}"
        )
