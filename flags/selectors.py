"""Reads: query shaping for snapshots and validation, with a fixed number of queries."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from flags.models import Environment, Flag, FlagState, Segment

SNAPSHOT_SCHEMA_VERSION = 1


def live_states(environment: Environment) -> QuerySet[FlagState]:
    """States of every non-archived flag in ``environment``, with their flags."""
    return (
        FlagState.objects.filter(environment=environment, flag__archived_at__isnull=True)
        .select_related("flag")
        .order_by("flag__key")
    )


def flag_document(flag: Flag, state: FlagState) -> dict[str, Any]:
    """One flag as the snapshot carries it: everything needed to evaluate it locally."""
    return {
        "key": flag.key,
        "type": flag.type,
        "variants": flag.variants,
        "off_variant": flag.off_variant,
        "client_visible": flag.client_visible,
        "version": state.version,
        "enabled": state.enabled,
        "kill": state.kill_overlay(),
        "targets": state.targets,
        "rules": state.rules,
        "default_serve": state.default_serve,
        "prerequisites": state.prerequisites,
    }


def segment_document(segment: Segment) -> dict[str, Any]:
    return {"key": segment.key, **segment.definition()}


def environment_flag_documents(environment: Environment) -> dict[str, dict[str, Any]]:
    """Every live flag of the environment as snapshot documents (one query)."""
    return {state.flag.key: flag_document(state.flag, state) for state in live_states(environment)}


def environment_segment_documents(environment: Environment) -> dict[str, dict[str, Any]]:
    return {s.key: segment_document(s) for s in environment.segments.order_by("key")}


def snapshot_build(environment: Environment) -> dict[str, Any]:
    """The environment's snapshot document (schema: sdk_clients/testdata/snapshot.schema.json).

    Two queries whatever the number of flags. The document is a pure function
    of the environment's version, so any process rebuilding it gets the same bytes.
    """
    return {
        "schema_version": SNAPSHOT_SCHEMA_VERSION,
        "environment": environment.key,
        "version": environment.version,
        "flags": environment_flag_documents(environment),
        "segments": environment_segment_documents(environment),
    }


def state_summary(flag: Flag, state: FlagState) -> str:
    """A short label for what a state serves: KILLED, off, on, 25%, split, or a variant name."""
    if state.killed:
        return "KILLED"
    if not state.enabled:
        return "off"
    serve = state.default_serve or {}
    if "split" in serve:
        shares = {s["variant"]: s["weight"] for s in serve["split"]}
        if flag.type == Flag.Type.BOOLEAN:
            label = f"{shares.get('on', 0) / 100:g}%"
        else:
            label = "split " + "/".join(f"{w / 100:g}" for w in shares.values())
    else:
        label = str(serve.get("variant", "?"))
    extras = []
    if state.targets:
        extras.append(f"{sum(len(t.get('values', [])) for t in state.targets)} targeted")
    if state.rules:
        extras.append(f"{len(state.rules)} rule{'s' if len(state.rules) != 1 else ''}")
    if state.prerequisites:
        extras.append("prereq")
    return label + (f" + {', '.join(extras)}" if extras else "")
