"""``manage.py flagsvc_bootstrap flagsvc-bootstrap.json``: write the current snapshot to a
file for ``FLAGSVC["BOOTSTRAP"]``, so that a deploy starts with real values even when flagsvc
is unreachable (run it in the build, commit it, or bake it into the image)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from flagsvc_sdk.django.conf import get_client


class Command(BaseCommand):
    help = "Write flagsvc's current snapshot to a bootstrap file (FLAGSVC['BOOTSTRAP'])."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="file to write (replaced atomically)")
        parser.add_argument(
            "--timeout", type=float, default=10.0, help="seconds to wait for the server"
        )
        parser.add_argument(
            "--allow-stale",
            action="store_true",
            help="write the bootstrap snapshot in use when the server does not answer",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        client = get_client()
        fresh = client.wait_for_ready(options["timeout"])
        snapshot = client.snapshot
        if snapshot is None or not (fresh or options["allow_stale"]):
            raise CommandError(
                f"flagsvc did not answer within {options['timeout']} s ({client.last_error or client.status}); "
                "check FLAGSVC['URL'] and FLAGSVC['SDK_KEY'], or pass --allow-stale"
            )
        path = Path(options["path"])
        descriptor, temporary = tempfile.mkstemp(dir=path.parent or ".", prefix=f".{path.name}.")
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(snapshot.document, handle, ensure_ascii=False, separators=(",", ":"))
        os.replace(temporary, path)
        self.stdout.write(
            f"wrote {snapshot.environment} version {snapshot.version} "
            f"({len(snapshot.document['flags'])} flags) to {path}"
            + ("" if fresh else " (stale: the server did not answer)")
        )
