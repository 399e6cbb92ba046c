"""The OpenAPI components for flag definitions, derived from the snapshot's JSON Schema.

A flag's shape (targets, rules, conditions, serves, prerequisites, the kill overlay,
segments) is written once, in ``sdk_clients/testdata/snapshot.schema.json`` (JSON Schema
2020-12), which every SDK and the engine's vectors follow. This module converts those
definitions to OpenAPI 3.0's dialect (``nullable`` instead of ``"null"`` types, no
``propertyNames``) and names them as components. The only difference for request bodies:
a rule (of a flag or a segment) may leave out ``conditions`` (the API stores ``[]``).
"""

from __future__ import annotations

import copy
from typing import Any

from flagsvc_sdk.engine import MAX_RULES
from flagsvc_sdk.snapshot_schema import snapshot_schema


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


# $defs of the snapshot schema that become components, by their component name.
COMPONENT_OF_DEF = {
    "condition": "Condition",
    "serve": "Serve",
    "rule": "Rule",
    "flag": "SnapshotFlag",
    "segment": "SnapshotSegment",
}
# Fields the API fills when a request leaves them out, by component.
API_DEFAULTED = {"Rule": ("conditions",), "SegmentRule": ("conditions",)}
EXAMPLES = {
    "Condition": {"attribute": "country", "operator": "in", "value": ["DE", "FR"]},
    "Serve": {"split": [{"variant": "on", "weight": 2500}, {"variant": "off", "weight": 7500}]},
    "Target": {"variant": "on", "values": ["user-1"]},
}


def openapi_dialect(node: Any, defs: dict[str, Any]) -> Any:
    """A JSON Schema 2020-12 node in OpenAPI 3.0's dialect, $defs refs made component refs."""
    if isinstance(node, list):
        return [openapi_dialect(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    target = node.get("$ref", "")
    if target.startswith("#/$defs/"):
        name = target.removeprefix("#/$defs/")
        if name in COMPONENT_OF_DEF:
            return ref(COMPONENT_OF_DEF[name])
        return openapi_dialect(defs[name], defs)  # small ones (key patterns) inline
    out = {
        key: openapi_dialect(value, defs)
        for key, value in node.items()
        if key not in ("$schema", "$id", "$defs", "propertyNames")
    }
    types = out.get("type")
    if isinstance(types, list) and "null" in types:
        rest = [kind for kind in types if kind != "null"]
        out["type"] = rest[0]
        out["nullable"] = True
    branches = out.get("oneOf")
    if branches and {"type": "null"} in branches:
        rest = [branch for branch in branches if branch != {"type": "null"}]
        del out["oneOf"]
        out.update(rest[0] if len(rest) == 1 else {"oneOf": rest})
        out["nullable"] = True
    if "enum" in out and "type" not in out and all(isinstance(v, str) for v in out["enum"]):
        out["type"] = "string"
    return out


def definition_components() -> dict[str, dict[str, Any]]:
    """Condition, Serve, Rule, Target, Prerequisite, SegmentRule, Kill, SplitShare,
    SnapshotFlag and SnapshotSegment, all from the snapshot schema."""
    defs = snapshot_schema()["$defs"]
    components = {
        component: openapi_dialect(defs[name], defs) for name, component in COMPONENT_OF_DEF.items()
    }
    flag = components["SnapshotFlag"]["properties"]
    components["Target"] = flag["targets"]["items"]
    components["Prerequisite"] = flag["prerequisites"]["items"]
    components["Kill"] = {k: v for k, v in flag["kill"].items() if k != "nullable"}
    components["SegmentRule"] = components["SnapshotSegment"]["properties"]["rules"]["items"]
    split = components["Serve"]["oneOf"][1]["properties"]["split"]
    components["SplitShare"] = split["items"]
    flag["targets"]["items"] = ref("Target")
    flag["prerequisites"]["items"] = ref("Prerequisite")
    flag["kill"] = {"allOf": [ref("Kill")], "nullable": True}
    components["SnapshotSegment"]["properties"]["rules"]["items"] = ref("SegmentRule")
    split["items"] = ref("SplitShare")
    components["Rule"]["description"] = (
        f"The first rule whose conditions all hold serves. At most {MAX_RULES}."
    )
    for name, fields in API_DEFAULTED.items():
        schema = components[name]
        schema["required"] = [field for field in schema["required"] if field not in fields]
        if not schema["required"]:  # OpenAPI 3.0: a required list is never empty
            del schema["required"]
    for name, example in EXAMPLES.items():
        components[name]["example"] = example
    return copy.deepcopy(components)


ERROR_COMPONENT: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "fields"],
            "properties": {
                "code": {
                    "type": "string",
                    "description": "Machine-readable: validation_failed, malformed_json, "
                    "invalid_parameter, not_authenticated, invalid_token, "
                    "permission_denied, csrf_failed, not_found, method_not_allowed, "
                    "not_acceptable, version_conflict, already_exists, flag_archived, "
                    "rollout_plan_conflict, "
                    "payload_too_large, unsupported_media_type, throttled, internal_error",
                    "example": "validation_failed",
                },
                "message": {
                    "type": "string",
                    "description": "What went wrong and what to fix.",
                    "example": "default_serve.variant: must name one of the variants "
                    "(on, off); got 'maybe'",
                },
                "fields": {
                    "type": "object",
                    "additionalProperties": {"type": "string"},
                    "description": "Per field (or parameter) path, what is wrong with it.",
                    "example": {"default_serve.variant": "must name one of the variants (on, off)"},
                },
            },
        }
    },
}
