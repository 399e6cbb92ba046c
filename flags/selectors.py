"""Reads: query shaping for snapshots and validation, with a fixed number of queries."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, Exists, Max, Min, OuterRef, Prefetch, Q, QuerySet, Subquery

from flags.models import (
    ApiToken,
    Environment,
    Flag,
    FlagState,
    Guardrail,
    GuardrailCheck,
    KillTrigger,
    RolloutPlan,
    Segment,
    Tag,
    WebhookDelivery,
    WebhookSubscription,
)

SNAPSHOT_SCHEMA_VERSION = 1


def live_states(environment: Environment) -> QuerySet[FlagState]:
    """States of every non-archived flag in ``environment``, with their flags."""
    return FlagState.objects.filter(
        environment=environment, flag__archived_at__isnull=True
    ).select_related("flag")


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


def environment_flag_documents(
    environment: Environment, keys: Iterable[str] | None = None
) -> dict[str, dict[str, Any]]:
    """Live flags of the environment (all, or those of ``keys``) as snapshot documents (one query).

    Sorted by key in Python, not by the database's collation, so every database and
    every partial rebuild produce the same order (and so the same bytes).
    """
    states = live_states(environment)
    if keys is not None:
        # Ids first (the unique key index), then the states by (flag, environment): two
        # index lookups, whatever the planner's statistics say about the tables.
        ids = list(Flag.objects.filter(key__in=list(keys)).values_list("id", flat=True))
        states = states.filter(flag_id__in=ids)
    documents = {state.flag.key: flag_document(state.flag, state) for state in states}
    return dict(sorted(documents.items()))


def environment_segment_documents(
    environment: Environment, keys: Iterable[str] | None = None
) -> dict[str, dict[str, Any]]:
    segments = environment.segments.all()
    if keys is not None:
        segments = segments.filter(key__in=list(keys))
    return dict(sorted((s.key, segment_document(s)) for s in segments))


def snapshot_patched(
    environment: Environment,
    base: dict[str, Any],
    *,
    flags: Iterable[str] = (),
    segments: Iterable[str] = (),
) -> dict[str, Any]:
    """``base`` (the previous version's document) with the named flags and segments re-read.

    Equal to ``snapshot_build(environment)`` when only those items changed since
    ``base``: a flag or segment that no longer exists (or was archived) drops out.
    """
    flags, segments = list(flags), list(segments)
    fresh_flags = environment_flag_documents(environment, flags) if flags else {}
    fresh_segments = environment_segment_documents(environment, segments) if segments else {}
    flag_documents = {k: v for k, v in base["flags"].items() if k not in flags}
    segment_documents = {k: v for k, v in base["segments"].items() if k not in segments}
    return {
        "schema_version": SNAPSHOT_SCHEMA_VERSION,
        "environment": environment.key,
        "version": environment.version,
        "lineage": environment.lineage,
        "revision": environment.revision,
        "flags": dict(sorted({**flag_documents, **fresh_flags}.items())),
        "segments": dict(sorted({**segment_documents, **fresh_segments}.items())),
    }


def snapshot_build(environment: Environment) -> dict[str, Any]:
    """The environment's snapshot document (schema: sdk_clients/testdata/snapshot.schema.json).

    Two queries whatever the number of flags. The document is a pure function
    of the environment's (lineage, version, revision), so any process rebuilding it
    gets the same bytes.
    """
    return {
        "schema_version": SNAPSHOT_SCHEMA_VERSION,
        "environment": environment.key,
        "version": environment.version,
        "lineage": environment.lineage,
        "revision": environment.revision,
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
        # Weights are relative (any total): a share is weight / total, shown to 0.01%.
        shares = {s["variant"]: s["weight"] for s in serve["split"]}
        total = sum(shares.values()) or 1
        if flag.type == Flag.Type.BOOLEAN:
            label = f"{round(shares.get('on', 0) * 100 / total, 2):g}%"
        else:
            label = "split " + "/".join(f"{round(w * 100 / total, 2):g}" for w in shares.values())
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


# --- rollout plans ---------------------------------------------------------------------------


def rollout_plan_current(flag: Flag, environment: Environment) -> RolloutPlan | None:
    """The flag's active rollout plan in the environment, else its most recent one."""
    plans = RolloutPlan.objects.filter(flag=flag, environment=environment).select_related(
        "flag", "environment", "replaced_by"
    )
    return plans.filter(status__in=RolloutPlan.ACTIVE).first() or plans.order_by("-id").first()


def rollout_plans_for_flag(flag: Flag) -> list[RolloutPlan]:
    """Per environment, the flag's active plan or else its latest one, with their steps (3 queries)."""
    plans = (
        RolloutPlan.objects.filter(flag=flag)
        .select_related("flag", "environment", "replaced_by")
        .prefetch_related("steps")
        .order_by("environment__sort_order", "environment_id", "-id")
    )
    chosen: dict[int, RolloutPlan] = {}
    for plan in plans:
        kept = chosen.get(plan.environment_id)
        if kept is None or (plan.active and not kept.active):
            chosen[plan.environment_id] = plan
    return list(chosen.values())


def api_token_fingerprint() -> tuple[Any, ...]:
    """Changes whenever a token is issued or revoked: the edge reloads its keys when it does."""
    row = ApiToken.objects.aggregate(
        n=Count("id"), created=Max("created_at"), revoked=Max("revoked_at")
    )
    return (row["n"], row["created"], row["revoked"])


# --- arch-callers: reads for the API, the admin and the management commands -------------------


def active_kills(environment_key: str | None = None) -> QuerySet[FlagState]:
    """Live flags' states that are killed (in one environment, or all), newest kill first."""
    states = (
        FlagState.objects.filter(killed_at__isnull=False, flag__archived_at__isnull=True)
        .select_related("flag", "environment")
        .order_by("-killed_at")
    )
    if environment_key:
        states = states.filter(environment__key=environment_key)
    return states


def trigger_list() -> QuerySet[KillTrigger]:
    """Every trigger URL (revoked ones too) with its flag and environment, newest first."""
    return KillTrigger.objects.select_related("flag", "environment").order_by("-created_at")


def trigger_get(trigger_id: int) -> KillTrigger | None:
    return trigger_list().filter(pk=trigger_id).first()


def live_trigger_by_digest(digest: str) -> KillTrigger | None:
    """The unrevoked trigger whose secret has this digest (``flags.tokens.token_digest``)."""
    return trigger_list().filter(digest=digest, revoked_at__isnull=True).first()


def environments_in_order() -> QuerySet[Environment]:
    """Every environment, in the order pages show them (sort order, then creation)."""
    return Environment.objects.order_by("sort_order", "id")


def environment_by_id(environment_id: int) -> Environment:
    """The environment as stored now (e.g. its current version after a change)."""
    return Environment.objects.get(pk=environment_id)


def with_flag_counts(environments: QuerySet[Environment]) -> QuerySet[Environment]:
    """``environments`` annotated with ``n_flags`` (live flags) and ``n_killed`` (killed states)."""
    return environments.annotate(
        n_flags=Count("flag_states", filter=Q(flag_states__flag__archived_at__isnull=True)),
        n_killed=Count("flag_states", filter=Q(flag_states__killed_at__isnull=False)),
    )


def flag_by_id(flag_id: int | str) -> Flag | None:
    return Flag.objects.filter(pk=flag_id).first()


def stored_flag(flag_id: int) -> Flag:
    """The flag as stored now (a form may have changed the instance in hand)."""
    return Flag.objects.get(pk=flag_id)


def with_tags_and_states(flags: QuerySet[Flag]) -> QuerySet[Flag]:
    """``flags`` with their tags and every state (with its environment): three queries in all."""
    return flags.prefetch_related(
        "tags", Prefetch("states", queryset=FlagState.objects.select_related("environment"))
    )


def tag_names() -> list[str]:
    return [tag.name for tag in Tag.objects.all()]


def flag_ids_killed_somewhere() -> QuerySet[FlagState, int]:
    """``flag_id`` of every killed state (archived flags too), for ``id__in`` filters."""
    return FlagState.objects.filter(killed_at__isnull=False).values_list("flag_id", flat=True)


def states_serving(environment_key: str, serving: str) -> QuerySet[FlagState]:
    """States in the environment that are ``killed``, ``off``, ``on`` or in a ``rollout``
    (enabled, not killed, and a split in the default serve or in any rule)."""
    states = FlagState.objects.filter(environment__key=environment_key)
    if serving == "killed":
        return states.filter(killed_at__isnull=False)
    if serving == "off":
        return states.filter(killed_at__isnull=True, enabled=False)
    if serving == "on":
        return states.filter(killed_at__isnull=True, enabled=True)
    if serving == "rollout":
        ids = [
            s.pk
            for s in states.filter(killed_at__isnull=True, enabled=True)
            if "split" in (s.default_serve or {})
            or any("split" in (r.get("serve") or {}) for r in s.rules or ())
        ]
        return FlagState.objects.filter(pk__in=ids)
    return states


def flag_state_version(flag: Flag, environment: Environment) -> int:
    """The version of the flag's state in the environment as stored now."""
    return int(
        FlagState.objects.filter(flag=flag, environment=environment)
        .values_list("version", flat=True)
        .get()
    )


def flag_graph(environment: Environment, *, exclude_flag_id: int | None = None) -> dict[str, Any]:
    """Every other live flag's variants and prerequisites in the environment (one query)."""
    return {
        state.flag.key: {"variants": state.flag.variants, "prerequisites": state.prerequisites}
        for state in live_states(environment)
        if state.flag_id != exclude_flag_id
    }


def segment_keys(environment: Environment) -> set[str]:
    """The keys of the environment's segments."""
    return set(Segment.objects.filter(environment=environment).values_list("key", flat=True))


def rollout_next_due_between(start: datetime, end: datetime) -> datetime | None:
    """When the earliest advancing rollout step falls due strictly between ``start`` and ``end``."""
    due: datetime | None = RolloutPlan.objects.filter(
        status__in=RolloutPlan.ADVANCING, next_due_at__gt=start, next_due_at__lt=end
    ).aggregate(due=Min("next_due_at"))["due"]
    return due


def stored_segment(segment_id: int) -> Segment:
    """The segment as stored now (a form may have changed the instance in hand)."""
    return Segment.objects.select_related("environment").get(pk=segment_id)


def api_token_by_id(token_id: int) -> ApiToken:
    return ApiToken.objects.select_related("environment").get(pk=token_id)


def rollout_plan_active(flag: Flag, environment_key: str) -> RolloutPlan | None:
    """The flag's active rollout plan in the environment named ``environment_key``, if any."""
    return RolloutPlan.objects.filter(
        flag=flag, environment__key=environment_key, status__in=RolloutPlan.ACTIVE
    ).first()


def rollout_plan_of_flag(flag: Flag, plan_id: int | str) -> RolloutPlan | None:
    return (
        RolloutPlan.objects.select_related("flag", "environment")
        .filter(pk=plan_id, flag=flag)
        .first()
    )


def environment_by_key(key: str) -> Environment | None:
    return Environment.objects.filter(key=key).first()


def environment_keys() -> list[str]:
    return [environment.key for environment in environments_in_order()]


def flag_by_key(key: str) -> Flag | None:
    return Flag.objects.filter(key=key).first()


def segment_exists(environment: Environment, key: str) -> bool:
    return Segment.objects.filter(environment=environment, key=key).exists()


def live_state_count() -> int:
    """How many states live flags have (one per flag and environment)."""
    return FlagState.objects.filter(flag__archived_at__isnull=True).count()


def live_token_exists(digest: str, kind: str, environment: Environment | None) -> bool:
    """Whether an unrevoked token of ``kind`` bound to ``environment`` has this digest."""
    return ApiToken.objects.filter(
        digest=digest, kind=kind, environment=environment, revoked_at__isnull=True
    ).exists()


def flag_and_environment(flag_key: str, environment_key: str) -> tuple[Flag, Environment] | None:
    """A flag and an environment by their keys, in one query (the kill path's lookup)."""
    state = (
        FlagState.objects.select_related("flag", "environment")
        .filter(flag__key=flag_key, environment__key=environment_key)
        .first()
    )
    return (state.flag, state.environment) if state is not None else None


# -- guardrails (flags.guardrails) -------------------------------------------------------------


def guardrails_blocking(flag_id: int, environment_id: int, now: datetime) -> list[str]:
    """Why a rollout step of this flag must wait: one line per enabled guardrail not known healthy.

    Healthy means its latest check answered a number on the right side of the threshold
    within GUARDRAIL_FRESH_SECONDS. A failing query, no data, a breach (even one not yet
    held for its duration) or no recent check all block: they never count as healthy.
    """
    fresh_after = now - timedelta(seconds=settings.GUARDRAIL_FRESH_SECONDS)
    reasons = []
    for guardrail in Guardrail.objects.filter(
        flag_id=flag_id, environment_id=environment_id, enabled=True
    ).order_by("name"):
        if guardrail.last_checked_at is None or guardrail.last_checked_at < fresh_after:
            reasons.append(
                f"guardrail {guardrail.name}: no check in the last "
                f"{settings.GUARDRAIL_FRESH_SECONDS:g}s"
            )
        elif guardrail.health != Guardrail.Health.OK:
            detail = f" ({guardrail.last_message})" if guardrail.last_message else ""
            reasons.append(f"guardrail {guardrail.name}: {guardrail.health}{detail}")
    return reasons


def guardrails_to_check(now: datetime) -> list[int]:
    """Enabled guardrails whose flag has an advancing plan there, or changed within the watch."""
    advancing = RolloutPlan.objects.filter(
        flag_id=OuterRef("flag_id"),
        environment_id=OuterRef("environment_id"),
        status__in=RolloutPlan.ADVANCING,
    )
    changed_at = FlagState.objects.filter(
        flag_id=OuterRef("flag_id"), environment_id=OuterRef("environment_id")
    ).values("updated_at")[:1]
    rows = (
        Guardrail.objects.filter(enabled=True, flag__archived_at__isnull=True)
        .annotate(advancing=Exists(advancing), changed_at=Subquery(changed_at))
        .values_list("id", "advancing", "changed_at", "watch_seconds")
        .order_by("id")
    )
    return [
        guardrail_id
        for guardrail_id, is_advancing, changed, watch in rows
        if is_advancing or (changed is not None and changed >= now - timedelta(seconds=watch))
    ]


def guardrail_list(flag: Flag, environment: Environment) -> list[Guardrail]:
    """A flag's guardrails in one environment, by name."""
    return list(
        Guardrail.objects.filter(flag=flag, environment=environment)
        .select_related("flag", "environment")
        .order_by("name")
    )


def guardrail_get(flag: Flag, environment: Environment, name: str) -> Guardrail | None:
    return (
        Guardrail.objects.filter(flag=flag, environment=environment, name=name)
        .select_related("flag", "environment")
        .first()
    )


def guardrail_checks(guardrail: Guardrail, limit: int = 20) -> list[GuardrailCheck]:
    """A guardrail's latest checks, newest first."""
    return list(guardrail.checks.order_by("-checked_at", "-id")[:limit])


def webhook_list(environment: Environment) -> list[WebhookSubscription]:
    return list(
        WebhookSubscription.objects.filter(environment=environment)
        .select_related("environment")
        .order_by("name", "id")
    )


def webhook_get(environment: Environment, webhook_id: int) -> WebhookSubscription | None:
    return (
        WebhookSubscription.objects.filter(environment=environment, pk=webhook_id)
        .select_related("environment")
        .first()
    )


def webhook_deliveries(
    subscription: WebhookSubscription, limit: int = 100
) -> list[WebhookDelivery]:
    """A subscription's delivery log, newest first."""
    return list(subscription.deliveries.order_by("-id")[:limit])


def guardrail_checks_of_plan(plan_id: int, limit: int = 20) -> list[GuardrailCheck]:
    """The plan's latest guardrail checks, newest first (its timeline shows them)."""
    return list(
        GuardrailCheck.objects.filter(plan_id=plan_id)
        .select_related("guardrail")
        .order_by("-checked_at", "-id")[:limit]
    )
