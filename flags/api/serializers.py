"""The management API's shared body parts: field types, the strict input serializer, the reason.

Input serializers check shapes and types and refuse unknown fields; what the
values mean (variants, rules, serves, prerequisites) is checked by the services
through ``flags.validation``, so the API, the admin and the CLI agree. Each
resource's own bodies live beside its views (``flags.api.flags`` etc.).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from flags import services
from flags.api.schema import ref

# --- fields ------------------------------------------------------------------------------


class StrictBooleanField(serializers.BooleanField):
    """Only JSON true/false: "yes" or 1 is a mistake worth pointing out."""

    default_error_messages = {"invalid": "must be true or false (a JSON boolean)"}

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class StrictFloatField(serializers.FloatField):
    """Only a JSON number: true or "0.5" is a mistake worth pointing out."""

    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    """Only a JSON integer."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


def choice_field(choices: list[str], **kwargs: Any) -> serializers.ChoiceField:
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
