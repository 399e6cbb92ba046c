"""Views of the test project: each integration point used the way the README shows it."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views import View

from flagsvc_sdk.django import FlagRequiredMixin, flag_is_active, flag_required


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
