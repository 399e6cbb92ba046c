"""The snapshot document matches its published JSON schema (the SDKs' contract)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from audit.recorder import Actor
from flags import services
from flags.models import Environment, Flag
from flags.selectors import snapshot_build

SCHEMA = json.loads(
    (
        Path(__file__).resolve().parents[2] / "sdk_clients" / "testdata" / "snapshot.schema.json"
    ).read_text()
)
VECTORS = json.loads(
    (
        Path(__file__).resolve().parents[2] / "sdk_clients" / "testdata" / "evaluation-cases.json"
    ).read_text()
)


def test_schema__is_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.django_db
def test_snapshot__with_every_feature__validates(
    make_flag: Any, production: Environment, actor: Actor
) -> None:
    services.segment_create(
        actor=actor,
        environment=production,
        key="staff",
        included=["u1"],
        excluded=["u2"],
        rules=[
            {"conditions": [{"attribute": "email", "operator": "ends_with", "value": "@x.com"}]}
        ],
    )
    base: Flag = make_flag("payments")
    services.flag_state_update(actor=actor, flag=base, environment=production, enabled=True)
    flag: Flag = make_flag(
        "theme",
        type="json",
        variants={"dark": {"bg": 0}, "light": {"bg": 1}},
        off_variant="light",
        client_visible=True,
    )
    services.flag_state_update(
        actor=actor,
        flag=flag,
        environment=production,
        enabled=True,
        targets=[{"variant": "dark", "values": ["u9"]}],
        rules=[
            {
                "id": "staff",
                "description": "staff",
                "conditions": [{"operator": "in_segment", "value": "staff"}],
                "serve": {"variant": "dark"},
            }
        ],
        default_serve={
            "split": [{"variant": "dark", "weight": 2500}, {"variant": "light", "weight": 7500}],
            "bucket_by": "orgId",
        },
        prerequisites=[{"flag": "payments", "variant": "on"}],
    )
    services.flag_kill(actor=actor, flag=flag, environment=production, reason="bad")
    production.refresh_from_db()
    jsonschema.validate(
        snapshot_build(production), SCHEMA, format_checker=jsonschema.FormatChecker()
    )


def test_every_vector_suite__is_a_valid_snapshot_body() -> None:
    for suite in VECTORS["suites"]:
        document = {
            "schema_version": 1,
            "environment": "vectors",
            "version": 1,
            "flags": suite["flags"],
            "segments": suite["segments"],
        }
        jsonschema.validate(document, SCHEMA)
