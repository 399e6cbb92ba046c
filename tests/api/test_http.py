"""Input the database cannot hold is a 400 naming the field, never a 500 (run on PostgreSQL).

PostgreSQL refuses NUL in text and nothing encodes a lone surrogate as UTF-8, so these
reached the database and failed there; deep JSON exhausted the parser's recursion.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from audit.models import AuditEvent
from flags.models import Environment, Flag, Segment
from tests.api.conftest import error_of, send

pytestmark = pytest.mark.django_db

SEGMENTS = "/api/v1/environments/production/segments/"


def _raw(client: Client, method: str, path: str, body: str) -> Any:
    return client.generic(method, path, data=body.encode(), content_type="application/json")


def _refused_on(response: Any, field: str) -> str:
    assert response.status_code == 400, response.content
    error = error_of(response)
    assert field in error["fields"], error
    return str(error["fields"][field])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"key": "beta", "name": "Beta\\u0000"}', "name"),
        ('{"key": "beta", "included": ["u1", "u\\u00002"]}', "included[1]"),
        ('{"key": "beta", "name": "\\ud83d"}', "name"),
        (
            '{"key": "beta", "name": "fine", "rules": [{"conditions": [{"attribute": "email", '
            '"operator": "equals", "value": "a\\u0000b"}]}]}',
            "rules[0].conditions[0].value",
        ),
    ],
)
def test_segment__nul_or_lone_surrogate_in_a_value__400_naming_it_and_nothing_created(
    api: Client, production: Environment, body: str, field: str
) -> None:
    before = AuditEvent.objects.count()
    problem = _refused_on(_raw(api, "POST", SEGMENTS, body), field)
    assert "NUL" in problem or "surrogate" in problem
    assert not Segment.objects.exists() and AuditEvent.objects.count() == before


def test_flag_description_with_nul__400_naming_description(
    api: Client, make_flag: Callable[..., Flag]
) -> None:
    make_flag("search")
    body = '{"description": "fast\\u0000search"}'
    _refused_on(_raw(api, "PATCH", "/api/v1/flags/search/", body), "description")
    assert Flag.objects.get(key="search").description == ""


def test_json_ten_thousand_levels_deep__400_on_the_body(api: Client, environments: object) -> None:
    deep = '{"key": "deep", "description": ' + "[" * 10_000 + "]" * 10_000 + "}"
    assert "nested deeper" in _refused_on(_raw(api, "POST", "/api/v1/flags/", deep), "body")
    assert not Flag.objects.filter(key="deep").exists()


def test_json_moderately_deep_but_over_the_cap__400_on_the_body(
    api: Client, environments: object
) -> None:
    deep = '{"key": "deep", "description": ' + "[" * 100 + "]" * 100 + "}"
    assert "nested deeper" in _refused_on(_raw(api, "POST", "/api/v1/flags/", deep), "body")


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/v1/flags/?tag=a%00b", "tag"),
        ("/api/v1/kills/?environment=production%00", "environment"),
        ("/api/v1/audit/?actor=%00", "actor"),
        ("/api/v1/flags/?%00=1", "query"),
        ("/api/v1/flags/new%00checkout/", "path"),
        ("/api/v1/environments/production/segments/st%00aff/", "path"),
    ],
)
def test_nul_in_a_query_parameter_or_the_path__400_naming_it(
    api: Client, environments: object, path: str, field: str
) -> None:
    assert "NUL" in _refused_on(send(api, "GET", path), field)


def test_nul_in_the_reason_header__400_naming_it_and_no_kill(
    make_flag: Callable[..., Flag], issue: Callable[..., str], production: Environment
) -> None:
    make_flag("search")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {issue('kill')}", HTTP_X_REASON="oops\x00")
    response = send(client, "POST", "/api/v1/flags/search/kill/", {"environment": "production"})
    assert "NUL" in _refused_on(response, "X-Reason")
    assert not AuditEvent.objects.filter(action="flag.kill").exists()
