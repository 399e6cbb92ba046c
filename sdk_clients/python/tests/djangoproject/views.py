"""Views of the test project: each integration point used the way the README shows it."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views import View

from flagsvc_sdk.django import (
    FlagRequiredMixin,
    aflag_is_active,
    aflag_value,
    flag_is_active,
    flag_required,
)


def add_plan(request: HttpRequest, context: dict[str, Any]) -> dict[str, Any]:
    """The FLAGSVC["CONTEXT"] hook: rules can target the plan a header names."""
    plan = request.headers.get("X-Plan")
    if plan:
        context["plan"] = plan
    return context


def checkout(request: HttpRequest) -> HttpResponse:
    if not flag_is_active(request, "new-checkout"):
        return legacy_checkout(request)
    return HttpResponse("new checkout")


def legacy_checkout(request: HttpRequest) -> HttpResponse:
    return HttpResponse("legacy checkout")


@flag_required("new-checkout", redirect_to="legacy-checkout")
def new_checkout_only(request: HttpRequest) -> HttpResponse:
    return HttpResponse("new checkout")


@flag_required("new-checkout")
def new_checkout_or_404(request: HttpRequest) -> HttpResponse:
    return HttpResponse("new checkout")


@flag_required("!maintenance")
def unless_maintenance(request: HttpRequest) -> HttpResponse:
    return HttpResponse("open")


class StaffToolsView(FlagRequiredMixin, View):
    flag_required = "staff-tools"

    def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("staff tools")


def page(request: HttpRequest) -> HttpResponse:
    return render(request, "checkout.html")


def request_flags(request: HttpRequest) -> JsonResponse:
    flags = request.flags  # type: ignore[attr-defined]
    return JsonResponse(
        {
            "new_checkout": flags.is_enabled("new-checkout"),
            "context": flags.context,
            "max_mb": flags.get_value("upload.max-size-mb", 1),
            "pro": flags.is_enabled("pro-plan"),
            "default": flags.is_enabled("not-in-snapshot"),
        }
    )


# Async views (served through ASGI): the same integration points, awaited.


async def async_checkout(request: HttpRequest) -> HttpResponse:
    if not await aflag_is_active(request, "new-checkout"):
        return legacy_checkout(request)
    limit = await aflag_value(request, "upload.max-size-mb", 1)
    return HttpResponse(f"new checkout, up to {limit} MB")


@flag_required("new-checkout", redirect_to="legacy-checkout")
async def async_new_checkout_only(request: HttpRequest) -> HttpResponse:
    return HttpResponse("new checkout")


class AsyncStaffToolsView(FlagRequiredMixin, View):
    flag_required = "staff-tools"

    async def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("staff tools")


async def async_request_flags(request: HttpRequest) -> JsonResponse:
    flags = request.flags  # type: ignore[attr-defined]
    return JsonResponse(
        {
            "new_checkout": await flags.ais_enabled("new-checkout"),
            "variant": await flags.avariant("new-checkout"),
            "reason": (await flags.aevaluate("new-checkout")).reason,
            "max_mb": await flags.aget_value("upload.max-size-mb", 1),
            # Once an a-method has run, the sync ones (and template tags) need no I/O.
            "sync_after": flags.is_enabled("new-checkout"),
        }
    )


async def async_page(request: HttpRequest) -> HttpResponse:
    await request.flags.aprepare()  # type: ignore[attr-defined]
    return render(request, "checkout.html")


async def async_sync_call(request: HttpRequest) -> HttpResponse:
    """The mistake: a synchronous evaluation first thing in an async view."""
    return HttpResponse(str(request.flags.is_enabled("new-checkout")))  # type: ignore[attr-defined]
