"""The base of every refused request an app raises; the API answers it with its own status."""

from __future__ import annotations


class Refusal(Exception):
    """A refused request: nothing was written. ``status``, ``code`` and ``fields`` shape the answer."""

    code = "invalid_request"
    status = 400

    def __init__(self, message: str, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}
