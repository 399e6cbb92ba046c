"""Ask Prometheus one instant query (GET /api/v1/query) and read a number from its answer."""

from __future__ import annotations

import contextlib
import json
import math
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass


class QueryFailed(Exception):
    """Prometheus could not be asked, or answered an error."""


@dataclass(frozen=True)
class Answer:
    """The finite numbers the query answered (one per series; empty: no data)."""

    values: tuple[float, ...]
    series: int


def instant_query(base_url: str, query: str, *, timeout: float) -> Answer:
    """Run ``query`` now against the Prometheus at ``base_url``.

    Raises QueryFailed on a connection error, a non-2xx answer or an error status.
    NaN and infinite samples (a ratio over zero traffic) are left out: they are no data.
    """
    if not base_url:
        raise QueryFailed("no Prometheus URL: set PROMETHEUS_URL or the guardrail's own")
    url = base_url.rstrip("/") + "/api/v1/query?" + urllib.parse.urlencode({"query": query})
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            document = json.loads(response.read())
    except urllib.error.HTTPError as error:
        detail = ""
        with contextlib.suppress(ValueError, OSError, AttributeError):
            detail = json.loads(error.read()).get("error", "")
        raise QueryFailed(f"Prometheus answered {error.code}: {detail or error.reason}") from None
    except (OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise QueryFailed(f"Prometheus at {base_url} unreachable: {reason}") from None
    if document.get("status") != "success":
        raise QueryFailed(f"Prometheus error: {document.get('error', document)}")
    data = document.get("data") or {}
    kind, result = data.get("resultType"), data.get("result")
    samples: list[str] = []
    if kind in ("scalar", "string") and isinstance(result, list):
        samples = [result[1]]
    elif kind == "vector" and isinstance(result, list):
        samples = [series["value"][1] for series in result]
    elif kind == "matrix":
        raise QueryFailed(
            "the query answers a range vector; use an instant query (no [5m] at the end)"
        )
    values = []
    for sample in samples:
        try:
            number = float(sample)
        except (TypeError, ValueError):
            continue
        if math.isfinite(number):
            values.append(number)
    return Answer(tuple(values), len(samples))
