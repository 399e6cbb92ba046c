"""The OpenAPI document: valid, complete (every path the app serves), and served offline."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.validation import validate_schema
from starlette.routing import Route

from flags.edge.app import build_application
from flagsvc_sdk.engine import MAX_SPLIT_TOTAL, OPERATORS
from flagsvc_sdk.snapshot_schema import snapshot_schema

pytestmark = pytest.mark.django_db

HTTP_METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def schema(django_db_blocker: Any) -> dict[str, Any]:
    with django_db_blocker.unblock():
        response = Client().get("/api/schema/?format=json")
    assert response.status_code == 200, response.content[:300]
    return dict(response.json())


def _django_api_paths() -> dict[str, set[str]]:
    """Every DRF endpoint Django routes under /api/v1/, as OpenAPI paths with their methods."""
    found: dict[str, set[str]] = {}

    def walk(patterns: list[Any], prefix: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern) and route.startswith("api/v1/"):
                view = getattr(pattern.callback, "cls", None)
                if view is None:
                    continue
                path = "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)
                found[path] = {m for m in HTTP_METHODS if hasattr(view, m)}

    walk(get_resolver().url_patterns, "")
    return found


def _edge_paths() -> dict[str, set[str]]:
    """Every route the Starlette SDK edge answers before Django."""
    application = build_application(lambda scope, receive, send: None)
    found: dict[str, set[str]] = {}
    for route in application.routes:
        if isinstance(route, Route):
            methods = {m.lower() for m in route.methods or ()} & HTTP_METHODS
            if methods:
                found.setdefault(route.path, set()).update(methods)
    return found


def test_schema__is_valid_openapi_3(schema: dict[str, Any]) -> None:
    assert schema["openapi"].startswith("3.")
    validate_schema(schema)


def test_schema__documents_every_management_path_and_method(schema: dict[str, Any]) -> None:
    served = _django_api_paths()
    assert "/api/v1/flags/{key}/environments/{environment}/" in served
    assert "/api/v1/audit/" in served
    for path, methods in served.items():
        assert path in schema["paths"], path
        assert set(schema["paths"][path]) & HTTP_METHODS == methods, path


def test_schema__documents_every_sdk_edge_path_and_method(schema: dict[str, Any]) -> None:
    served = _edge_paths()
    assert {"/api/v1/sdk/snapshot/", "/ofrep/v1/evaluate/flags/{key}", "/healthz"} <= set(served)
    for path, methods in served.items():
        assert path in schema["paths"], path
        assert methods <= set(schema["paths"][path]), path


def test_schema__one_bearer_scheme_per_token_kind(schema: dict[str, Any]) -> None:
    schemes = schema["components"]["securitySchemes"]
    for name in ("AdminToken", "ServerKey", "ClientKey", "KillKey"):
        assert schemes[name]["type"] == "http" and schemes[name]["scheme"] == "bearer"
    assert schemes["StaffSession"]["in"] == "cookie"
    flags_list = schema["paths"]["/api/v1/flags/"]["get"]
    assert {"AdminToken": []} in flags_list["security"]
    snapshot = schema["paths"]["/api/v1/sdk/snapshot/"]["get"]
    assert {"ServerKey": []} in snapshot["security"]


def test_schema__every_management_error_answers_the_error_envelope(
    schema: dict[str, Any],
) -> None:
    for path, operations in schema["paths"].items():
        if not path.startswith("/api/v1/") or path.startswith("/api/v1/sdk/"):
            continue
        for method, operation in operations.items():
            responses = operation["responses"]
            assert {"401", "403", "429"} <= set(responses), (method, path)
            for status, response in responses.items():
                if status[0] in "45":
                    content = response["content"]["application/json"]["schema"]
                    assert content == {"$ref": "#/components/schemas/Error"}, (method, path)
    assert "Retry-After" in schema["paths"]["/api/v1/flags/"]["get"]["responses"]["429"]["headers"]


def test_schema__state_write_documents_if_match_and_conflict(schema: dict[str, Any]) -> None:
    put = schema["paths"]["/api/v1/flags/{key}/environments/{environment}/"]["put"]
    assert "If-Match" in {p["name"] for p in put["parameters"]}
    assert "409" in put["responses"]
    body = schema["components"]["schemas"]["FlagStateWrite"]
    assert set(body["required"]) == {"enabled", "default_serve"}
    assert body["properties"]["rules"]["items"] == {"$ref": "#/components/schemas/Rule"}


def test_schema__ofrep_shapes(schema: dict[str, Any]) -> None:
    single = schema["paths"]["/ofrep/v1/evaluate/flags/{key}"]["post"]
    assert {"200", "400", "401", "403", "404", "429"} <= set(single["responses"])
    assert "Retry-After" in single["responses"]["429"]["headers"]
    success = schema["components"]["schemas"]["OfrepEvaluationSuccess"]
    assert {"key", "value", "reason", "variant", "metadata"} <= set(success["properties"])
    assert {"ServerKeyHeader": []} in single["security"]


def test_docs__swagger_ui_from_local_static_files(db: None) -> None:
    response = Client().get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in html
    assert "cdn" not in html.lower()


def test_schema__kill_and_trigger_lists_are_documented_as_lists(schema: dict[str, Any]) -> None:
    for path, name, item in (
        ("/api/v1/kills/", "kills", "KillState"),
        ("/api/v1/triggers/", "triggers", "Trigger"),
    ):
        answer = schema["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
        body = schema["components"]["schemas"][answer["schema"]["$ref"].rsplit("/", 1)[1]]
        assert body["properties"][name]["type"] == "array", path
        assert body["properties"][name]["items"] == {"$ref": f"#/components/schemas/{item}"}


def test_schema__request_bodies_refuse_unknown_fields_and_blank_names(
    schema: dict[str, Any],
) -> None:
    kill = schema["components"]["schemas"]["Kill"]
    assert kill["additionalProperties"] is False
    assert kill["properties"]["reason"]["minLength"] == 1


def test_schema__every_operation_documents_400(schema: dict[str, Any]) -> None:
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if method in HTTP_METHODS and path.startswith("/api/v1/") and "sdk" not in path:
                assert "400" in operation["responses"], (method, path)


def test_schema__flag_definitions_come_from_the_snapshot_schema(schema: dict[str, Any]) -> None:
    components, defs = schema["components"]["schemas"], snapshot_schema()["$defs"]
    operators = components["Condition"]["properties"]["operator"]["enum"]
    assert operators == defs["condition"]["properties"]["operator"]["enum"] == list(OPERATORS)
    weight = components["SplitShare"]["properties"]["weight"]
    assert weight["maximum"] == MAX_SPLIT_TOTAL
    assert components["SnapshotFlag"]["required"] == defs["flag"]["required"]
    # OpenAPI 3.0's dialect: the kill overlay is nullable, not a "null" branch.
    assert components["SnapshotFlag"]["properties"]["kill"]["nullable"] is True
    assert "$defs" not in json.dumps(components)
