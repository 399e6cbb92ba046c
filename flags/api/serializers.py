"""Request and response bodies of the management API.

Input serializers check shapes and types and refuse unknown fields; what the
values mean (variants, rules, serves, prerequisites) is checked by the services
through ``flags.validation``, so the API, the admin and the CLI agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from flags import services
from flags.api.schema import ref
from flags.models import ApiToken, Flag, FlagState
from flags.selectors import state_summary

# --- fields ------------------------------------------------------------------------------


class StrictBooleanField(serializers.BooleanField):
    """Only JSON true/false: "yes" or 1 is a mistake worth pointing out."""

    default_error_messages = {"invalid": "must be true or false (a JSON boolean)"}

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


def _choice(choices: list[str], **kwargs: Any) -> serializers.ChoiceField:
    return serializers.ChoiceField(
        choices=choices,
        error_messages={"invalid_choice": f'"{{input}}" is not one of {", ".join(choices)}'},
        **kwargs,
    )


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": {},
        "description": 'Variant names and values, e.g. {"control": "blue", "treatment": "green"}; '
        'a boolean flag has exactly {"on": true, "off": false}.',
        "example": {"on": True, "off": False},
    }
)
class VariantsField(serializers.JSONField):
    pass


# Keys that name something (a variant, an operator, a flag): always strings in the
# definitions, and looked up in dicts by the validation, which a JSON object cannot be.
_NAME_KEYS = ("variant", "operator", "attribute", "flag", "bucket_by", "id")


def _name_problem(value: Any, path: str = "") -> str | None:
    """The first ``variant``/``operator``/... in a definition that is not a string."""
    pending: list[tuple[Any, str]] = [(value, path)]
    while pending:
        item, here = pending.pop()
        if isinstance(item, dict):
            for key, child in item.items():
                child_path = f"{here}.{key}" if here else str(key)
                if key in _NAME_KEYS and not isinstance(child, str):
                    return f"{child_path}: must be a string, not {type(child).__name__}"
                pending.append((child, child_path))
        elif isinstance(item, list):
            pending.extend((child, f"{here}[{i}]") for i, child in enumerate(item))
    return None


class DefinitionJSONField(serializers.JSONField):
    """Part of a flag or segment definition; what it means is for the services to check."""

    def to_internal_value(self, data: Any) -> Any:
        problem = _name_problem(data)
        if problem is not None:
            raise serializers.ValidationError(problem)
        return super().to_internal_value(data)


class JsonListField(DefinitionJSONField):
    """A JSON list; what its items mean is for the services' validation to check."""

    default_error_messages = {"not_a_list": "must be a JSON list"}

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, list):
            self.fail("not_a_list")
        return super().to_internal_value(data)


@extend_schema_field({"type": "array", "items": ref("Target")})
class TargetsField(JsonListField):
    pass


class _RuleListField(JsonListField):
    def to_internal_value(self, data: Any) -> Any:
        rules = super().to_internal_value(data)
        for index, rule in enumerate(rules):
            # null would be stored and answered as null, where a list is documented
            if (
                isinstance(rule, dict)
                and "conditions" in rule
                and not isinstance(rule["conditions"], list)
            ):
                raise serializers.ValidationError(f"[{index}].conditions: must be a list")
        return rules


@extend_schema_field({"type": "array", "items": ref("Rule")})
class RulesField(_RuleListField):
    pass


