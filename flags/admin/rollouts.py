"""Rollout plans in the Django admin: a timeline per environment on the flag page, and its actions.

The flag page shows each environment's plan (the active one, else the latest) as
a timeline of done / next / later steps, with Pause, Resume, Skip to…, Abort and
Schedule / Replace buttons. Every action calls ``flags.rollouts`` with the staff
user as the audit actor; refusals come back as messages, and nothing is changed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, re_path, reverse

from audit.recorder import Actor
from flags import rollouts, selectors
from flags.admin.base import admin_page
from flags.admin.forms import DEFAULT_STEPS, RolloutActionForm, RolloutPlanForm, add_refusal_errors
from flags.errors import ServiceError, ValidationFailed
from flags.models import Flag, RolloutPlan
from flags.rollouts import rollout_plan_document
from flags.selectors import rollout_plans_for_flag

if TYPE_CHECKING:
    from django.contrib.admin import ModelAdmin

ACTIONS = {
    "pause": ("Pause", "No step is applied until someone resumes the plan."),
    "resume": (
        "Resume",
        "Carry on from the next step; its delay counts from now. Refused while the flag is killed.",
    ),
    "skip": (
        "Skip to a step",
        "Apply the chosen step now; pending steps before it are marked skipped.",
    ),
    "abort": ("Abort", "Stop the plan for good. The flag keeps serving what the last step set."),
}


def _flag_or_404(flag_id: str) -> Flag:
    flag = selectors.flag_by_id(flag_id)
    if flag is None:
        raise Http404(f"No flag with id {flag_id}.")
    return flag


def rollout_timelines(flag: Flag) -> list[dict[str, Any]]:
    """Per environment: its plan's document (or None) and which buttons apply."""
    plans = {plan.environment_id: plan for plan in rollout_plans_for_flag(flag)}
    rows = []
    for environment in selectors.environments_in_order():
        plan = plans.get(environment.pk)
        document = rollout_plan_document(plan) if plan is not None else None
        status = document["status"] if document else None
        rows.append(
            {
                "environment": environment,
                "plan": document,
                "actions": [
                    action
                    for action, allowed in (
                        ("pause", status in RolloutPlan.ADVANCING),
                        ("resume", status == RolloutPlan.Status.PAUSED),
                        ("skip", status in RolloutPlan.ACTIVE),
                        ("abort", status in RolloutPlan.ACTIVE),
                    )
                    if allowed
                ],
            }
        )
    return rows


def _back(flag: Flag) -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse("admin:flags_flag_change", args=[flag.pk]) + "#rollouts")


def plan_edit_view(model_admin: ModelAdmin, request: HttpRequest, flag_id: str) -> HttpResponse:
    """Schedule a ramp-up, or replace the environment's active plan."""
    flag = _flag_or_404(flag_id)
    if not model_admin.has_change_permission(request, flag):
        messages.error(request, "You do not have permission to change flags.")
        return _back(flag)
    environment_key = request.GET.get("environment")
    initial: dict[str, Any] = {"environment": environment_key, "steps": DEFAULT_STEPS}
    current = None
    if environment_key:
        current = selectors.rollout_plan_active(flag, environment_key)
    form = RolloutPlanForm(request.POST if request.method == "POST" else None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            plan = rollouts.rollout_plan_replace(
                actor=Actor.from_request(request),
                flag=flag,
                environment=data["environment"],
                steps=data["steps"],
                rule=data["rule"] or None,
                variant=data["variant"] or None,
                baseline_variant=data["baseline_variant"] or None,
                allow_decrease=data["allow_decrease"],
                timezone_name=data["timezone"],
                reason=data["reason"],
            )
        except ValidationFailed as error:
            add_refusal_errors(form, error)
        except ServiceError as error:
            messages.error(request, f"Nothing was changed: {error.message}")
            return _back(flag)
        else:
            verb = "replaced" if plan.replaces_id else "scheduled"
            messages.success(
                request,
                f"Rollout plan #{plan.pk} {verb} for {flag.key} in {plan.environment.key}: "
                f"{plan.steps.count()} steps, status {plan.status}.",
            )
            return _back(flag)
    return admin_page(
        model_admin,
        request,
        "admin/flags/flag/rollout_plan_form.html",
        f"{'Replace the' if current else 'Schedule a'} ramp-up of {flag.key}",
        flag=flag,
        form=form,
        current=current,
    )


def plan_action_view(
    model_admin: ModelAdmin, request: HttpRequest, flag_id: str, plan_id: str, action: str
) -> HttpResponse:
    """Pause, resume, skip or abort one plan, after a confirmation page."""
    flag = _flag_or_404(flag_id)
    plan = selectors.rollout_plan_of_flag(flag, plan_id)
    if plan is None:
        raise Http404(f"Flag {flag.key} has no rollout plan #{plan_id}.")
    if not model_admin.has_change_permission(request, flag):
        messages.error(request, "You do not have permission to change flags.")
        return _back(flag)
    document = rollout_plan_document(plan)
    form = RolloutActionForm(
        request.POST if request.method == "POST" else None,
        steps=document["steps"],
        skip=action == "skip",
    )
    if request.method == "POST" and form.is_valid():
        actor = Actor.from_request(request)
        reason = form.cleaned_data["reason"]
        try:
            if action == "skip":
                plan = rollouts.rollout_plan_skip_to_step(
                    actor=actor, plan=plan, step=form.cleaned_data["step"], reason=reason
                )
            else:
                service = {
                    "pause": rollouts.rollout_plan_pause,
                    "resume": rollouts.rollout_plan_resume,
                    "abort": rollouts.rollout_plan_abort,
                }[action]
                plan = service(actor=actor, plan=plan, reason=reason)
        except ServiceError as error:
            messages.error(request, f"Nothing was changed: {error.message}")
        else:
            messages.success(
                request,
                f"Rollout plan #{plan.pk} in {plan.environment.key} is now {plan.status}.",
            )
        return _back(flag)
    title, explanation = ACTIONS[action]
    return admin_page(
        model_admin,
        request,
        "admin/flags/flag/rollout_action.html",
        f"{title}: rollout plan #{plan.pk} of {flag.key} in {plan.environment.key}",
        flag=flag,
        plan=document,
        action_label=title,
        explanation=explanation,
        form=form,
        danger=action == "abort",
    )


def rollout_admin_urls(model_admin: ModelAdmin) -> list[URLPattern]:
    """The FlagAdmin routes for rollout plans (added to its get_urls)."""
    site = model_admin.admin_site

    def edit(request: HttpRequest, flag_id: str) -> HttpResponse:
        return plan_edit_view(model_admin, request, flag_id)

    def act(request: HttpRequest, flag_id: str, plan_id: str, action: str) -> HttpResponse:
        return plan_action_view(model_admin, request, flag_id, plan_id, action)

    return [
        re_path(
            r"^(?P<flag_id>\d+)/rollout-plan/$",
            site.admin_view(edit),
            name="flags_flag_rollout_plan",
        ),
        re_path(
            r"^(?P<flag_id>\d+)/rollout-plan/(?P<plan_id>\d+)/(?P<action>pause|resume|skip|abort)/$",
            site.admin_view(act),
            name="flags_flag_rollout_action",
        ),
    ]
