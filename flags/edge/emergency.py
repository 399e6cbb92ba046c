"""Kill and restore endpoints that still work while the database is unreachable.

``POST /api/v1/flags/{key}/kill/`` and ``/restore/`` go to Django as usual. When
Django answers that its database is unreachable, this process applies the
change through Redis instead (``flags.emergency``), authenticating the caller's
kill key or admin token from the key map it holds in memory, and answers that
the kill is live while its durable record is pending.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from typing import Any

from starlette.types import Receive, Scope, Send

from audit.models import AuditEvent
from audit.recorder import Actor
from flags import emergency, propagation
from flags.edge.state import EdgeState

MAX_BODY = 64 * 1024
MAX_REASON = 500
RUNBOOK = "docs/runbook.md, 'Kill while the database is down'"


def _answer(status: int, body: dict[str, Any], retry_after: int | None = None) -> list[Any]:
    headers = [(b"content-type", b"application/json")]
    if retry_after:
        headers.append((b"retry-after", str(retry_after).encode()))
    return [
        {"type": "http.response.start", "status": status, "headers": headers},
        {"type": "http.response.body", "body": json.dumps(body).encode()},
    ]


def _error(status: int, code: str, message: str, retry_after: int | None = None) -> list[Any]:
    return _answer(status, {"error": {"code": code, "message": message, "fields": {}}}, retry_after)


class KillRoute:
    """One of the kill endpoints: Django's answer, unless Django's database is out."""

    def __init__(self, django: Any, state: EdgeState, action: str) -> None:
        self.django, self.state, self.action = django, state, action

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started_at = time.time()
        body, complete = b"", False
        while not complete and len(body) <= MAX_BODY:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body += message.get("body", b"")
            complete = not message.get("more_body", False)
        if not self.state.database_ok and complete:
            # The database is known to be out: don't make the commander wait for it.
            for message in await self.emergency(scope, body, started_at):
                await send(message)
            return
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": not complete}
            return await receive()

        captured: list[Any] = []

        async def capture(message: Any) -> None:
            captured.append(message)

        await self.django(scope, replay, capture)
        status = captured[0]["status"] if captured else 500
        content = b"".join(m.get("body", b"") for m in captured[1:])
        if status == 503 and b'"database_unavailable"' in content and complete:
            captured = await self.emergency(scope, body, started_at)
        for message in captured:
            await send(message)

    async def emergency(self, scope: Scope, body: bytes, started_at: float) -> list[Any]:
        headers = {k.decode().lower(): v.decode("latin-1") for k, v in scope["headers"]}
        scheme, _, raw = headers.get("authorization", "").partition(" ")
        principal = (
            self.state.tokens.get(hashlib.sha256(raw.strip().encode()).hexdigest())
            if scheme.lower() == "bearer" and raw.strip()
            else None
        )
        if principal is None or principal.kind not in ("kill", "admin"):
            return _error(
                503,
                "database_unavailable",
                "The database is unreachable, so nothing was changed. While it is out, only a "
                "kill key or an admin token this server already knows can kill or restore "
                f"(sessions and new keys live in the database). See {RUNBOOK}.",
                retry_after=5,
            )
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            data = None
        reason = data.get("reason") if isinstance(data, dict) else None
        asked = data.get("environment") if isinstance(data, dict) else None
        if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON:
            return _error(400, "validation_failed", "Give a reason (at most 500 characters).")
        bound = principal.environment_key if principal.kind == "kill" else None
        if bound and asked and asked != bound:
            return _error(
                403, "permission_denied", f"This kill key is bound to {bound!r}, not {asked!r}."
            )
        environment = asked or bound
        if not isinstance(environment, str) or not environment:
            return _error(
                400, "validation_failed", 'Say which environment: {"environment": "production"}.'
            )
        client = scope.get("client")
        actor = Actor(
            kind=AuditEvent.ActorKind.TOKEN,
            name=principal.name,
            request_id=headers.get("x-request-id", "")[:64],
            source_ip=client[0] if client else "",
        )
        flag = scope["path_params"]["key"]
        loop = asyncio.get_running_loop()
        try:
            outcome = await loop.run_in_executor(
                None,
                lambda: emergency.emergency_apply(
                    action=self.action,
                    flag=flag,
                    environment=environment,
                    reason=reason.strip(),
                    actor=actor,
                ),
            )
        except emergency.EmergencyRefused as refused:
            return _error(refused.status, refused.code, refused.message)
        except emergency.EmergencyUnavailable as unavailable:
            return _error(
                503,
                "database_and_cache_unavailable",
                f"The database and Redis are both unreachable ({unavailable}): nothing was "
                "changed, and no server can change flags until one of them is back. Last resort: "
                f"ship the fallback in the application itself. See {RUNBOOK}.",
                retry_after=5,
            )
        confirmation = await loop.run_in_executor(
            None,
            lambda: propagation.change_confirm(
                environment, outcome.lineage, outcome.version, started_at=started_at
            ),
        )
        verb = "KILLED" if self.action == "kill" else "RESTORED"
        message = (
            f"{verb} {flag} in {environment} through Redis: live at the edge, "
            "but the database is unreachable, so its durable record is PENDING; it will be "
            "written to the database and the audit trail as soon as the database is back."
            if outcome.changed
            else f"{flag} already was {'killed' if self.action == 'kill' else 'not killed'} "
            f"in {environment}; nothing changed."
        )
        return _answer(
            200,
            {
                "flag": flag,
                "environment": environment,
                "killed": outcome.kill is not None,
                "changed": outcome.changed,
                "kill": outcome.kill,
                "environment_version": outcome.version,
                "emergency": True,
                "durable": False,
                "journal_entry": outcome.entry.id if outcome.entry else None,
                "message": message,
                "propagation": confirmation.as_dict(),
            },
        )
