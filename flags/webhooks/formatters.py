"""What a change looks like outside flagsvc: pure functions from an audit event to a request body.

``event_document`` is the audit event as JSON (the ``json`` format's body, under
``event``); ``slack_message`` one readable line for a Slack-compatible incoming webhook;
``grafana_annotation`` a release marker for Grafana's ``POST /api/annotations``. Another
tool (Datadog events, PagerDuty change events) is one more function of the same shape:
``(document, kind, link) -> dict``, registered in ``FORMATTERS``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import quote

# Which audit actions each event kind covers (a subscription picks kinds; none: all of them).
KINDS = {
    "flag_change": "flag definitions and per-environment states, segments",
    "kill": "kills and restores (people, kill keys, triggers, guardrails)",
    "rollout": "rollout plan steps and plan changes",
    "guardrail": "guardrail breaches",
}


def event_kind(action: str) -> str | None:
    """The kind of an audit action, or None for changes not sent out (credentials, webhooks)."""
    if action in ("flag.kill", "flag.restore", "trigger.fire"):
        return "kill"
    if action.startswith(("flag.", "flag_state.", "segment.")):
        return "flag_change"
    if action.startswith("rollout_plan."):
        return "rollout"
    if action == "guardrail.breach":
        return "guardrail"
    return None


def event_document(
    *,
    sequence: int,
    occurred_at: datetime,
    actor: str,
    actor_kind: str,
    action: str,
    target_type: str,
    target_key: str,
    flag_key: str,
    environment_key: str,
    before: Any,
    after: Any,
    reason: str,
    incident_id: str | None,
) -> dict[str, Any]:
    """An audit event as webhooks carry it."""
    return {
        "sequence": sequence,
        "occurred_at": occurred_at.isoformat().replace("+00:00", "Z"),
        "actor": actor,
        "actor_kind": actor_kind,
        "action": action,
        "target_type": target_type,
        "target_key": target_key,
        "flag": flag_key or None,
        "environment": environment_key or None,
        "before": before,
        "after": after,
        "reason": reason,
        "incident_id": incident_id,
    }


def flag_link(base_url: str, flag_key: str | None) -> str | None:
    """Where a person reads the flag (the admin's flag list filtered to it), if flagsvc's URL is known."""
    if not base_url or not flag_key:
        return None
    return f"{base_url.rstrip('/')}/admin/flags/flag/?q={quote(flag_key)}"


def _percentage(document: dict[str, Any]) -> str:
    plan = (document.get("after") or {}).get("rollout_plan") or {}
    return f" to {plan['percentage']:g}%" if isinstance(plan.get("percentage"), int | float) else ""


def summary(document: dict[str, Any], flag_text: str | None = None) -> str:
    """One line: who did what to which flag, where, and why (``flag_text``: the flag as shown)."""
    action = document["action"]
    flag = flag_text or document.get("flag") or document["target_key"]
    where = f" in {document['environment']}" if document.get("environment") else ""
    verbs = {
        "flag.kill": f"killed {flag}{where}",
        "flag.restore": f"restored {flag}{where}",
        "flag_state.update": f"changed {flag}{where}",
        "flag.create": f"created {flag}",
        "flag.update": f"edited {flag}",
        "flag.archive": f"archived {flag}",
        "rollout_plan.step": f"stepped the rollout of {flag}{_percentage(document)}{where}",
        "rollout_plan.skip": f"skipped the rollout of {flag}{_percentage(document)}{where}",
        "rollout_plan.step_back": f"stepped the rollout of {flag} back{where}",
        "rollout_plan.pause": f"paused the rollout of {flag}{where}",
        "guardrail.breach": f"saw guardrail breach on {flag}{where}",
    }
    what = verbs.get(action, f"{action} {flag}{where}")
    why = f": {document['reason']}" if document.get("reason") else ""
    return f"{document['actor']} {what}{why}"


def json_body(document: dict[str, Any], kind: str, link: str | None) -> dict[str, Any]:
    """The ``json`` format: the event, its kind and a link to the flag."""
    return {"kind": kind, "summary": summary(document), "flag_url": link, "event": document}


def slack_message(document: dict[str, Any], kind: str, link: str | None) -> dict[str, Any]:
    """A Slack-compatible incoming-webhook body: one readable line, the flag linked."""
    flag = document.get("flag")
    line = summary(document, f"<{link}|{flag}>" if link and flag else None)
    icon = {"kill": ":red_circle:", "guardrail": ":rotating_light:"}.get(
        kind, ":triangular_flag_on_post:"
    )
    return {"text": f"{icon} {line}"}


def grafana_annotation(document: dict[str, Any], kind: str, link: str | None) -> dict[str, Any]:
    """A Grafana annotation (release marker): the time, tags for flag and environment, the line."""
    occurred = datetime.fromisoformat(document["occurred_at"].replace("Z", "+00:00"))
    tags = ["flagsvc", kind, document["action"]]
    if document.get("flag"):
        tags.append(f"flag:{document['flag']}")
    if document.get("environment"):
        tags.append(f"environment:{document['environment']}")
    text = summary(document) + (f' <a href="{link}">flag</a>' if link else "")
    return {"time": int(occurred.timestamp() * 1000), "tags": tags, "text": text}


FORMATTERS: dict[str, Callable[[dict[str, Any], str, str | None], dict[str, Any]]] = {
    "json": json_body,
    "slack": slack_message,
    "grafana": grafana_annotation,
}
