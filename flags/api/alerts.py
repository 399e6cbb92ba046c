"""A trigger's alert body: optional context, read no further than a cap and kept only where safe.

APM tools post JSON of every shape (and sometimes garbage). The kill never depends on
it: the trigger URL alone fires it. From the body only a short note is taken (its
``note``, ``reason``, ``title``, ``message``, ``alert`` or ``summary`` string), with NUL
characters and lone surrogates removed; a body that is too large, not UTF-8, not JSON
or nested too deep is ignored, and the answer says why.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from drf_spectacular.utils import inline_serializer
from rest_framework import serializers

from flagsvc.middleware import ALERT_BODY_MAX_BYTES
from flagsvc.storable import without_unstorable

NOTE_FIELDS = ("note", "reason", "title", "message", "alert", "summary")


@dataclass(frozen=True)
class AlertBody:
    """What became of the alert body: the note taken from it, or why it was ignored."""

    note: str = ""
    used: bool = False
    detail: str = "no body"

    def answer(self) -> dict[str, Any]:
        return {"used": self.used, "detail": self.detail}


ALERT_BODY_OUT = inline_serializer(
    "AlertBodyUse",
    {
        "used": serializers.BooleanField(help_text="True when a note was taken from the body."),
        "detail": serializers.CharField(
            help_text="What was taken, or why the body was ignored (over "
            f"{ALERT_BODY_MAX_BYTES} bytes, not UTF-8, not JSON, nested too deep)."
        ),
    },
)


def _ignored(why: str) -> AlertBody:
    return AlertBody(detail=f"ignored: {why} (the trigger fired all the same)")


def alert_body_of(request: Any) -> AlertBody:
    """Read at most ALERT_BODY_MAX_BYTES + 1 bytes of the body and take its note, if any.

    Never raises: whatever the body is, the trigger fires.
    """
    try:
        raw = request.read(ALERT_BODY_MAX_BYTES + 1)
    except Exception:  # a client that hangs up mid-body, a broken stream
        return _ignored("the body could not be read")
    if not raw.strip():
        return AlertBody()
    if len(raw) > ALERT_BODY_MAX_BYTES:
        return _ignored(f"larger than {ALERT_BODY_MAX_BYTES} bytes")
    try:
        payload = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return _ignored("not UTF-8")
    except RecursionError:
        return _ignored("JSON nested too deeply")
    except ValueError:
        return _ignored("not JSON")
    if not isinstance(payload, dict):
        return _ignored("not a JSON object")
    for field in NOTE_FIELDS:
        value = payload.get(field)
        if isinstance(value, str) and value.strip():
            note = without_unstorable(value).strip()
            cleaned = (
                " (NUL characters and unpaired surrogates removed)" if note != value.strip() else ""
            )
            return AlertBody(note=note, used=True, detail=f"note taken from {field!r}{cleaned}")
    return AlertBody(detail=f"no {'/'.join(NOTE_FIELDS)} string in the body; nothing taken")
