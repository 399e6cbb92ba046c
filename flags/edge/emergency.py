"""The kill and restore endpoints at the edge: the fast path, and the path while the database is out.

``POST /api/v1/flags/{key}/kill/`` and ``/restore/`` with a kill key or admin token
this process holds in memory, and a well-formed body, are served here: the key is
checked without a query, the audited service runs on the edge's database threads
(not behind Django's middleware and its one thread for sync views), and the answer
waits for the confirmation without holding a thread. Anything else — a session, an
unknown key, bad input, an unknown flag, a refusal — goes to Django's view, which
answers it (nothing was written). When the database is unreachable, the change
is applied through Redis instead (``flags.emergency``) and the answer says that
the kill is live while its durable record is pending.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from typing import Any
from urllib.parse import parse_qs

from django.conf import settings
from django.db import DatabaseError
from starlette.types import Receive, Scope, Send

from audit.models import AuditEvent
from audit.recorder import Actor
from flags import emergency, propagation, selectors, services
from flags.edge.state import EdgeState, run_db
from flags.errors import ServiceError
from flags.issued_secrets import secret_digest
from flags.kill_answers import kill_answer
from flags.tokens import TokenPrincipal
from flagsvc import metrics
from flagsvc.middleware import client_address
from flagsvc.storable import unstorable_text, without_unstorable

MAX_BODY = 64 * 1024
REQUEST_ID = re.compile(r"^[\x21-\x7e]{1,64}$")  # as flagsvc.middleware accepts it
MAX_REASON = 500
RUNBOOK = "docs/runbook.md, 'Kill while the database is down'"


def _answer(status: int, body: dict[str, Any], retry_after: int | None = None) -> list[Any]:
    content = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(content))]
    if retry_after:
        headers.append((b"retry-after", str(retry_after).encode()))
    return [
        {"type": "http.response.start", "status": status, "headers": headers},
        {"type": "http.response.body", "body": content},
    ]


def _error(status: int, code: str, message: str, retry_after: int | None = None) -> list[Any]:
    return _answer(status, {"error": {"code": code, "message": message, "fields": {}}}, retry_after)


def kill_or_restore(
    action: str, flag_key: str, environment_key: str, reason: str, actor: Actor
) -> tuple[dict[str, Any], str] | None:
    """The audited kill or restore, and its answer; None if it must be answered by Django
    (unknown flag or environment, or a refusal: nothing was written)."""
    found = selectors.flag_and_environment(flag_key, environment_key)
    if found is None:
        return None
    flag, environment = found
    operation = services.flag_kill if action == "kill" else services.flag_restore
    try:
        outcome = operation(actor=actor, flag=flag, environment=environment, reason=reason)
    except ServiceError:
        return None
    return kill_answer(outcome, environment), environment.lineage


def _dry_run(scope: Scope) -> bool:
    """A trigger test (``?dry_run=1``): only Django answers it, and it never kills; while the
    database is out it is refused (503) rather than carried out through Redis."""
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    return any(v.strip().lower() in ("1", "true", "yes") for v in query.get("dry_run", []))


class KillRoute:
    """One of the kill endpoints: Django's answer, unless Django's database is out."""

    def __init__(self, django: Any, state: EdgeState, action: str, kind: str = "flag") -> None:
        """``kind``: "flag" (``/flags/{key}/kill/``), "tag" (``/kill/`` with a tag) or
        "trigger" (``/triggers/{secret}/``, whose own action decides)."""
        self.django, self.state, self.action, self.kind = django, state, action, kind
        self.observe = metrics.Observer(f"edge:{kind}-{action}", "POST")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started_at = time.time()
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > MAX_BODY:
            await self.django(scope, receive, send)  # refused there, before it is read
            return
        body, complete = b"", False
        while not complete and len(body) <= MAX_BODY:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body += message.get("body", b"")
            complete = not message.get("more_body", False)
        dry_run = self.kind == "trigger" and _dry_run(scope)
        if not self.state.database_ok and complete and not dry_run:
            # The database is known to be out: don't make the commander wait for it.
            for message in await self.emergency(scope, body, started_at):
                await send(message)
            return
        if complete and self.state.database_ok and self.kind == "flag":
            began = time.perf_counter()
            fast = await self.fast(scope, body, started_at)
            if fast is not None:
                for message in fast:
                    await send(message)
                self.observe(200, began)
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
        if status == 503 and b'"database_unavailable"' in content and complete and not dry_run:
            captured = await self.emergency(scope, body, started_at)
        for message in captured:
            await send(message)

    def _principal(self, headers: dict[str, str]) -> tuple[str, TokenPrincipal] | None:
        scheme, _, raw = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not raw.strip():
            return None
        digest = secret_digest(raw.strip())
        principal = self.state.tokens.get(digest)
        if principal is None or principal.kind not in ("kill", "admin"):
            return None
        return digest, principal

    async def fast(self, scope: Scope, body: bytes, started_at: float) -> list[Any] | None:
        """The happy path without Django; None hands the request to Django's view."""
        headers = {k.decode().lower(): v.decode("latin-1") for k, v in scope["headers"]}
        found = self._principal(headers)
        if found is None:
            return None
        digest, principal = found
        try:
            data = json.loads(body)
        except ValueError:
            return None
        if not isinstance(data, dict) or set(data) - {"environment", "reason"}:
            return None
        reason, asked = data.get("reason"), data.get("environment")
        if not isinstance(reason, str) or not (asked is None or isinstance(asked, str)):
            return None
        if unstorable_text(data) is not None:
            return None  # NULs, lone surrogates: the API view names the field
        bound = principal.environment_key if principal.kind == "kill" else None
        if bound and asked and asked != bound:
            return None
        environment_key = asked or bound
        if not environment_key:
            return None
        request_id = headers.get("x-request-id", "")
        client = scope.get("client")
        actor = Actor(
            kind=AuditEvent.ActorKind.TOKEN,
            name=principal.name,
            request_id=request_id if REQUEST_ID.match(request_id) else uuid.uuid4().hex,
            source_ip=client_address(
                client[0] if client else "",
                headers.get("x-forwarded-for", ""),
                settings.TRUSTED_PROXIES,
            ),
        )
        self.state.used_digests[digest] = time.time()
        flag_key = scope["path_params"]["key"]
        try:
            done = await run_db(
                kill_or_restore, self.action, flag_key, environment_key, reason, actor
            )
        except DatabaseError:
            return None  # Django's view answers (and the emergency path takes over)
        if done is None:
            return None
        answer, lineage = done
        confirmation = await asyncio.get_running_loop().run_in_executor(
            None,
            lambda: propagation.change_confirm(
                environment_key, lineage, answer["environment_version"], started_at=started_at
            ),
        )
        messages = _answer(200, {**answer, "propagation": confirmation.as_dict()})
        messages[0]["headers"].append((b"x-request-id", actor.request_id.encode()))
        return messages

    async def emergency(self, scope: Scope, body: bytes, started_at: float) -> list[Any]:
        """The change through Redis while the database is out (``flags.emergency``)."""
        headers = {k.decode().lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            data = None
        data = data if isinstance(data, dict) else {}
        client = scope.get("client")
        address = client_address(
            client[0] if client else "",
            headers.get("x-forwarded-for", ""),
            settings.TRUSTED_PROXIES,
        )
        request_id = headers.get("x-request-id", "")
        request_id = request_id if REQUEST_ID.match(request_id) else uuid.uuid4().hex
        target = self.target(scope, headers, data, address, request_id)
        if isinstance(target, list):
            return target  # refused
        action, flags, environment, reason, actor = target
        loop = asyncio.get_running_loop()
        try:
            outcome = await loop.run_in_executor(
                None,
                lambda: emergency.emergency_apply(
                    action=action, flags=flags, environment=environment, reason=reason, actor=actor
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
        verb = "KILLED" if action == "kill" else "RESTORED"
        named = ", ".join(outcome.changed_flags)
        message = (
            f"{verb} {named} in {environment} through Redis: live at the edge, but the database "
            "is unreachable, so the durable record is PENDING; it will be written to the "
            "database and the audit trail as soon as the database is back."
            if outcome.changed
            else f"Already {'killed' if action == 'kill' else 'not killed'} in {environment}; "
            "nothing changed."
        )
        common = {
            "environment": environment,
            "environment_version": outcome.version,
            "emergency": True,
            "durable": False,
            "journal_entries": [entry.id for entry in outcome.entries],
            "message": message,
            "propagation": confirmation.as_dict(),
        }
        if self.kind == "tag":
            return _answer(
                200,
                {
                    "tag": data.get("tag"),
                    "incident": outcome.incident or None,
                    "changed": outcome.changed_flags,
                    "unchanged": [key for key in flags if key not in outcome.changed_flags],
                    **common,
                },
            )
        return _answer(
            200,
            {
                "flag": flags[0],
                "killed": outcome.kill is not None,
                "changed": outcome.changed,
                "kill": outcome.kill,
                **common,
            },
        )

    def target(
        self,
        scope: Scope,
        headers: dict[str, str],
        data: dict[str, Any],
        address: str,
        request_id: str,
    ) -> tuple[str, list[str], str, str, Actor] | list[Any]:
        """(action, flags, environment, reason, actor) of an emergency change, or a refusal."""
        if self.kind == "trigger":
            secret = scope["path_params"]["secret"]
            trigger = self.state.triggers.get(secret_digest(secret))
            if trigger is None:
                return _error(
                    503,
                    "database_unavailable",
                    "The database is unreachable and this server does not know this trigger "
                    f"URL: nothing was changed. Kill with a kill key (see {RUNBOOK}).",
                    retry_after=5,
                )
            note = data.get("note")
            note = without_unstorable(note).strip()[:300] if isinstance(note, str) else ""
            actor = Actor(
                AuditEvent.ActorKind.TRIGGER, f"trigger:{trigger.name}", request_id, address
            )
            fired = services.trigger_fire_reason(trigger.name, trigger.reason, note)
            return trigger.action, [trigger.flag], trigger.environment, fired, actor
        found = self._principal(headers)
        if found is None:
            return _error(
                503,
                "database_unavailable",
                "The database is unreachable, so nothing was changed. While it is out, only a "
                "kill key or an admin token this server already knows can kill or restore "
                f"(sessions and new keys live in the database). See {RUNBOOK}.",
                retry_after=5,
            )
        principal = found[1]
        reason, asked = data.get("reason"), data.get("environment")
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
        actor = Actor(AuditEvent.ActorKind.TOKEN, principal.name, request_id, address)
        if self.kind == "tag":
            tag = data.get("tag")
            flags = sorted(self.state.tags.get(tag, ())) if isinstance(tag, str) else []
            if not flags:
                return _error(
                    404, "not_found", f"No live flag carries the tag {tag!r} (as last known)."
                )
            return self.action, flags, environment, without_unstorable(reason), actor
        flag = scope["path_params"]["key"]
        return self.action, [flag], environment, without_unstorable(reason), actor
