"""``@flag_required`` for function views and ``FlagRequiredMixin`` for class-based views."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from asgiref.sync import iscoroutinefunction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect

from flagsvc_sdk.django.context import aflag_is_active, flag_is_active

View = TypeVar("View", bound=Callable[..., Any])


def _refused(key: str, redirect_to: str | None) -> HttpResponse:
    if redirect_to:
        return redirect(redirect_to)
    raise Http404(f"flag {key!r} is not active")


def flag_required(key: str, redirect_to: str | None = None) -> Callable[[View], View]:
    """Serve the view only when flag ``key`` is on (``"!key"``: only when it is off); else 404,
    or a redirect to ``redirect_to`` (a URL, a URL name or a model with get_absolute_url).

        @flag_required("new-checkout", redirect_to="legacy-checkout")
        def checkout(request): ...

    An async view stays async (the check awaits ``aflag_is_active``).
    """

    def decorate(view: View) -> View:
        if iscoroutinefunction(view):

            @functools.wraps(view)
            async def awrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
                if not await aflag_is_active(request, key):
                    return _refused(key, redirect_to)
                return await view(request, *args, **kwargs)

            return awrapped  # type: ignore[return-value]

        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            if not flag_is_active(request, key):
                return _refused(key, redirect_to)
            return view(request, *args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorate


class FlagRequiredMixin:
    """A class-based view served only when ``flag_required`` is on (``"!key"``: off).

    class CheckoutView(FlagRequiredMixin, TemplateView):
        flag_required = "new-checkout"
        flag_redirect_to = "legacy-checkout"  # omit for a 404

    A view whose handlers are async is checked with ``aflag_is_active``.
    """

    flag_required: str = ""
    flag_redirect_to: str | None = None

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        if not self.flag_required:
            raise TypeError(f"{type(self).__name__} sets no flag_required")
        if getattr(self, "view_is_async", False):
            return self._adispatch(request, *args, **kwargs)
        if not flag_is_active(request, self.flag_required):
            return _refused(self.flag_required, self.flag_redirect_to)
        return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]

    async def _adispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        if not await aflag_is_active(request, self.flag_required):
            return _refused(self.flag_required, self.flag_redirect_to)
        return await super().dispatch(request, *args, **kwargs)  # type: ignore[misc]
