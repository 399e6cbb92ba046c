"""Shared argument handling of the kill and restore commands."""

from __future__ import annotations

import getpass
import socket
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.recorder import Actor
from flags import propagation
from flags.models import Environment, Flag


class EnvironmentFlagCommand(BaseCommand):
    """A command acting on one flag in one environment, needing only the database."""

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("flag", help="flag key, e.g. new-checkout")
        parser.add_argument(
            "--environment", "-e", required=True, help="environment key, e.g. production"
        )
        parser.add_argument(
            "--reason", "-r", required=True, help="why (recorded on the audit trail)"
        )
        parser.add_argument(
            "--actor",
            default="",
            help="who is acting (default: the OS user and host, e.g. alice@ops-box)",
        )

    def resolve(self, options: dict[str, Any]) -> tuple[Flag, Environment, Actor]:
        flag = Flag.objects.filter(key=options["flag"]).first()
        if flag is None:
            raise CommandError(
                f"No flag {options['flag']!r}. List them with: manage.py shell -c "
                "\"from flags.models import Flag; print(*Flag.objects.values_list('key', flat=True))\""
            )
        environment = Environment.objects.filter(key=options["environment"]).first()
        if environment is None:
            known = ", ".join(Environment.objects.values_list("key", flat=True))
            raise CommandError(f"No environment {options['environment']!r}; known: {known}")
        actor = Actor.cli(options["actor"] or f"{getpass.getuser()}@{socket.gethostname()}")
        self.started_at = time.time()
        return flag, environment, actor

    def confirm(self, environment: Environment, version: int) -> None:
        """Say whether every live edge process serves the new version (waits at most a second)."""
        confirmation = propagation.change_confirm(
            environment.key, environment.lineage, version, started_at=self.started_at
        )
        style = self.style.SUCCESS if confirmation.complete else self.style.ERROR
        self.stdout.write(style(f"Propagation: {confirmation.text()}."))