@extend_schema_field(ref("Serve"))
class ServeField(DefinitionJSONField):
    """``{"variant": NAME}`` or ``{"split": [...], "bucket_by": ATTRIBUTE}``, nothing else."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            allowed = {"variant"} if "variant" in data else {"split", "bucket_by"}
            unknown = sorted(set(data) - allowed, key=str)
            if unknown:
                raise serializers.ValidationError(
                    f"unknown key(s) {', '.join(map(repr, unknown))}; a serve is "
                    '{"variant": NAME} or {"split": [...], "bucket_by": ATTRIBUTE}'
                )
        return super().to_internal_value(data)


@extend_schema_field({"type": "array", "items": ref("Prerequisite")})
class PrerequisitesField(JsonListField):
    pass


@extend_schema_field({"type": "array", "items": ref("SegmentRule")})
class SegmentRulesField(_RuleListField):
    pass


@extend_schema_field({"type": "array", "items": {"type": "string"}})
class KeyListField(JsonListField):
    pass


def empty_list() -> Any:
    return []


def reason_field() -> serializers.CharField:
    return serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=services.MAX_REASON,
        help_text="Why (goes on the audit trail). The X-Reason header works too.",
    )


class InputSerializer(serializers.Serializer):
    """A request body: a JSON object whose every field is known."""

    refuses_unknown_fields = True  # the OpenAPI document says so (flags.api.schema)

    # Fields that exist but cannot be changed here, with what to do instead.
    fixed_fields: Mapping[str, str] = {}

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            problems: dict[str, list[str]] = {}
            for name in sorted(set(data) - set(self.fields)):
                problems[name] = [
                    self.fixed_fields.get(name) or f"unknown field; use {', '.join(self.fields)}"
                ]
            for name, field in self.fields.items():
                # DRF turns 0 or true into "0"/"True" for a CharField; the schema says string.
                value = data.get(name)
                if isinstance(field, serializers.CharField) and not (
                    value is None or isinstance(value, str)
                ):
                    problems[name] = [f"must be a string, not {type(value).__name__}"]
            if problems:
                raise serializers.ValidationError(problems)
        return super().to_internal_value(data)

    def create(self, validated_data: Any) -> Any:  # writes go through flags.services
        raise NotImplementedError

    def update(self, instance: Any, validated_data: Any) -> Any:
        raise NotImplementedError


class ReasonIn(InputSerializer):
    reason = reason_field()


# --- environments ----------------------------------------------------------------------


class EnvironmentOut(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    version = serializers.IntegerField(
        help_text="Bumped by every change to what this environment evaluates to."
    )
    created_at = serializers.DateTimeField()


class EnvironmentCreateIn(InputSerializer):
    key = serializers.CharField(max_length=64, help_text="e.g. production; fixed once created")
    name = serializers.CharField(required=False, allow_blank=True, max_length=100)
    description = serializers.CharField(required=False, allow_blank=True, max_length=10_000)
    copy_from = serializers.CharField(
        required=False,
        allow_null=True,
        max_length=64,
        help_text="Key of an environment whose flag states and segments the new one starts with.",
    )
    reason = reason_field()


class EnvironmentUpdateIn(InputSerializer):
    fixed_fields = {"key": "an environment's key is fixed (SDK keys and URLs use it)"}

    name = serializers.CharField(required=False, max_length=100)
    description = serializers.CharField(required=False, allow_blank=True, max_length=10_000)
    reason = reason_field()


# --- flags and states ----------------------------------------------------------------------


@extend_schema_field({"allOf": [ref("Kill")], "nullable": True})
class KillField(serializers.JSONField):
    pass


class FlagStateOut(serializers.Serializer):
    """A flag's state in one environment; the kill overlay is read-only here."""

    flag = serializers.CharField(source="flag.key")
    environment = serializers.CharField(source="environment.key")
    enabled = serializers.BooleanField()
    targets = TargetsField()
    rules = RulesField()
    default_serve = ServeField()
    prerequisites = PrerequisitesField()
    kill = KillField(
        source="kill_overlay",
        allow_null=True,
        help_text="Set by a kill, cleared by restore; null when not killed. Read-only here.",
    )
    summary = serializers.SerializerMethodField(help_text="e.g. off, on, 25%, KILLED")
    version = serializers.IntegerField(help_text="This state's version; send it back in If-Match.")
    environment_version = serializers.IntegerField(source="environment.version")
    updated_at = serializers.DateTimeField()

    def get_summary(self, state: FlagState) -> str:
        return state_summary(state.flag, state)


class FlagStateSummaryOut(serializers.Serializer):
    enabled = serializers.BooleanField()
    killed = serializers.BooleanField()
    summary = serializers.SerializerMethodField(help_text="e.g. off, on, 25%, KILLED")
    version = serializers.IntegerField()

    def get_summary(self, state: FlagState) -> str:
        return state_summary(state.flag, state)


class StatesByEnvironmentField(serializers.DictField):
    """A flag's states keyed by environment key, in the environments' order (prefetched)."""

    def get_attribute(self, instance: Flag) -> dict[str, FlagState]:
        states = list(instance.states.all())
        for state in states:
            state.flag = instance  # no query per state for its flag
        states.sort(key=lambda s: (s.environment.sort_order, s.environment_id))
        return {state.environment.key: state for state in states}


