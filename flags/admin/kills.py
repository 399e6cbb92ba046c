"""Kill, restore, enable and disable flags in an environment from the admin; the active kills page."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, re_path, reverse
from django.utils.http import url_has_allowed_host_and_scheme

from audit.recorder import Actor
from flags import propagation, selectors, services
from flags.admin.base import ACTION_PERMISSIONS, admin_page, lacks_permission
from flags.admin.forms import EnvironmentActionForm
from flags.errors import ServiceError
from flags.kill_answers import kills_with_propagation
from flags.models import Environment, Flag

ACTION_LABELS = {
    "kill": (
        "Kill",
        "serve the off variant to everyone in the environment, now. Rules stay as they are.",
    ),
    "restore": ("Restore", "lift the kill: the flag serves what its rules served before the kill."),
    "enable": (
        "Enable",
        "turn the flag on in the environment (its rules and default serve apply).",
    ),
    "disable": ("Disable", "turn the flag off in the environment (off variant for everyone)."),
}


def _run_action(
    request: HttpRequest, action: str, flags: Sequence[Flag], environment: Environment, reason: str
) -> tuple[int, int]:
    """Apply ``action`` to each flag in the environment: (how many changed, how many were so)."""
    actor = Actor.from_request(request)
    changed = unchanged = 0
    for flag in flags:
        if action == "kill":
            outcome = services.flag_kill(
                actor=actor, flag=flag, environment=environment, reason=reason
            )
            did = outcome.changed
        elif action == "restore":
            outcome = services.flag_restore(
                actor=actor, flag=flag, environment=environment, reason=reason
            )
            did = outcome.changed
        else:
            before = selectors.flag_state_version(flag, environment)
            state = services.flag_state_update(
                actor=actor,
                flag=flag,
                environment=environment,
                reason=reason,
                enabled=(action == "enable"),
            )
            did = state.version != before
        changed += did
        unchanged += not did
    return changed, unchanged


def _safe_next(request: HttpRequest) -> str | None:
    """Where the form asks to go back to (the list, for its two-click toggle), if on this site."""
    target = request.POST.get("next", "")
    allowed = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return target if target and allowed else None


class EnvironmentActions(admin.ModelAdmin):
    """The flag admin's environment actions: from the list (bulk) and from the flag page."""

    def environment_action_urls(self) -> list[URLPattern]:
        return [
            re_path(
                r"^(?P<flag_id>\d+)/(?P<action>kill|restore|enable|disable)/$",
                self.admin_site.admin_view(self.environment_action_view),
                name="flags_flag_environment_action",
            ),
            re_path(
                r"^active-kills/$",
                self.admin_site.admin_view(self.active_kills_view),
                name="flags_flag_active_kills",
            ),
        ]

    def active_kills_view(self, request: HttpRequest) -> HttpResponse:
        """Every flag killed anywhere: who, when, why, for how long, with a restore button."""
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        # Is each kill live at every edge process? (its environment's current version)
        rows = kills_with_propagation(selectors.active_kills())
        return admin_page(
            self, request, "admin/flags/flag/active_kills.html", "Active kills", kills=rows
        )

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        active = selectors.active_kills().count()
        return super().changelist_view(
            request, {**(extra_context or {}), "active_kill_count": active}
        )

    def environment_action_view(
        self, request: HttpRequest, flag_id: str, action: str
    ) -> HttpResponse:
        flag = selectors.flag_by_id(flag_id)
        if flag is None:
            raise Http404(f"No flag with id {flag_id}.")
        return self._environment_action(request, action, [flag], single=True)

    def _environment_action(
        self, request: HttpRequest, action: str, flags: Sequence[Flag], *, single: bool = False
    ) -> HttpResponse:
        back = (
            reverse("admin:flags_flag_change", args=[flags[0].pk])
            if single
            else reverse("admin:flags_flag_changelist")
        )
        refusal = lacks_permission(request, ACTION_PERMISSIONS[action])
        if refusal:
            messages.error(request, f"Nothing was changed: {refusal}")
            return HttpResponseRedirect(back)
        form = EnvironmentActionForm(
            request.POST if "confirm" in request.POST else None,
            initial={"environment": request.GET.get("environment")},
        )
        if form.is_valid():
            self._apply(request, action, flags, form.cleaned_data)
            return HttpResponseRedirect(_safe_next(request) or back)
        title, explanation = ACTION_LABELS[action]
        return admin_page(
            self,
            request,
            "admin/flags/flag/environment_action.html",
            f"{title} {flags[0].key if len(flags) == 1 else f'{len(flags)} flags'}",
            action=action,
            action_label=title,
            explanation=explanation,
            flags=flags,
            form=form,
            single=single,
            danger=action in ("kill", "disable"),
        )

    def _apply(
        self, request: HttpRequest, action: str, flags: Sequence[Flag], data: dict[str, Any]
    ) -> None:
        """Run a confirmed action and say what it did (and, for kills, how far it got)."""
        environment = data["environment"]
        started_at = time.time()
        try:
            changed, unchanged = _run_action(request, action, flags, environment, data["reason"])
        except ServiceError as error:
            messages.error(request, f"Nothing was changed: {error.message}")
            return
        verb = ACTION_LABELS[action][0].lower()
        text = f"{verb}: {changed} flag(s) changed in {environment.key}"
        if unchanged:
            text += f", {unchanged} already so (nothing written)"
        version = selectors.environment_by_id(environment.pk).version
        # The environment's version counts every change in it; SDKs and edges report the
        # version they serve, which is how "live everywhere" is confirmed.
        text += f". {environment.key} configuration is now version {version} (SDKs serving it see the change)"
        report = messages.success
        if action in ("kill", "restore"):
            confirmation = propagation.change_confirm(
                environment.key, environment.lineage, version, started_at=started_at
            )
            text += f": {confirmation.text()}"
            report = messages.success if confirmation.complete else messages.warning
        report(request, text + ".")

    def _bulk(self, request: HttpRequest, queryset: QuerySet[Flag], action: str) -> HttpResponse:
        return self._environment_action(
            request, action, list(queryset.filter(archived_at__isnull=True))
        )

    # Which actions a user is offered (``permissions=[...]`` below); the views check again.
    def has_kill_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(ACTION_PERMISSIONS["kill"])

    def has_restore_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(ACTION_PERMISSIONS["restore"])

    def has_change_state_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(ACTION_PERMISSIONS["enable"])

    @admin.action(description="Enable in an environment…", permissions=["change_state"])
    def enable_action(self, request: HttpRequest, queryset: QuerySet[Flag]) -> HttpResponse:
        return self._bulk(request, queryset, "enable")

    @admin.action(description="Disable in an environment…", permissions=["change_state"])
    def disable_action(self, request: HttpRequest, queryset: QuerySet[Flag]) -> HttpResponse:
        return self._bulk(request, queryset, "disable")

    @admin.action(description="KILL in an environment…", permissions=["kill"])
    def kill_action(self, request: HttpRequest, queryset: QuerySet[Flag]) -> HttpResponse:
        return self._bulk(request, queryset, "kill")

    @admin.action(description="Restore (lift kill) in an environment…", permissions=["restore"])
    def restore_action(self, request: HttpRequest, queryset: QuerySet[Flag]) -> HttpResponse:
        return self._bulk(request, queryset, "restore")
