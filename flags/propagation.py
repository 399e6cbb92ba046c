"""Which live edge processes hold which snapshot: the confirmation behind every kill answer.

Each edge process reports, after it installs a snapshot and once a second as a
heartbeat, the identity it serves per environment. A kill, restore or trigger
then waits (at most about a second) until every live process reports the new
version, and answers ``confirmed by 4 of 4 edge processes in 38 ms`` — naming any
process that did not. With ``REDIS_URL`` the reports live in one Redis hash;
without it, in the database (``EdgeProcess`` rows).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)

REGISTRY_KEY = "flagsvc:edges"
HEARTBEAT_SECONDS = 1.0
LIVE_SECONDS = 3.5  # a process silent for longer is not counted (it died or hangs)
FORGET_SECONDS = 300.0  # reports older than this are removed
WAIT_SECONDS = 1.0
POLL_SECONDS = 0.005


def edge_name() -> str:
    """This process as a person reads it: host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class EdgeReport:
    """What one edge process said last: when, and per environment (lineage, version, revision, installed at)."""

    name: str
    at: float
    environments: dict[str, tuple[str, int, str, float]] = field(default_factory=dict)

    def encode(self) -> str:
        return json.dumps(
            {"at": self.at, "environments": {k: list(v) for k, v in self.environments.items()}}
        )

    @classmethod
    def decode(cls, name: str, raw: bytes | str) -> EdgeReport | None:
        try:
            data = json.loads(raw)
            environments = {
                key: (str(v[0]), int(v[1]), str(v[2]), float(v[3]))
                for key, v in data.get("environments", {}).items()
            }
            return cls(name, float(data["at"]), environments)
        except (ValueError, KeyError, TypeError, IndexError):
            return None


@dataclass
class Confirmation:
    """How far one environment version has reached the live edge processes."""

    environment: str
    version: int
    confirmed: list[str]
    unconfirmed: dict[str, int | None]  # name -> the version it serves (None: none)
    elapsed_ms: float | None  # until the last confirmation, from the start of the change
    error: str = ""

    @property
    def live(self) -> int:
        return len(self.confirmed) + len(self.unconfirmed)

    @property
    def complete(self) -> bool:
        return not self.error and not self.unconfirmed and bool(self.confirmed)

    def text(self) -> str:
        if self.error:
            return f"not confirmed: {self.error}"
        if not self.live:
            return "not confirmed: no live edge process is reporting (is the web server running?)"
        took = f" in {self.elapsed_ms:.0f} ms" if self.elapsed_ms is not None else ""
        line = f"confirmed by {len(self.confirmed)} of {self.live} edge processes{took}"
        if self.unconfirmed:
            missing = ", ".join(
                f"{name} (serving v{version})" if version else f"{name} (no snapshot)"
                for name, version in sorted(self.unconfirmed.items())
            )
            line += f"; NOT confirmed by {missing}"
        return line

    def as_dict(self) -> dict[str, Any]:
        return {
            "confirmed": len(self.confirmed),
            "live_processes": self.live,
            "complete": self.complete,
            "elapsed_ms": round(self.elapsed_ms, 1) if self.elapsed_ms is not None else None,
            "unconfirmed": sorted(self.unconfirmed),
            "message": self.text(),
        }


# --- the registry ---------------------------------------------------------------------------


def _redis() -> Any:
    from flags import publish

    target = publish.store()
    return getattr(target, "client", None)


def reports() -> list[EdgeReport]:
    """Every report not yet forgotten (live or not)."""
    client = _redis() if settings.REDIS_URL else None
    if client is not None:
        raw = client.hgetall(REGISTRY_KEY)
        found = [EdgeReport.decode(name.decode(), value) for name, value in raw.items()]
    else:
        from flags.models import EdgeProcess

        found = [
            EdgeReport.decode(row.name, json.dumps(row.report)) for row in EdgeProcess.objects.all()
        ]
    return [report for report in found if report is not None]


def report_store(report: EdgeReport) -> None:
    """Record one process's report (called from the edge, off its event loop)."""
    client = _redis() if settings.REDIS_URL else None
    if client is not None:
        client.hset(REGISTRY_KEY, report.name, report.encode())
        return
    from flags.models import EdgeProcess

    EdgeProcess.objects.update_or_create(
        name=report.name, defaults={"report": json.loads(report.encode())}
    )


def report_remove(name: str) -> None:
    client = _redis() if settings.REDIS_URL else None
    if client is not None:
        client.hdel(REGISTRY_KEY, name)
        return
    from flags.models import EdgeProcess

    EdgeProcess.objects.filter(name=name).delete()


def reports_prune(found: list[EdgeReport], now: float) -> None:
    stale = [report.name for report in found if now - report.at > FORGET_SECONDS]
    for name in stale:
        report_remove(name)


# --- confirmation ---------------------------------------------------------------------------


def _status(
    environment: str, identity: tuple[str, int, str], started_at: float | None, now: float
) -> Confirmation:
    lineage, version, _ = identity
    confirmed: list[str] = []
    unconfirmed: dict[str, int | None] = {}
    last = None
    found = reports()
    for report in found:
        if now - report.at > LIVE_SECONDS:
            continue
        held = report.environments.get(environment)
        if held is not None and held[0] == lineage and held[1] >= version:
            confirmed.append(report.name)
            last = max(last or 0.0, held[3])
        else:
            unconfirmed[report.name] = held[1] if held else None
    elapsed = None
    if confirmed and started_at is not None and last is not None:
        elapsed = max(0.0, (last - started_at) * 1000)
    if not unconfirmed:
        reports_prune(found, now)
    return Confirmation(environment, version, sorted(confirmed), unconfirmed, elapsed)


def propagation_wait(
    environment: str,
    identity: tuple[str, int, str],
    *,
    started_at: float | None = None,
    timeout: float = WAIT_SECONDS,
) -> Confirmation:
    """Wait until every live edge process serves ``identity`` (or newer), at most ``timeout``.

    ``started_at`` (``time.time()`` when the change began) is what the elapsed time
    counts from. Never raises: an unreachable registry is said in the answer.
    """
    deadline = time.monotonic() + timeout
    try:
        while True:
            status = _status(environment, identity, started_at, time.time())
            # Nothing to wait for when no process reports at all (no web tier running).
            if not status.unconfirmed or time.monotonic() >= deadline:
                return status
            time.sleep(POLL_SECONDS)
    except Exception as error:
        logger.warning("could not confirm %s v%s", environment, identity[1], exc_info=True)
        return Confirmation(
            environment,
            identity[1],
            [],
            {},
            None,
            error=f"the edge registry is unreachable ({type(error).__name__})",
        )


def propagation_status(environment: str, identity: tuple[str, int, str]) -> Confirmation:
    """Where ``identity`` stands now (no waiting): for active kills and dashboards."""
    return propagation_wait(environment, identity, timeout=0)


def change_confirm(
    environment_key: str, lineage: str, version: int, *, started_at: float | None = None
) -> Confirmation:
    """The confirmation a kill, restore or trigger answers with (waits at most a second)."""
    return propagation_wait(environment_key, (lineage, version, ""), started_at=started_at)


def environment_status(environment_key: str, lineage: str, version: int) -> Confirmation:
    """Where one environment version stands now, without waiting (active kills)."""
    return propagation_status(environment_key, (lineage, version, ""))
