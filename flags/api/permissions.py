"""Which token kinds may call which endpoints: the one place API scope is decided.

An endpoint names the token kinds it accepts; a logged-in staff session counts as
an admin token. Management endpoints take ``AdminOnly``; kill endpoints will take
``token_kinds("admin", "kill")`` and check a bound kill key's environment with
``environment_scope_check``.
"""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from flags.api.auth import principal_of
from flags.models import ApiToken

KIND_LABELS = {
    ApiToken.Kind.ADMIN: "an admin token",
    ApiToken.Kind.SERVER: "a server SDK key",
    ApiToken.Kind.CLIENT: "a client SDK key",
    ApiToken.Kind.KILL: "a kill key",
}
# What each kind is for, so a refusal can say where the caller's token does work.
KIND_USES = {
    ApiToken.Kind.ADMIN: "the management API",
    ApiToken.Kind.SERVER: "the SDK snapshot, stream and OFREP endpoints",
    ApiToken.Kind.CLIENT: "OFREP evaluation of client-visible flags",
    ApiToken.Kind.KILL: "kill, restore and the list of active kills",
}


def _needed(kinds: tuple[str, ...]) -> str:
    labels = [KIND_LABELS[ApiToken.Kind(kind)] for kind in kinds]
    if ApiToken.Kind.ADMIN in kinds:
        labels.append("a logged-in staff session")
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " or " + labels[-1]


class TokenKindPermission(BasePermission):
    """Allows the token kinds in ``kinds``; a staff session counts as admin."""

    kinds: tuple[str, ...] = (ApiToken.Kind.ADMIN,)

    def has_permission(self, request: Request, view: Any) -> bool:
        principal = principal_of(request)
        if principal is not None:
            if principal.kind in self.kinds:
                return True
            raise exceptions.PermissionDenied(
                f"This endpoint needs {_needed(self.kinds)}; you sent "
                f"{KIND_LABELS[ApiToken.Kind(principal.kind)]} ({principal.name!r}), which is "
                f"only for {KIND_USES[ApiToken.Kind(principal.kind)]}."
            )
        user = request.user
        if user is None or not user.is_authenticated:
            raise exceptions.NotAuthenticated(
                f"This endpoint needs {_needed(self.kinds)}: send 'Authorization: Bearer "
                "<token>' (issue one with POST /api/v1/tokens/ or manage.py issue_token)."
            )
        if ApiToken.Kind.ADMIN in self.kinds and user.is_active and user.is_staff:
            return True
        raise exceptions.PermissionDenied(
            f"This endpoint needs {_needed(self.kinds)}; the account {user.get_username()!r} "
            "is not a staff account."
        )


def token_kinds(*kinds: str) -> type[TokenKindPermission]:
    """A permission class accepting exactly these token kinds (plus staff sessions if admin is one)."""
    for kind in kinds:
        ApiToken.Kind(kind)  # fail at import time on a typo
    return type(f"TokenKinds_{'_'.join(kinds)}", (TokenKindPermission,), {"kinds": tuple(kinds)})


AdminOnly = token_kinds(ApiToken.Kind.ADMIN)


def environment_scope_check(request: Request, environment_key: str) -> None:
    """Refuse a token bound to one environment acting on another (kill keys may be bound)."""
    principal = principal_of(request)
    if principal is None or principal.environment_key in (None, environment_key):
        return
    raise exceptions.PermissionDenied(
        f"The token {principal.name!r} is bound to the environment "
        f"{principal.environment_key!r}; it cannot act on {environment_key!r}."
    )
