"""Webhook signatures: HMAC-SHA256 over ``<timestamp>.<body>`` with the subscription's secret.

A receiver recomputes it from the ``X-Flagsvc-Timestamp`` header and the raw body,
compares in constant time, and refuses old timestamps (replays); see the README. While a
rotated secret's overlap lasts, the header lists one signature per secret, the new one
first, separated by ", "; a receiver accepts the delivery when any of them matches.
"""

from __future__ import annotations

import hashlib
import hmac

from flags.issued_secrets import secret_generate

SECRET_PREFIX = "fsv_whsec_"
SIGNATURE_HEADER = "X-Flagsvc-Signature"
TIMESTAMP_HEADER = "X-Flagsvc-Timestamp"


def signing_secret_generate() -> str:
    """A new per-subscription signing secret (256 random bits), shown to its creator once."""
    return secret_generate(SECRET_PREFIX)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Flagsvc-Signature`` value: ``sha256=`` and the hex HMAC of ``timestamp.body``."""
    message = str(timestamp).encode("ascii") + b"." + body
    return "sha256=" + hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signature_header(secrets: list[str], timestamp: int, body: bytes) -> str:
    """The ``X-Flagsvc-Signature`` header: the signature with each secret, joined by ", "."""
    return ", ".join(signature(secret, timestamp, body) for secret in secrets)


def signature_valid(secret: str, timestamp: int, body: bytes, header: str) -> bool:
    """Whether ``header`` holds the signature of ``body`` at ``timestamp`` with ``secret``
    (each listed signature compared in constant time)."""
    expected = signature(secret, timestamp, body)
    found = False
    for given in header.split(","):
        found |= hmac.compare_digest(expected, given.strip())
    return found
