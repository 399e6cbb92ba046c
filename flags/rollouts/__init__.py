"""Rollout plans: scheduled ramp-ups of a flag's split, carried out by Celery through the audited state write.

``schedule`` is the pure part (reading steps, when each falls due); ``plans`` what
every plan action shares; ``actions`` what people do (create, replace, pause,
resume, abort, skip); ``step_back`` what a guardrail does; ``scheduler`` the exactly-once step the Celery task runs;
``hooks`` how plans follow kills, edits and archives; ``documents`` the plan as the API
and the admin show it. Callers use the names below.
"""

from flags.rollouts.actions import (
    rollout_plan_abort,
    rollout_plan_create,
    rollout_plan_pause,
    rollout_plan_replace,
    rollout_plan_resume,
    rollout_plan_skip_to_step,
)
from flags.rollouts.documents import rollout_plan_document
from flags.rollouts.hooks import (
    rollout_plans_abort_for_archive,
    rollout_plans_pause_for_edit,
    rollout_plans_pause_for_kill,
)
from flags.rollouts.plans import driven_serve, rollout_plan_record, split_serve
from flags.rollouts.scheduler import rollout_plan_advance, rollout_plans_advance_due
from flags.rollouts.step_back import rollout_plan_step_back

__all__ = [
    "driven_serve",
    "rollout_plan_abort",
    "rollout_plan_advance",
    "rollout_plan_create",
    "rollout_plan_document",
    "rollout_plan_pause",
    "rollout_plan_record",
    "rollout_plan_replace",
    "rollout_plan_resume",
    "rollout_plan_skip_to_step",
    "rollout_plan_step_back",
    "rollout_plans_abort_for_archive",
    "rollout_plans_advance_due",
    "rollout_plans_pause_for_edit",
    "rollout_plans_pause_for_kill",
    "split_serve",
]
