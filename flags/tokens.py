"""API tokens: lookup by digest, who a token acts as, and last-used tracking without a write per request."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from django.db.models import Q

from flags import services
from flags.issued_secrets import secret_digest
from flags.models import ApiToken

USAGE_FLUSH_SECONDS = 60.0


def token_digest(raw: str) -> str:
    """The digest a token is stored and looked up by (the one every issued secret uses)."""
    return secret_digest(raw)


@dataclass(frozen=True)
class TokenPrincipal:
    """Who a request acts as: what a token may do, without the token itself."""

    token_id: int
    name: str
    kind: str
    environment_id: int | None
    environment_key: str | None
    digest: str

    @property
    def actor_name(self) -> str:
        return f"token:{self.name}"


def principal_for(token: ApiToken) -> TokenPrincipal:
    return TokenPrincipal(
        token_id=token.pk,
        name=token.name,
        kind=token.kind,
        environment_id=token.environment_id,
        environment_key=token.environment.key if token.environment else None,
        digest=token.digest,
    )


def token_lookup(raw: str) -> tuple[TokenPrincipal | None, str]:
    """The live token for a raw value, or None and why not (for the 401 message)."""
    if not raw or len(raw) > 200:
        return None, "missing or malformed token"
    token = ApiToken.objects.select_related("environment").filter(digest=token_digest(raw)).first()
    if token is None:
        return None, "unknown token"
    if token.revoked:
        return None, f"token '{token.name}' was revoked"
    usage.record(token.digest)
    return principal_for(token), ""


def live_token_principals() -> dict[str, TokenPrincipal]:
    """Every unrevoked token by digest (one query): the SDK edge's token map."""
    tokens = ApiToken.objects.select_related("environment").filter(Q(revoked_at__isnull=True))
    return {t.digest: principal_for(t) for t in tokens}


class TokenUsage:
    """Remembers when each token was last used and writes it at most once a minute."""

    def __init__(self, flush_seconds: float = USAGE_FLUSH_SECONDS) -> None:
        self.flush_seconds = flush_seconds
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()
        self._last_flush = time.monotonic()

    def record(self, digest: str) -> None:
        with self._lock:
            self._seen[digest] = time.time()
            due = time.monotonic() - self._last_flush >= self.flush_seconds
        if due:  # at most once a minute per process: one UPDATE per token used since
            self.flush()

    def pending(self) -> dict[str, float]:
        with self._lock:
            seen, self._seen = self._seen, {}
            self._last_flush = time.monotonic()
        return seen

    def flush(self) -> int:
        """Write the pending last-used times; returns how many tokens were updated."""
        return services.token_last_used_update(seen=self.pending())


usage = TokenUsage()
