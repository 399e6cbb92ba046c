"""Schemathesis against a live server: every documented operation, every check, bounded.

The server is the whole ASGI application under uvicorn in this test process (it shares
the test database), seeded with environments, flags, a segment, a trigger and one key
of each kind. Destructive operations are fine: the database is this test's own.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from flags import services
from tests.edge import conftest as edge
from tests.edge.conftest import LiveEdge

# Cases per operation and phase: 47 operations in 4 phases took ~150 s on 2 busy cores.
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "5"))

# The whole ASGI application under uvicorn in this process, and its seeded world.
live_edge, world = edge.live_edge, edge.world


@pytest.fixture
def unthrottled(settings: Any) -> None:
    """Rate limits would answer most cases 429 and leave the logic behind them untested."""
    settings.SDK_RATE_LIMIT_PER_SECOND = 0
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"admin_token": "1000000/minute"},
    }


@pytest.mark.integration
def test_openapi__every_operation_all_checks__no_5xx_and_no_schema_violation(
    unthrottled: None, live_edge: LiveEdge, world: dict[str, Any], tmp_path: Path
) -> None:
    # Given the edge tests' world (environments, flags, one key of each kind), a segment
    # and a trigger, so that every kind of thing exists
    actor, production = world["actor"], world["production"]
    services.segment_create(actor=actor, environment=production, key="staff", included=["u1"])
    services.trigger_create(actor=actor, name="apm", flag=world["checkout"], environment=production)
    fuzz_server, tokens = live_edge.url, world["tokens"]
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        f"""
headers = {{ Authorization = "Bearer {tokens["admin"]}" }}

# A schema-valid body can still name something that does not exist (environment "0",
# off_variant "0"): a 400 naming the field is the right answer there, as are 404 and 409;
# and a conditional GET (If-None-Match) answers 304.
[checks.positive_data_acceptance]
expected-statuses = ["2XX", 304, 400, 401, 403, 404, 409, 429]

[[operations]]
include-path-regex = "^/(ofrep/|api/v1/sdk/)"
headers = {{ Authorization = "Bearer {tokens["server"]}" }}
"""
    )
    command = [
        str(Path(sys.executable).with_name("st")),
        "--config-file",
        str(config),
        "run",
        f"{fuzz_server}/api/schema/?format=json",
        "--url",
        fuzz_server,
        "--checks",
        "all",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        os.environ.get("FUZZ_SEED", "8"),
        "--request-timeout",
        "5",
        "--workers",
        "1",
        "--generation-database",
        "none",
        "--no-color",
        "--report",
        "ndjson",
        "--report-dir",
        str(tmp_path),
    ]
    started = time.monotonic()
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=600, check=False, cwd=tmp_path
    )
    print(result.stdout[-1500:], f"schemathesis took {time.monotonic() - started:.0f} s")
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-3000:]
