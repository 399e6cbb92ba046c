"""The flags overview: active kills, running rollouts with their next step, recent changes,
and flags nobody changed for 90 days (candidates for removal)."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Max, Q
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, re_path
from django.utils import timezone

from audit.models import AuditEvent
from flags import selectors
from flags.admin.base import admin_page
from flags.kill_answers import kills_with_propagation
from flags.models import Flag, RolloutPlan
from flags.rollouts import rollout_plan_document

if TYPE_CHECKING:
    from django.contrib.admin import ModelAdmin

STALE_DAYS = 90
RECENT_CHANGES = 15


def next_step(document: dict[str, Any]) -> dict[str, Any] | None:
    """The plan document's next step (status "next"), if any."""
    return next((step for step in document["steps"] if step["status"] == "next"), None)


def running_rollouts() -> list[dict[str, Any]]:
    """Active plans (scheduled, running, paused), each as its document with its next step."""
    plans = (
        RolloutPlan.objects.filter(status__in=RolloutPlan.ACTIVE, flag__archived_at__isnull=True)
        .select_related("flag", "environment", "replaced_by")
        .prefetch_related("steps")
        .order_by("flag__key", "environment__sort_order")
    )
    rows = []
    for plan in plans:
        document = rollout_plan_document(plan)
        rows.append({"plan": plan, "document": document, "next": next_step(document)})
    return rows


def stale_flags(days: int = STALE_DAYS) -> list[Flag]:
    """Live flags whose definition and states nobody changed for ``days`` days, oldest first."""
    cutoff = timezone.now() - timedelta(days=days)
    flags = (
        Flag.objects.filter(archived_at__isnull=True)
        .annotate(last_state_change=Max("states__updated_at"))
        .filter(updated_at__lt=cutoff)
        .filter(Q(last_state_change__lt=cutoff) | Q(last_state_change__isnull=True))
        .order_by("updated_at")
    )
    return list(flags[:50])


def overview() -> dict[str, Any]:
    """What the overview shows (and the admin's home page sums up)."""
    return {
        "kills": kills_with_propagation(selectors.active_kills()),
        "rollouts": running_rollouts(),
        "changes": AuditEvent.objects.order_by("-sequence")[:RECENT_CHANGES],
        "stale": stale_flags(),
        "stale_days": STALE_DAYS,
    }


def overview_urls(model_admin: ModelAdmin) -> list[URLPattern]:
    def view(request: HttpRequest) -> HttpResponse:
        if not model_admin.has_view_or_change_permission(request):
            raise PermissionDenied
        return admin_page(
            model_admin, request, "admin/flags/flag/overview.html", "Flags overview", **overview()
        )

    return [
        re_path(r"^overview/$", model_admin.admin_site.admin_view(view), name="flags_flag_overview")
    ]


# The admin's home page (/admin/) starts with the flags at a glance, linking the overview.
admin.site.index_template = "admin/flags/index.html"
