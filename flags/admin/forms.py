"""The admin's forms: JSON fields shown indented, and errors from the validator on their field."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from django import forms

from flags import selectors, services
from flags.admin.base import ACTION_PERMISSIONS, ISSUE_ADMIN_TOKEN
from flags.errors import ValidationFailed
from flags.models import ApiToken, Environment, Flag, FlagState, KillTrigger, Segment
from flagsvc_sdk.engine import OPERATORS

JSON_WIDGET = forms.Textarea(
    attrs={"rows": 6, "cols": 80, "class": "vLargeTextField", "spellcheck": "false"}
)


class PrettyJSONField(forms.JSONField):
    """A JSON textarea that shows its value indented."""

    widget = JSON_WIDGET

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return json.dumps(value, indent=2, ensure_ascii=False)


def audit_reason_field() -> forms.CharField:
    """The optional "why" of a change, for its audit event."""
    return forms.CharField(
        required=False, max_length=services.MAX_REASON, help_text="Why (goes on the audit trail)."
    )


def _field_of(path: str, fields: Sequence[str]) -> str | None:
    """Map a validator path like ``rules[0].serve.variant`` to the form field ``rules``."""
    head = path.split("[", 1)[0].split(".", 1)[0]
    return head if head in fields else None


def add_field_errors(form: forms.BaseForm, errors: dict[str, str]) -> None:
    """Each ``{path: message}`` on the field the path starts with (else on the whole form)."""
    for path, message in errors.items():
        field = _field_of(path, list(form.fields))
        form.add_error(field, f"{path}: {message}" if field != path else message)


def add_refusal_errors(form: forms.BaseForm, error: ValidationFailed) -> None:
    """A service's validation refusal on the form: per field, else its message on the form."""
    add_field_errors(form, error.fields)
    if not error.fields:
        form.add_error(None, error.message)


class ShowsServiceRefusal(forms.BaseForm):
    """A form that shows a service's validation refusal on its fields.

    The services are the one validator: the admin saves, and when a service refuses
    (nothing written), the page is shown again with this attribute set on the form
    (by ``ServiceErrorsAsMessages``), which puts each problem on its field.
    """

    service_refusal: ValidationFailed | None = None

    def refusal_is_mine(self) -> bool:
        return self.service_refusal is not None

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.service_refusal is not None and self.refusal_is_mine():
            add_refusal_errors(self, self.service_refusal)
        return data


class FlagForm(ShowsServiceRefusal, forms.ModelForm):
    variants = PrettyJSONField(
        required=False,
        help_text='Variant names and values, e.g. {"control": "blue", "treatment": "green"}. '
        'Boolean flags always have {"on": true, "off": false}.',
    )
    tag_names = forms.CharField(
        required=False, label="Tags", help_text="Comma-separated, e.g. payments, kill-switch"
    )
    reason = audit_reason_field()

    class Meta:
        model = Flag
        fields = (
            "key",
            "name",
            "description",
            "type",
            "variants",
            "off_variant",
            "owner",
            "client_visible",
        )
        widgets = {"description": forms.Textarea(attrs={"rows": 2, "cols": 80})}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["tag_names"].initial = ", ".join(t.name for t in self.instance.tags.all())
        else:
            self.fields["variants"].initial = {"on": True, "off": False}
            self.fields["off_variant"].initial = "off"

    def clean_tag_names(self) -> list[str]:
        raw = self.cleaned_data.get("tag_names") or ""
        return sorted({t.strip().lower() for t in raw.split(",") if t.strip()})

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        flag_type = data.get("type") or self.instance.type
        variants = data.get("variants") or (
            {"on": True, "off": False} if flag_type == "boolean" else None
        )
        if variants is None:
            self.add_error("variants", "Give the variants of a non-boolean flag.")
            return data
        data["variants"] = variants
        return data


