"""Who is calling the management API: a bearer token, or a logged-in staff session."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, SessionAuthentication
from rest_framework.request import Request

from audit.models import AuditEvent
from audit.recorder import Actor
from flags.tokens import TokenPrincipal, token_lookup

AUTH_SCHEME = "Bearer"


class TokenInvalid(exceptions.AuthenticationFailed):
    default_code = "invalid_token"


class BearerTokenAuthentication(BaseAuthentication):
    """``Authorization: Bearer <token>``: ``request.auth`` becomes the token's TokenPrincipal.

    A request with no Authorization header (or another scheme) is left to the
    next authenticator; a bearer token that is unknown or revoked is refused
    outright, never silently treated as anonymous.
    """

    def authenticate(self, request: Request) -> tuple[Any, TokenPrincipal] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        scheme, _, raw = header.strip().partition(" ")
        if scheme.lower() != AUTH_SCHEME.lower():
            return None
        raw = raw.strip()
        if not raw or " " in raw:
            raise TokenInvalid(
                "The Authorization header must be 'Bearer <token>' with exactly one token."
            )
        principal, why = token_lookup(raw)
        if principal is None:
            if why.startswith("token '") and why.endswith("was revoked"):
                raise TokenInvalid(f"{why}; issue a new one (POST /api/v1/tokens/).")
            raise TokenInvalid(
                f"{why.capitalize()}: check the token you sent, or issue a new one "
                "(POST /api/v1/tokens/ or manage.py issue_token)."
            )
        return TokenUser(principal), principal

    def authenticate_header(self, request: Request) -> str:
        # Its presence makes DRF answer 401 (not 403) when credentials are missing or bad.
        return f'{AUTH_SCHEME} realm="flagsvc"'


class TokenUser:
    """``request.user`` for a token request: authenticated, never staff, never a Django user."""

    is_authenticated = True
    is_anonymous = False
    is_staff = False
    is_superuser = False
    is_active = True
    pk = None
    id = None

    def __init__(self, principal: TokenPrincipal) -> None:
        self.principal = principal

    def get_username(self) -> str:
        return self.principal.name

    def __str__(self) -> str:
        return f"token {self.principal.name}"


class StaffSessionAuthentication(SessionAuthentication):
    """The Django admin's session, with DRF's CSRF check on unsafe methods."""


def principal_of(request: Request) -> TokenPrincipal | None:
    return request.auth if isinstance(request.auth, TokenPrincipal) else None


def actor_for(request: Request) -> Actor:
    """The audit actor of an API request: the token's name, or the logged-in user."""
    principal = principal_of(request)
    if principal is None:
        return Actor.from_request(request)
    return Actor(
        kind=AuditEvent.ActorKind.TOKEN,
        name=principal.name,
        request_id=getattr(request, "request_id", "")
        or request.META.get("HTTP_X_REQUEST_ID", "")[:64],
        source_ip=request.META.get("REMOTE_ADDR", "") or "",
    )
