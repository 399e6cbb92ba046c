"""`manage.py dev_keys`: development keys for `make run`, kept in var/dev-keys.env and reused.

Writes a file of `export` lines (FLAGSVC_URL and a server key, client key, kill key and
admin token of one environment) that a second terminal can `source`, so the runbook's
commands work verbatim against `make run`. A key in the file that the database no longer
knows (a reset database) or that was revoked is issued again; the others are kept.
Development only: it refuses to run unless DEBUG is on.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.recorder import Actor
from flags import selectors, services
from flags.models import ApiToken, Environment
from flags.tokens import token_digest

# (variable, token kind, bound to the environment)
KEYS = (
    ("FLAGSVC_SERVER_KEY", ApiToken.Kind.SERVER, True),
    ("FLAGSVC_CLIENT_KEY", ApiToken.Kind.CLIENT, True),
    ("FLAGSVC_KILL_KEY", ApiToken.Kind.KILL, True),
    ("FLAGSVC_ADMIN_TOKEN", ApiToken.Kind.ADMIN, False),
)


def read_exports(path: Path) -> dict[str, str]:
    """The `export NAME=value` lines of a file written by this command (empty if none)."""
    if not path.is_file():
        return {}
    values = {}
    for line in path.read_text().splitlines():
        if line.startswith("export ") and "=" in line:
            name, _, value = line.removeprefix("export ").partition("=")
            values[name] = "".join(shlex.split(value))
    return values


class Command(BaseCommand):
    help = "Development keys for `make run` (server, client, kill, admin), reused across runs."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--environment", "-e", default="production")
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="the server's URL")
        parser.add_argument(
            "--file", default=None, help="where to keep them (default: var/dev-keys.env)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError("dev_keys is for development (DEBUG=true, as `make run` sets).")
        environment = selectors.environment_by_key(options["environment"])
        if environment is None:
            raise CommandError(
                f"No environment {options['environment']!r}: run `manage.py seed_demo` first."
            )
        path = Path(options["file"] or Path(settings.VAR_DIR) / "dev-keys.env")
        kept = read_exports(path)
        values = {"FLAGSVC_URL": options["url"]}
        actor = Actor.system("make run")
        for variable, kind, bound in KEYS:
            scope = environment if bound else None
            raw = kept.get(variable, "")
            if raw and self._live(raw, kind, scope):
                self.stdout.write(f"reusing {variable} ({kind})")
            else:
                _, raw = services.token_issue(
                    actor=actor,
                    kind=kind,
                    name=f"make run {kind}" + (f" ({environment.key})" if bound else ""),
                    environment=scope,
                    reason="development keys for make run",
                )
                self.stdout.write(f"issued {variable} ({kind})")
            values[variable] = raw
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            "# Development keys of `make run` (manage.py dev_keys): `source` this file.\n"
            + "".join(f"export {name}={shlex.quote(value)}\n" for name, value in values.items())
        )
        path.chmod(0o600)
        self.stdout.write(f"development keys for {environment.key} in {path}")

    @staticmethod
    def _live(raw: str, kind: str, environment: Environment | None) -> bool:
        return selectors.live_token_exists(token_digest(raw), kind, environment)