class FlagOut(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    type = serializers.ChoiceField(choices=Flag.Type.values)
    variants = VariantsField()
    off_variant = serializers.CharField()
    tags = serializers.SerializerMethodField()
    owner = serializers.CharField()
    client_visible = serializers.BooleanField()
    archived = serializers.BooleanField()
    archived_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    environments = StatesByEnvironmentField(
        child=FlagStateSummaryOut(),
        help_text="By environment key: enabled, killed, a summary and the state's version.",
    )

    @extend_schema_field({"type": "array", "items": {"type": "string"}})
    def get_tags(self, flag: Flag) -> list[str]:
        return sorted(t.name for t in flag.tags.all())


class FlagDetailOut(FlagOut):
    environments = StatesByEnvironmentField(
        child=FlagStateOut(),
        help_text="The flag's full state in every environment, by environment key.",
    )


class FlagCreateIn(InputSerializer):
    key = serializers.CharField(max_length=100, help_text="^[a-z0-9][a-z0-9._-]{0,99}$")
    type = _choice(list(Flag.Type.values), required=False, default=Flag.Type.BOOLEAN)
    variants = VariantsField(required=False, help_text="Required unless the flag is boolean.")
    off_variant = serializers.CharField(required=False, max_length=64)
    name = serializers.CharField(required=False, allow_blank=True, max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, max_length=10_000)
    tags = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, max_length=50
    )
    owner = serializers.CharField(required=False, allow_blank=True, max_length=200)
    client_visible = StrictBooleanField(required=False)
    reason = reason_field()


class FlagUpdateIn(InputSerializer):
    fixed_fields = {
        "key": "a flag's key is fixed; create a new flag instead",
        "type": "a flag's type is fixed; create a new flag instead",
    }

    name = serializers.CharField(required=False, allow_blank=True, max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, max_length=10_000)
    tags = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, max_length=50
    )
    owner = serializers.CharField(required=False, allow_blank=True, max_length=200)
    client_visible = StrictBooleanField(required=False)
    variants = VariantsField(required=False)
    off_variant = serializers.CharField(required=False, max_length=64)
    reason = reason_field()


class FlagStateWriteIn(InputSerializer):
    """PUT replaces all five state fields (missing lists become empty); PATCH changes some."""

    fixed_fields = {
        "kill": "kill and restore have their own endpoints; the overlay is read-only here",
        "environment_version": "read-only",
    }

    enabled = StrictBooleanField()
    targets = TargetsField(required=False, default=empty_list)
    rules = RulesField(required=False, default=empty_list)
    default_serve = ServeField()
    prerequisites = PrerequisitesField(required=False, default=empty_list)
    version = serializers.IntegerField(
        required=False,
        min_value=1,
        help_text="The version you read (alternative to the If-Match header).",
    )
    reason = reason_field()


# --- segments ----------------------------------------------------------------------------


class SegmentOut(serializers.Serializer):
    key = serializers.CharField()
    environment = serializers.CharField(source="environment.key")
    name = serializers.CharField()
    description = serializers.CharField()
    included = KeyListField()
    excluded = KeyListField()
    rules = SegmentRulesField()
    environment_version = serializers.IntegerField(source="environment.version")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class SegmentCreateIn(InputSerializer):
    key = serializers.CharField(max_length=100)
    name = serializers.CharField(required=False, allow_blank=True, max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, max_length=10_000)
    included = KeyListField(
        required=False, default=empty_list, help_text="Targeting keys always in."
    )
    excluded = KeyListField(
        required=False, default=empty_list, help_text="Targeting keys never in."
    )
    rules = SegmentRulesField(required=False, default=empty_list)
    reason = reason_field()


class SegmentUpdateIn(InputSerializer):
    fixed_fields = {"key": "a segment's key is fixed; create a new segment instead"}

    name = serializers.CharField(required=False, allow_blank=True, max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, max_length=10_000)
    included = KeyListField(required=False)
    excluded = KeyListField(required=False)
    rules = SegmentRulesField(required=False)
    reason = reason_field()


# --- tokens ------------------------------------------------------------------------------


class TokenOut(serializers.Serializer):
    """A token as listed: never its raw value or digest."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=ApiToken.Kind.values)
    environment = serializers.CharField(source="environment.key", allow_null=True, default=None)
    hint = serializers.CharField(help_text="The raw token's last characters.")
    created_at = serializers.DateTimeField()
    created_by = serializers.CharField()
    last_used_at = serializers.DateTimeField(
        allow_null=True, help_text="Recorded at most once a minute per process."
    )
    revoked = serializers.BooleanField()
    revoked_at = serializers.DateTimeField(allow_null=True)
    revoked_by = serializers.CharField()


class TokenIssuedOut(TokenOut):
    token = serializers.CharField(
        help_text="The raw token. Shown this once: store it now, it cannot be read again."
    )


class TokenCreateIn(InputSerializer):
    name = serializers.CharField(max_length=100, help_text="e.g. checkout-service")
    kind = _choice(list(ApiToken.Kind.values))
    environment = serializers.CharField(
        required=False,
        allow_null=True,
        max_length=64,
        help_text="Environment key: required for server and client keys, optional for kill "
        "keys, not allowed for admin tokens.",
    )
    reason = reason_field()
