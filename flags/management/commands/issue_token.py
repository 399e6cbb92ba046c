"""`manage.py issue_token --kind KIND [--environment ENV] --name NAME`: a token, printed once.

The raw token is alone on the last line of the output, so scripts can take it with
`| tail -n 1`.
"""

from __future__ import annotations

import getpass
import socket
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.recorder import Actor
from flags import selectors, services
from flags.errors import ServiceError
from flags.models import ApiToken


class Command(BaseCommand):
    help = "Issue an API token (admin, server or client SDK key, kill key). It is shown once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--kind", required=True, choices=ApiToken.Kind.values, help="what the token may do"
        )
        parser.add_argument(
            "--environment",
            "-e",
            default=None,
            help="environment key: required for server and client keys, optional for kill keys",
        )
        parser.add_argument("--name", required=True, help="who uses it, e.g. checkout-service")
        parser.add_argument("--reason", "-r", default="", help="why (recorded on the audit trail)")

    def handle(self, *args: Any, **options: Any) -> None:
        known = ", ".join(selectors.environment_keys()) or "none yet"
        environment = None
        if options["environment"]:
            environment = selectors.environment_by_key(options["environment"])
            if environment is None:
                raise CommandError(f"No environment {options['environment']!r}; known: {known}.")
        elif options["kind"] in (ApiToken.Kind.SERVER, ApiToken.Kind.CLIENT):
            raise CommandError(
                f"A {options['kind']} SDK key belongs to one environment: add "
                f"--environment ENV (known: {known})."
            )
        actor = Actor.cli(f"{getpass.getuser()}@{socket.gethostname()}")
        try:
            token, raw = services.token_issue(
                actor=actor,
                kind=options["kind"],
                name=options["name"],
                environment=environment,
                reason=options["reason"],
            )
        except ServiceError as error:
            raise CommandError(error.message) from None
        where = f" for {environment.key}" if environment else ""
        self.stdout.write(
            f"Issued {token.get_kind_display()} {token.name!r}{where} (id {token.pk}, "
            f"ends in …{token.hint}). Store it now: it is not shown again."
        )
        self.stdout.write(raw)
