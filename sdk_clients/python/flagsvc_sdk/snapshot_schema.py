"""The snapshot document's JSON Schema (sdk_clients/testdata/snapshot.schema.json), shipped
with the package: the one definition of a flag, a rule, a condition, a serve and a segment."""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any


@functools.cache
def snapshot_schema() -> dict[str, Any]:
    """The parsed schema (read once). Example: ``snapshot_schema()["$defs"]["flag"]``."""
    text = resources.files("flagsvc_sdk").joinpath("snapshot.schema.json").read_text("utf-8")
    return dict(json.loads(text))
