"""The audit chain's HMAC keys: parsed from AUDIT_CHAIN_KEYS, never stored in the database.

``AUDIT_CHAIN_KEYS`` is a comma-separated list of ``id:secret`` pairs. The first
pair signs new events; the others stay configured so that events they signed
(before a rotation) still verify. Each event stores the id of the key that
signed it, never the secret.

>>> parse_chain_keys(["k2026:new-secret", "k2025:old-secret"])
{'k2026': 'new-secret', 'k2025': 'old-secret'}
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

KEY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")
PRODUCTION_MIN_SECRET_LENGTH = 32

# Domain separation: the same key never MACs two kinds of message that could be confused.
EVENT_DOMAIN = b"flagsvc.audit.event.v1\n"
HEAD_DOMAIN = b"flagsvc.audit.head.v1\n"
ROTATION_DOMAIN = b"flagsvc.audit.key-rotated.v1\n"


class AuditKeyError(RuntimeError):
    """A key the chain needs is not configured; the message names it and says what to do."""


def parse_chain_keys(specs: Iterable[str], *, production: bool = False) -> dict[str, str]:
    """``["id:secret", ...]`` → ``{id: secret}`` in order; ValueError says what to fix."""
    keys: dict[str, str] = {}
    for spec in specs:
        spec = spec.strip()
        if not spec:
            continue
        key_id, sep, secret = spec.partition(":")
        if not sep or not secret:
            raise ValueError(
                f"AUDIT_CHAIN_KEYS entry {key_id!r} has no secret: write id:secret, e.g. "
                "k2026:<output of python -c 'import secrets; print(secrets.token_urlsafe(32))'>"
            )
        if not KEY_ID.match(key_id):
            raise ValueError(
                f"AUDIT_CHAIN_KEYS key id {key_id!r} is invalid: use 1-32 letters, digits, "
                "'.', '_' or '-', starting with a letter or digit"
            )
        if key_id in keys:
            raise ValueError(f"AUDIT_CHAIN_KEYS names key id {key_id!r} twice")
        if production and len(secret) < PRODUCTION_MIN_SECRET_LENGTH:
            raise ValueError(
                f"AUDIT_CHAIN_KEYS secret of key {key_id!r} is too short: use at least "
                f"{PRODUCTION_MIN_SECRET_LENGTH} random characters"
            )
        keys[key_id] = secret
    return keys


@dataclass(frozen=True)
class ChainKeys:
    """The configured keys: the first signs, all verify."""

    secrets: Mapping[str, str]

    @classmethod
    def from_settings(cls) -> ChainKeys:
        from django.conf import settings

        keys = dict(settings.AUDIT_CHAIN_KEYS)
        if not keys:
            raise AuditKeyError("AUDIT_CHAIN_KEYS is empty: configure at least one id:secret")
        return cls(keys)

    @property
    def signing_id(self) -> str:
        return next(iter(self.secrets))

    def mac(self, key_id: str, domain: bytes, message: str) -> str:
        """HMAC-SHA256 of ``message`` under key ``key_id``, as 64 hex characters."""
        secret = self.secrets.get(key_id)
        if secret is None:
            raise AuditKeyError(missing_key_message(key_id))
        return hmac.new(secret.encode(), domain + message.encode(), hashlib.sha256).hexdigest()

    def has(self, key_id: str) -> bool:
        return key_id in self.secrets


def missing_key_message(key_id: str) -> str:
    return (
        f"audit chain key id {key_id!r} is not configured: add {key_id}:<its secret> back to "
        "AUDIT_CHAIN_KEYS (after the signing key; retired keys stay configured so the events "
        "they signed can be verified)"
    )


def macs_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
