"""The evaluation context of a request, and ``request.flags``: one snapshot per request."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from asgiref.sync import sync_to_async
from django.core.exceptions import SynchronousOnlyOperation
from django.http import HttpRequest

from flagsvc_sdk.django.conf import context_hook, flagsvc_settings, get_client
from flagsvc_sdk.engine import Result
from flagsvc_sdk.evaluation import (
    UNSET,
    FlagsView,
)


def request_context(request: HttpRequest | None) -> dict[str, Any]:
    """The context flags are evaluated for: the user's id as ``targetingKey``, ``is_staff``,
    ``is_superuser``, ``username``, ``email`` and ``groups`` (names), then whatever the
    ``FLAGSVC["CONTEXT"]`` hook adds or changes.

        # settings.py: FLAGSVC = {..., "CONTEXT": "shop.flags.context"}
        def context(request, context):
            context["plan"] = request.user.account.plan  # rules can target "plan"
            return context
    """
    context: dict[str, Any] = {}
    if request is None:
        return context
    user = getattr(request, "user", None)
    if user is not None and getattr(user, "is_authenticated", False):
        context["targetingKey"] = str(user.pk)
        context["is_staff"] = bool(getattr(user, "is_staff", False))
        context["is_superuser"] = bool(getattr(user, "is_superuser", False))
        username = user.get_username() if hasattr(user, "get_username") else None
        if username:
            context["username"] = username
        email = getattr(user, "email", None)
        if email:
            context["email"] = email
        groups = getattr(user, "groups", None)
        if groups is not None and flagsvc_settings()["USER_GROUPS"]:
            context["groups"] = sorted(groups.values_list("name", flat=True))
    else:
        context["anonymous"] = True
    hook = context_hook()
    if hook is not None:
        returned = hook(request, context)
        if isinstance(returned, Mapping):
            context = dict(returned)
    return context


ASYNC_HINT = (
    "flagsvc: this request's evaluation context reads request.user (the session and the "
    "database), which an async view cannot do synchronously. In async code use the a-methods: "
    "`await request.flags.ais_enabled(key)`, `aget_value`, `avariant`, `aevaluate`, or `await "
    "aflag_is_active(request, key)`; once one of them (or `await request.flags.aprepare()`) has "
    "run, the synchronous ones and the template tags work for the rest of the request."
)


class RequestFlags:
    """``request.flags``: the flags of one request, evaluated lazily and remembered.

    The first evaluation pins the client's current snapshot, so one request never sees two
    versions, and the context is built once.

        def checkout(request):
            if request.flags.is_enabled("new-checkout"):
                ...
            limit = request.flags.get_value("upload.max-size-mb", 10)

    Async views await the a-methods, which build the context (and, the first time in a process,
    the client) in Django's sync thread, then evaluate locally like the others:

        async def checkout(request):
            if await request.flags.ais_enabled("new-checkout"):
                ...
    """

    def __init__(self, request: HttpRequest | None) -> None:
        self._request = request
        self._view: FlagsView | None = None
        self._context: dict[str, Any] | None = None
        self._results: dict[tuple[str, Any], Result] = {}

    @property
    def context(self) -> dict[str, Any]:
        if self._context is None:
            try:
                self._context = request_context(self._request)
            except SynchronousOnlyOperation as error:
                raise SynchronousOnlyOperation(ASYNC_HINT) from error
        return self._context

    @property
    def view(self) -> FlagsView:
        if self._view is None:
            self._view = get_client().view()
        return self._view

    def _prepare(self) -> None:
        self.context  # noqa: B018  (built and remembered)
        self.view  # noqa: B018

    async def aprepare(self) -> None:
        """Build the context and pin the snapshot from async code (in Django's sync thread, as
        its ORM asks); afterwards every method, sync or async, evaluates without I/O."""
        if self._context is None or self._view is None:
            await sync_to_async(self._prepare)()

    async def aevaluate(self, key: str, default: Any = UNSET) -> Result:
        await self.aprepare()
        return self.evaluate(key, default)

    async def ais_enabled(self, key: str, default: bool | None = None) -> bool:
        await self.aprepare()
        return self.is_enabled(key, default)

    async def aget_value(self, key: str, default: Any = UNSET) -> Any:
        await self.aprepare()
        return self.get_value(key, default)

    async def avariant(self, key: str) -> str | None:
        await self.aprepare()
        return self.variant(key)

    def evaluate(self, key: str, default: Any = UNSET) -> Result:
        memo_key = (key, default if default is UNSET else (type(default), default))
        try:
            return self._results[memo_key]
        except KeyError:
            pass
        except TypeError:  # an unhashable default (a dict or list) is not remembered
            return self.view.evaluate(key, self.context, default)
        result = self.view.evaluate(key, self.context, default)
        self._results[memo_key] = result
        return result

    def is_enabled(self, key: str, default: bool | None = None) -> bool:
        value = self.evaluate(key).value
        if value is True or value is False:
            return value
        if default is None:
            return self.view._defaults.get(key) is True
        return default

    def get_value(self, key: str, default: Any = UNSET) -> Any:
        return self.evaluate(key, default).value

    def variant(self, key: str) -> str | None:
        return self.evaluate(key).variant

    def __getitem__(self, key: str) -> Any:
        return self.get_value(key)

    def __contains__(self, key: str) -> bool:
        return self.is_enabled(key)


def flags_of(request: HttpRequest | None) -> RequestFlags:
    """``request.flags`` when the middleware set it, else a new one for this call."""
    flags = getattr(request, "flags", None)
    if isinstance(flags, RequestFlags):
        return flags
    return RequestFlags(request)


def flag_is_active(request: HttpRequest | None, key: str) -> bool:
    """Whether boolean flag ``key`` is on for this request's user (``"!key"``: whether off).

    if flag_is_active(request, "new-checkout"):
        return new_checkout(request)
    """
    if key.startswith("!"):
        return not flags_of(request).is_enabled(key[1:])
    return flags_of(request).is_enabled(key)


def flag_value(request: HttpRequest | None, key: str, default: Any = None) -> Any:
    """The value of flag ``key`` for this request (``default`` if unknown or of another type)."""
    return flags_of(request).get_value(key, UNSET if default is None else default)


async def aflag_is_active(request: HttpRequest | None, key: str) -> bool:
    """``flag_is_active`` for async views.

    if await aflag_is_active(request, "new-checkout"):
        return await new_checkout(request)
    """
    flags = flags_of(request)
    await flags.aprepare()
    if key.startswith("!"):
        return not flags.is_enabled(key[1:])
    return flags.is_enabled(key)


async def aflag_value(request: HttpRequest | None, key: str, default: Any = None) -> Any:
    """``flag_value`` for async views."""
    flags = flags_of(request)
    await flags.aprepare()
    return flags.get_value(key, UNSET if default is None else default)