class FlagStateForm(ShowsServiceRefusal, forms.ModelForm):
    targets = PrettyJSONField(required=False, help_text='[{"variant": "on", "values": ["user-1"]}]')
    rules = PrettyJSONField(
        required=False,
        help_text='[{"id": "de", "conditions": [{"attribute": "country", "operator": "equals", '
        '"value": "DE"}], "serve": {"variant": "on"}}]',
    )
    default_serve = PrettyJSONField(
        help_text='{"variant": "on"} or {"split": [{"variant": "on", "weight": 2500}, '
        '{"variant": "off", "weight": 7500}]} (relative weights: [1, 1] is 50/50)'
    )
    prerequisites = PrettyJSONField(
        required=False, help_text='[{"flag": "payments-api", "variant": "on"}]'
    )
    expected_version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    class Meta:
        model = FlagState
        fields = ("enabled", "targets", "rules", "default_serve", "prerequisites")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["expected_version"].initial = self.instance.version
            self._structured_editor()

    def _structured_editor(self) -> None:
        """What the structured editor (flags/admin/state_editor.js) offers on this state's
        JSON fields: the flag's variants, the engine's operators, the environment's segments."""
        state = self.instance
        context = {
            "data-variants": json.dumps(list(state.flag.variants)),
            "data-operators": json.dumps(list(OPERATORS)),
            "data-segments": json.dumps(sorted(selectors.segment_keys(state.environment))),
        }
        for name, kind in (("targets", "targets"), ("rules", "rules"), ("default_serve", "serve")):
            self.fields[name].widget.attrs.update({"data-editor": kind, **context})

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        state = self.instance
        for name in ("targets", "rules", "prerequisites"):
            if data.get(name) in (None, ""):
                data[name] = []
        if not state.pk or self.errors:
            return data
        expected = data.get("expected_version")
        if expected is not None and expected != selectors.flag_state_version(
            state.flag, state.environment
        ):
            raise forms.ValidationError(
                "Someone changed this environment's state since you opened the page. "
                "Reload it and apply your change again."
            )
        return data

    # Set with ``service_refusal``: the state (id) whose write the service refused.
    refused_state_id: int | None = None

    def refusal_is_mine(self) -> bool:
        return self.instance.pk is not None and self.instance.pk == self.refused_state_id


class EnvironmentActionForm(forms.Form):
    environment = forms.ModelChoiceField(
        queryset=selectors.environments_in_order(), to_field_name="key"
    )
    reason = forms.CharField(
        max_length=services.MAX_KILL_REASON, widget=forms.Textarea(attrs={"rows": 3})
    )
    confirm = forms.BooleanField(label="Yes, do it now")


class EnvironmentForm(forms.ModelForm):
    copy_from = forms.ModelChoiceField(
        queryset=selectors.environments_in_order(),
        required=False,
        help_text="Start with the flag states and segments of this environment (new environments only).",
    )

    class Meta:
        model = Environment
        fields = ("key", "name", "description")


class SegmentForm(ShowsServiceRefusal, forms.ModelForm):
    included = PrettyJSONField(
        required=False, help_text='Targeting keys always in: ["user-1", "user-2"]'
    )
    excluded = PrettyJSONField(
        required=False, help_text="Targeting keys never in (wins over included and rules)."
    )
    rules = PrettyJSONField(
        required=False,
        help_text='Any rule matching puts a context in: [{"conditions": [{"attribute": "email", '
        '"operator": "ends_with", "value": "@acme.com"}]}]',
    )

    class Meta:
        model = Segment
        fields = ("environment", "key", "name", "description", "included", "excluded", "rules")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        for name in ("included", "excluded", "rules"):
            if data.get(name) in (None, ""):
                data[name] = []
        return data


class ApiTokenForm(forms.ModelForm):
    reason = audit_reason_field()

    class Meta:
        model = ApiToken
        fields = ("name", "kind", "environment")

    # Set per request by ApiTokenAdmin.get_form: may this user mint admin tokens?
    may_issue_admin_tokens = False

    def clean_kind(self) -> str:
        kind = str(self.cleaned_data["kind"])
        if kind == ApiToken.Kind.ADMIN and not self.may_issue_admin_tokens:
            raise forms.ValidationError(
                f"An admin token has full access; issuing one needs the permission "
                f"{ISSUE_ADMIN_TOKEN} (or a superuser). Choose another kind, or ask an "
                "administrator.",
                code="permission",
            )
        return kind


class KillTriggerForm(forms.ModelForm):
    reason = forms.CharField(
        required=False,
        max_length=services.MAX_KILL_REASON,
        label="Kill reason",
        help_text="The reason of every kill (or restore) this URL fires, e.g. "
        '"checkout 5xx rate above 2%"; an alert\'s note is added to it. Also on the audit trail.',
    )

    class Meta:
        model = KillTrigger
        fields = ("name", "flag", "environment", "action")

    # Set per request by KillTriggerAdmin.get_form: the user's kill/restore permissions.
    may_fire: frozenset[str] = frozenset()

    def clean_action(self) -> str:
        action = str(self.cleaned_data["action"])
        if action not in self.may_fire:
            raise forms.ValidationError(
                f"A trigger URL {action}s its flag for whoever holds it; creating one needs "
                f"the permission {ACTION_PERMISSIONS[action]}.",
                code="permission",
            )
        return action


# --- rollout plans ---------------------------------------------------------------------

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


class RolloutPlanForm(forms.Form):
    environment = forms.ModelChoiceField(
        queryset=selectors.environments_in_order(), to_field_name="key"
    )
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
