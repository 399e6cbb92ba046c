"""Reads behind the management API: list filters and prefetching, a fixed number of queries."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q, QuerySet

from flags import selectors
from flags.models import ApiToken, Environment, Flag, FlagState, Segment

STATE_FILTERS = ("on", "off", "killed", "rollout")


@dataclass(frozen=True)
class FlagFilters:
    """What ``GET /api/v1/flags/`` narrows by; None means "any"."""

    tag: str | None = None
    owner: str | None = None
    archived: bool | None = False
    search: str | None = None
    state_environment: Environment | None = None
    state: str | None = None


def flags_with_states() -> QuerySet[Flag]:
    """Flags with their tags and every state (with its environment): three queries in all."""
    return selectors.with_tags_and_states(Flag.objects.all())


def flag_list(filters: FlagFilters) -> QuerySet[Flag]:
    flags = flags_with_states()
    if filters.archived is not None:
        flags = flags.filter(archived_at__isnull=not filters.archived)
    if filters.tag:
        flags = flags.filter(tags__name=filters.tag)
    if filters.owner:
        flags = flags.filter(owner__iexact=filters.owner)
    if filters.search:
        flags = flags.filter(
            Q(key__icontains=filters.search)
            | Q(name__icontains=filters.search)
            | Q(description__icontains=filters.search)
        )
    if filters.state_environment is not None and filters.state:
        flags = flags.filter(
            id__in=FlagState.objects.filter(
                _state_condition(filters.state), environment=filters.state_environment
            ).values("flag_id")
        )
    return flags.order_by("key")


def _state_condition(state: str) -> Q:
    """on: enabled and not killed; off: disabled and not killed; killed; rollout: enabled,
    not killed, and its default serve is a percentage split."""
    live = Q(killed_at__isnull=True)
    if state == "killed":
        return Q(killed_at__isnull=False)
    if state == "on":
        return live & Q(enabled=True)
    if state == "off":
        return live & Q(enabled=False)
    if state == "rollout":
        return live & Q(enabled=True, default_serve__has_key="split")
    raise ValueError(f"unknown state filter {state!r}")


def flag_get(key: str) -> Flag | None:
    """A flag with its tags and states, for answers that show them all."""
    return flags_with_states().filter(key=key).first()


def flag_by_key(key: str) -> Flag | None:
    return selectors.flag_by_key(key)


def flag_state_get(flag: Flag, environment: Environment) -> FlagState | None:
    state = (
        FlagState.objects.select_related("flag", "environment")
        .filter(flag=flag, environment=environment)
        .first()
    )
    return state


def environment_get(key: str) -> Environment | None:
    return selectors.environment_by_key(key)


def environment_list() -> QuerySet[Environment]:
    return selectors.environments_in_order()


def segment_list(environment: Environment) -> QuerySet[Segment]:
    return (
        Segment.objects.filter(environment=environment)
        .select_related("environment")
        .order_by("key")
    )


def segment_get(environment: Environment, key: str) -> Segment | None:
    return segment_list(environment).filter(key=key).first()


def token_list(*, kind: str | None = None, revoked: bool | None = None) -> QuerySet[ApiToken]:
    tokens = ApiToken.objects.select_related("environment").order_by("-created_at", "-id")
    if kind:
        tokens = tokens.filter(kind=kind)
    if revoked is not None:
        tokens = tokens.filter(revoked_at__isnull=not revoked)
    return tokens


def token_get(token_id: int) -> ApiToken | None:
    return ApiToken.objects.select_related("environment").filter(pk=token_id).first()
