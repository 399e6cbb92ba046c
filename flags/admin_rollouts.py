"""Rollout plans in the Django admin: a timeline per environment on the flag page, and its actions.

The flag page shows each environment's plan (the active one, else the latest) as
a timeline of done / next / later steps, with Pause, Resume, Skip to…, Abort and
Schedule / Replace buttons. Every action calls ``flags.rollouts`` with the staff
user as the audit actor; refusals come back as messages, and nothing is changed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, re_path, reverse

from audit.recorder import Actor
from flags import rollouts, services
from flags.errors import ServiceError, ValidationFailed
from flags.models import Environment, Flag, RolloutPlan
from flags.selectors import rollout_plan_document, rollout_plans_for_flag

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
DEFAULT_STEPS = [
    {"percentage": 1},
    {"percentage": 5, "after": "30m"},
    {"percentage": 25, "after": "1h"},
    {"percentage": 100, "after": "1d"},
]
STEPS_EXAMPLE = (
    '[{"percentage": 1},\n {"percentage": 5, "after": "30m"},\n'
    ' {"percentage": 25, "at": "2026-12-01T09:00:00", "timezone": "Europe/Berlin"},\n'
    ' {"percentage": 100, "after": "3d"}]'
)


def rollout_timelines(flag: Flag) -> list[dict[str, Any]]:
    """Per environment: its plan's document (or None) and which buttons apply."""
    plans = {plan.environment_id: plan for plan in rollout_plans_for_flag(flag)}
    rows = []
    for environment in Environment.objects.order_by("sort_order", "id"):
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


class RolloutPlanForm(forms.Form):
    environment = forms.ModelChoiceField(queryset=Environment.objects.all(), to_field_name="key")
    steps = forms.JSONField(
        widget=forms.Textarea(attrs={"rows": 8, "cols": 80, "spellcheck": "false"}),
        help_text="A JSON list, in order; each a percentage (0.01% steps) with a time (at: "
        'ISO-8601 with an offset, or local with "timezone") or a delay after the previous step '
        '(after: seconds, "30m", "2h", "1d"). E.g. ' + STEPS_EXAMPLE,
    )
    rule = forms.CharField(
        required=False, help_text="Id of the rule whose split to drive; empty: the default serve."
    )
    variant = forms.CharField(required=False, help_text='Rolled out (boolean flags: "on").')
    baseline_variant = forms.CharField(
        required=False, help_text='Everyone else (boolean flags: "off").'
    )
    timezone = forms.CharField(
        required=False, help_text="IANA zone for local times, e.g. Europe/Berlin."
    )
    allow_decrease = forms.BooleanField(required=False)
    reason = forms.CharField(required=False, max_length=services.MAX_REASON)


class RolloutActionForm(forms.Form):
    reason = forms.CharField(
        required=False, max_length=services.MAX_REASON, widget=forms.Textarea(attrs={"rows": 2})
    )
    step = forms.TypedChoiceField(coerce=int, required=False)

    def __init__(self, *args: Any, steps: list[dict[str, Any]], skip: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        step = self.fields["step"]
        if skip and isinstance(step, forms.ChoiceField):
            step.required = True
            step.choices = [
                (s["step"], f"step {s['step']}: {s['percentage']:g}%")
                for s in steps
                if s["status"] in ("next", "later")
            ]
        else:
            del self.fields["step"]


def _field_errors(form: forms.Form, error: ValidationFailed) -> None:
    for path, message in error.fields.items():
        field = path.split("[", 1)[0].split(".", 1)[0]
        if field in form.fields:
            form.add_error(field, f"{path}: {message}" if path != field else message)
        else:
            form.add_error(None, f"{path}: {message}")
    if not error.fields:
        form.add_error(None, error.message)


def _back(flag: Flag) -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse("admin:flags_flag_change", args=[flag.pk]) + "#rollouts")


def plan_edit_view(model_admin: ModelAdmin, request: HttpRequest, flag_id: str) -> HttpResponse:
    """Schedule a ramp-up, or replace the environment's active plan."""
    flag = get_object_or_404(Flag, pk=flag_id)
    if not model_admin.has_change_permission(request, flag):
        messages.error(request, "You do not have permission to change flags.")
        return _back(flag)
    environment_key = request.GET.get("environment")
    initial: dict[str, Any] = {"environment": environment_key, "steps": DEFAULT_STEPS}
    current = None
    if environment_key:
        current = RolloutPlan.objects.filter(
            flag=flag, environment__key=environment_key, status__in=RolloutPlan.ACTIVE
        ).first()
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
            _field_errors(form, error)
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
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": f"{'Replace the' if current else 'Schedule a'} ramp-up of {flag.key}",
        "flag": flag,
        "form": form,
        "current": current,
    }
    return TemplateResponse(request, "admin/flags/flag/rollout_plan_form.html", context)


def plan_action_view(
    model_admin: ModelAdmin, request: HttpRequest, flag_id: str, plan_id: str, action: str
) -> HttpResponse:
    """Pause, resume, skip or abort one plan, after a confirmation page."""
    flag = get_object_or_404(Flag, pk=flag_id)
    plan = get_object_or_404(
        RolloutPlan.objects.select_related("flag", "environment"), pk=plan_id, flag=flag
    )
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
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": f"{title}: rollout plan #{plan.pk} of {flag.key} in {plan.environment.key}",
        "flag": flag,
        "plan": document,
        "action_label": title,
        "explanation": explanation,
        "form": form,
        "danger": action == "abort",
    }
    return TemplateResponse(request, "admin/flags/flag/rollout_action.html", context)


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
