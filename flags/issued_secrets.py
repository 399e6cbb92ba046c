"""Issued secrets' raw values: how API tokens and kill-trigger secrets are made and digested."""

from __future__ import annotations

import hashlib
import hmac
import secrets

SECRET_BYTES = 32  # 256 bits of randomness
# A prefix per kind makes a leaked secret recognisable (and lets scanners find it).
TOKEN_PREFIXES = {
    "admin": "fsv_admin_",
    "server": "fsv_server_",
    "client": "fsv_client_",
    "kill": "fsv_kill_",
}
TRIGGER_PREFIX = "fsv_trigger_"


def secret_generate(prefix: str) -> str:
    """A new raw secret: the prefix and 256 random bits, URL-safe."""
    return prefix + secrets.token_urlsafe(SECRET_BYTES)


def secret_digest(raw: str) -> str:
    """What is stored and looked up instead of the raw secret (hex SHA-256)."""
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def digests_equal(a: str, b: str) -> bool:
    """Compare two digests in constant time."""
    return hmac.compare_digest(a, b)
