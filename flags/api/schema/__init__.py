"""The OpenAPI document: security schemes, shared definitions, error bodies, and the SDK edge.

drf-spectacular describes the DRF views. ``postprocess_schema`` (a
POSTPROCESSING_HOOKS entry) then adds what it cannot see: the shapes of flag
definitions (from the snapshot's JSON Schema, ``definitions``), the one error body on
every error status (``errors``), and the paths the Starlette SDK edge serves before
Django (``edge``). ``security`` registers the authentication schemes.
"""

from __future__ import annotations

import re
from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import force_instance

from flags.api.schema.definitions import ERROR_COMPONENT, definition_components, ref
from flags.api.schema.edge import EDGE_DEFINITIONS, EDGE_PATHS
from flags.api.schema.errors import add_error_responses
from flags.api.schema.security import SECURITY_SCHEMES  # also registers the schemes

__all__ = ["ApiAutoSchema", "postprocess_schema", "ref"]


class ApiAutoSchema(AutoSchema):
    """Component names without the code's In/Out suffixes (FlagStateOut -> FlagState)."""

    def get_serializer_name(self, serializer: Any, direction: Any) -> str:
        name = str(super().get_serializer_name(serializer, direction))
        return re.sub(r"(?<=[a-z])(Out|In)$", "", name)

    def _map_serializer(
        self, serializer: Any, direction: Any, bypass_extensions: bool = False
    ) -> dict[str, Any]:
        schema: dict[str, Any] = super()._map_serializer(serializer, direction, bypass_extensions)
        # Request bodies refuse unknown fields (InputSerializer): say so.
        refuses = getattr(force_instance(serializer), "refuses_unknown_fields", False)
        if direction == "request" and refuses:
            schema["additionalProperties"] = False
        return schema


def _drop_request_suffixes(result: dict[str, Any]) -> dict[str, Any]:
    """``FooRequest`` -> ``Foo`` where no response component is called ``Foo``.

    COMPONENT_SPLIT_REQUEST gives request bodies components of their own (so that
    non-blank strings carry ``minLength: 1``), named with a Request suffix; input-only
    serializers keep their plain names, as before the split.
    """
    schemas = result.get("components", {}).get("schemas", {})
    renames = {
        f"#/components/schemas/{name}": f"#/components/schemas/{name[: -len('Request')]}"
        for name in schemas
        if name.endswith("Request") and name[: -len("Request")] not in schemas
    }
    if not renames:
        return result

    def rewrite(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("$ref") in renames:
                node["$ref"] = renames[node["$ref"]]
            for child in node.values():
                rewrite(child)
        elif isinstance(node, list):
            for child in node:
                rewrite(child)

    rewrite(result)
    result["components"]["schemas"] = {
        (name[: -len("Request")] if f"#/components/schemas/{name}" in renames else name): body
        for name, body in schemas.items()
    }
    return result


def postprocess_schema(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    """POSTPROCESSING_HOOKS entry: definitions, error bodies and the SDK edge's paths."""
    result = _drop_request_suffixes(result)
    components = result.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name, schema in {
        **definition_components(),
        "Error": ERROR_COMPONENT,
        **EDGE_DEFINITIONS,
    }.items():
        schemas.setdefault(name, schema)
    security = components.setdefault("securitySchemes", {})
    for name, scheme in SECURITY_SCHEMES.items():
        security.setdefault(name, scheme)
    paths = result.setdefault("paths", {})
    for path, operations in paths.items():
        for method, operation in operations.items():
            if method in ("get", "post", "put", "patch", "delete"):
                add_error_responses(path, method, operation)
    for path, operations in EDGE_PATHS.items():
        paths.setdefault(path, operations)
    result["paths"] = dict(sorted(paths.items()))
    return result
