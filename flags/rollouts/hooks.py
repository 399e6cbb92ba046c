"""How rollout plans follow other writes: a kill or an edit of their split pauses them, an archive aborts them.

Each function is a receiver of one of the services' hooks (``flags.services.core``),
connected when ``flags.apps`` imports this module. They run inside the writing
transaction, which already holds the environment lock, so plan rows are taken with
SKIP LOCKED (see ``flags.rollouts.scheduler``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.dispatch import receiver
from django.utils import timezone

from audit.recorder import Actor
from flags.models import Environment, Flag, FlagState, RolloutPlan
from flags.rollouts.plans import MISSING, driven_serve, plan_abort_for_archive, plan_pause
from flags.services import core


def _advancing_plans(flag_ids: Sequence[int], environment_ids: Sequence[int] | None = None) -> list:
    """Plans that would still advance, taken with SKIP LOCKED: the caller holds an environment
    lock and must not wait for a plan row (a step holding one re-checks for itself)."""
    plans = (
        RolloutPlan.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("flag", "environment")
        .filter(flag_id__in=flag_ids, status__in=RolloutPlan.ADVANCING)
        .order_by("id")
    )
    if environment_ids is not None:
        plans = plans.filter(environment_id__in=environment_ids)
    return list(plans)


@receiver(core.states_killed, dispatch_uid="rollouts.pause_for_kill")
def rollout_plans_pause_for_kill(
    *, actor: Actor, states: Sequence[FlagState], environment: Environment, **_: Any
) -> None:
    """A kill pauses the killed flags' plans in that environment (restore leaves them paused)."""
    by_flag = {state.flag_id: state for state in states}
    if not by_flag:
        return
    moment = timezone.now()
    for plan in _advancing_plans(list(by_flag), [environment.pk]):
        state = by_flag[plan.flag_id]
        plan_pause(
            plan,
            actor=actor,
            reason=f"paused: flag killed (incident {state.kill_incident}): {state.kill_reason}",
            now=moment,
        )


@receiver(core.state_edited, dispatch_uid="rollouts.pause_for_edit")
def rollout_plans_pause_for_edit(
    *,
    actor: Actor,
    state: FlagState,
    environment: Environment,
    previous: Mapping[str, Any],
    reason: str,
    **_: Any,
) -> None:
    """A person changing the split a plan drives (or removing its rule) pauses the plan."""
    moment = timezone.now()
    for plan in _advancing_plans([state.flag_id], [environment.pk]):
        after = driven_serve(state.definition(), plan.rule_id)
        if after is MISSING:
            what = f"rule {plan.rule_id!r} was removed or renamed"
        elif after != driven_serve(previous, plan.rule_id):
            what = f"the {plan.target_label} was changed"
        else:
            continue
        plan_pause(
            plan,
            actor=actor,
            reason=f"paused: {what} by {actor.name}; resume the plan to let it carry on from there"
            + (f" (edit reason: {reason})" if reason else ""),
            now=moment,
        )


@receiver(core.flag_archived, dispatch_uid="rollouts.abort_for_archive")
def rollout_plans_abort_for_archive(*, actor: Actor, flag: Flag, **_: Any) -> None:
    """Archiving a flag aborts its plans in every environment."""
    moment = timezone.now()
    plans = (
        RolloutPlan.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("flag", "environment")
        .filter(flag_id=flag.pk, status__in=RolloutPlan.ACTIVE)
        .order_by("id")
    )
    for plan in plans:
        plan_abort_for_archive(plan, actor=actor, now=moment)
