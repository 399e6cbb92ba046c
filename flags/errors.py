"""Errors the services raise; the API and admin turn them into clear 4xx answers."""

from __future__ import annotations

from flagsvc.refusals import Refusal


class ServiceError(Refusal):
    """A refused change. Nothing was written."""


class ValidationFailed(ServiceError):
    code = "validation_failed"
    status = 400


class VersionConflict(ServiceError):
    code = "version_conflict"
    status = 409


class FlagArchived(ServiceError):
    code = "flag_archived"
    status = 409


class AlreadyExists(ServiceError):
    code = "already_exists"
    status = 409


class NotFound(ServiceError):
    code = "not_found"
    status = 404


class RolloutPlanConflict(ServiceError):
    """The rollout plan is not in a state that allows this (e.g. resuming a completed plan)."""

    code = "rollout_plan_conflict"
    status = 409
