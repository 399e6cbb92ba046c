"""Secrets flagsvc must be able to read back (a webhook's signing secret, a receiver's
Authorization header), sealed at rest: a database dump or backup does not give them away.

Sealed with Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``) under a key derived
(HKDF-SHA256) from Django's ``SECRET_KEY``; values sealed under a key in
``SECRET_KEY_FALLBACKS`` still open, and are sealed under the current key when next
saved. A value stored before sealing existed (no ``fsv1:`` prefix) opens as itself.
A value no configured key opens (``SECRET_KEY`` changed without the old one among the
fallbacks) opens as "" and is logged: the webhook then refuses to deliver, asking for
a rotation, rather than sign with a wrong key.
"""

from __future__ import annotations

import base64
import functools
import logging
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.db import models

logger = logging.getLogger(__name__)

PREFIX = "fsv1:"
_INFO = b"flagsvc sealed secrets v1"


def _fernet(secret_key: str | bytes) -> Fernet:
    raw = secret_key.encode() if isinstance(secret_key, str) else secret_key
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(raw)
    return Fernet(base64.urlsafe_b64encode(derived))


@functools.cache
def _box(secret_key: str | bytes, fallbacks: tuple[str | bytes, ...]) -> MultiFernet:
    return MultiFernet([_fernet(key) for key in (secret_key, *fallbacks)])


def box() -> MultiFernet:
    """The current key first (it seals), then the fallbacks (they only open)."""
    return _box(settings.SECRET_KEY, tuple(getattr(settings, "SECRET_KEY_FALLBACKS", ())))


def seal(text: str) -> str:
    """``text`` sealed for storage ("" stays "": nothing to hide)."""
    if not text:
        return ""
    return PREFIX + box().encrypt(text.encode("utf-8")).decode("ascii")


def unseal(stored: str, *, what: str = "a sealed secret") -> str:
    """What ``seal`` was given; "" (logged) when no configured key opens it."""
    if not stored.startswith(PREFIX):
        return stored  # stored before sealing existed
    try:
        return box().decrypt(stored[len(PREFIX) :].encode("ascii")).decode("utf-8")
    except (InvalidToken, ValueError):
        logger.error(
            "%s cannot be opened with SECRET_KEY or SECRET_KEY_FALLBACKS (was SECRET_KEY "
            "changed without keeping the old one as a fallback?); it reads as empty",
            what,
        )
        return ""


class SealedTextField(models.TextField):
    """A text column sealed at rest (``seal``), plain text in Python. Sealing is randomised,
    so the column cannot be searched or compared in a query."""

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str | None:
        if value is None:
            return value
        return unseal(value, what=f"{self.model.__name__}.{self.name}")

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        return value if value is None else seal(value)
