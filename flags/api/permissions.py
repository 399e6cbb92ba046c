"""Who may call which endpoint: the one place API scope is decided.

A bearer token is allowed by its kind: admin tokens everywhere, kill keys on the
kill endpoints (a bound one only in its environment, ``environment_scope_check``),
SDK keys nowhere here. A logged-in staff session gets exactly its Django model
permissions (DRF's ``DjangoModelPermissions``, with ``view_*`` for reads) on the
model the endpoint manages: ``permission_classes = [model_permissions(Flag)]``,
and a method that does something else names its own codename
(``model_permissions(Flag, POST="kill")`` needs ``flags.kill_flag``). A superuser
has every permission. An endpoint that declares nothing gets ``AdminOnly``:
admin tokens and superusers only.
"""

from __future__ import annotations

from typing import Any, ClassVar, cast

from django.db import models
from rest_framework import exceptions
from rest_framework.permissions import DjangoModelPermissions
from rest_framework.request import Request

from flags.api.auth import principal_of
from flags.models import ApiToken, Flag, KillTrigger
from flagsvc.api.permissions import codename_pattern, model_permission_class

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
KILL_KINDS = (ApiToken.Kind.ADMIN, ApiToken.Kind.KILL)
ISSUE_ADMIN_TOKEN = "flags.issue_admin_token"


def _either(labels: list[str]) -> str:
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " or " + labels[-1]


class ApiPermission(DjangoModelPermissions):
    """Tokens by kind; staff sessions by their Django permissions on ``model``.

    Without a ``model`` only superusers' sessions pass (fail closed).
    """

    kinds: ClassVar[tuple[str, ...]] = (ApiToken.Kind.ADMIN,)
    model: ClassVar[type[models.Model] | None] = None
    perms_map: dict[str, list[str]] = {
        "GET": codename_pattern("view"),
        "HEAD": codename_pattern("view"),
        "OPTIONS": codename_pattern("view"),
        "POST": codename_pattern("add"),
        "PUT": codename_pattern("change"),
        "PATCH": codename_pattern("change"),
        "DELETE": codename_pattern("delete"),
    }

    def has_permission(self, request: Request, view: Any) -> bool:
        principal = principal_of(request)
        if principal is not None:
            if principal.kind in self.kinds:
                return True
            raise exceptions.PermissionDenied(
                f"This endpoint needs {self._needed(request)}; you sent "
                f"{KIND_LABELS[ApiToken.Kind(principal.kind)]} ({principal.name!r}), which is "
                f"only for {KIND_USES[ApiToken.Kind(principal.kind)]}."
            )
        user = request.user
        if user is None or not user.is_authenticated:
            raise exceptions.NotAuthenticated(
                f"This endpoint needs {self._needed(request)}: send 'Authorization: Bearer "
                "<token>' (issue one with POST /api/v1/tokens/ or manage.py issue_token)."
            )
        if not (user.is_active and user.is_staff):
            raise exceptions.PermissionDenied(
                f"This endpoint needs {self._needed(request)}; the account "
                f"{user.get_username()!r} is not a staff account."
            )
        self._require(request, self.permissions_needed(request))
        # Only once the caller may do the kind of thing at all does its body matter.
        self._require(request, self.permissions_for_body(request))
        return True

    def permissions_needed(self, request: Request) -> list[str]:
        """The permissions a session needs for this method, whatever the body says."""
        if self.model is None:
            return []
        return self.get_required_permissions(request.method or "GET", self.model)

    def permissions_for_body(self, request: Request) -> list[str]:
        """Further permissions that depend on what the body asks for (none by default)."""
        return []

    def _require(self, request: Request, permissions: list[str]) -> None:
        user = request.user
        if self.model is None and not user.is_superuser:
            raise exceptions.PermissionDenied(
                f"This endpoint needs {self._needed(request)}; the account "
                f"{user.get_username()!r} is not a superuser."
            )
        missing = [permission for permission in permissions if not user.has_perm(permission)]
        if missing:
            raise exceptions.PermissionDenied(
                f"The account {user.get_username()!r} lacks the permission "
                f"{' and '.join(missing)} needed for {request.method} {request.path}. Ask an administrator "
                "to grant it (admin → Users → permissions), or use an admin token."
            )

    def _needed(self, request: Request) -> str:
        labels = [KIND_LABELS[ApiToken.Kind(kind)] for kind in self.kinds]
        if self.model is None:
            labels.append("a superuser's session")
        else:
            permissions = self.permissions_needed(request)
            labels.append(f"a staff session with {' and '.join(permissions)}")
        return _either(labels)


def model_permissions(
    model: type[models.Model],
    *,
    kinds: tuple[str, ...] = (ApiToken.Kind.ADMIN,),
    base: type[ApiPermission] = ApiPermission,
    **actions: str,
) -> type[ApiPermission]:
    """A permission class for an endpoint managing ``model``, accepting the token ``kinds``.

    ``actions`` maps a method to another codename action, e.g. ``POST="kill"`` for
    ``flags.kill_flag``; the other methods keep view/add/change/delete.
    """
    for kind in kinds:
        ApiToken.Kind(kind)  # fail at import time on a typo
    permission = model_permission_class(
        model, base=base, attributes={"kinds": tuple(kinds)}, **actions
    )
    return cast(type[ApiPermission], permission)


def _body_field(request: Request, field: str, default: str | None = None) -> Any:
    data = request.data
    return data.get(field, default) if isinstance(data, dict) else default


class TokenPermission(ApiPermission):
    """Tokens: issuing an admin token (full power) also needs ``flags.issue_admin_token``."""

    model = ApiToken

    def permissions_for_body(self, request: Request) -> list[str]:
        if request.method == "POST" and _body_field(request, "kind") == ApiToken.Kind.ADMIN:
            return [ISSUE_ADMIN_TOKEN]
        return []


class TriggerPermission(ApiPermission):
    """Trigger URLs: creating one delegates a kill (or restore), so it needs that permission too."""

    model = KillTrigger

    def permissions_for_body(self, request: Request) -> list[str]:
        if request.method != "POST":
            return []
        action = _body_field(request, "action", KillTrigger.Action.KILL)
        if action in KillTrigger.Action.values:
            return [f"flags.{action}_flag"]
        return []  # the body's validation answers 400


AdminOnly = ApiPermission
FlagKillPermission = model_permissions(Flag, kinds=KILL_KINDS, GET="kill", POST="kill")
FlagRestorePermission = model_permissions(Flag, kinds=KILL_KINDS, POST="restore")


def environment_scope_check(request: Request, environment_key: str) -> None:
    """Refuse a token bound to one environment acting on another (kill keys may be bound)."""
    principal = principal_of(request)
    if principal is None or principal.environment_key in (None, environment_key):
        return
    raise exceptions.PermissionDenied(
        f"The token {principal.name!r} is bound to the environment "
        f"{principal.environment_key!r}; it cannot act on {environment_key!r}."
    )
