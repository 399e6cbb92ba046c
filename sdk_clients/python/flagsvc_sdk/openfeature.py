"""An OpenFeature provider (``openfeature-sdk``) backed by ``FlagsvcClient``: local evaluation,
flagsvc's reasons and error codes in OpenFeature's terms, and a configuration-changed event
naming the changed flags on every new snapshot. ``pip install 'flagsvc-sdk[openfeature]'``.

    from openfeature import api
    from flagsvc_sdk import FlagsvcClient
    from flagsvc_sdk.openfeature import FlagsvcProvider

    api.set_provider(FlagsvcProvider(FlagsvcClient(URL, SDK_KEY)))
    flags = api.get_client()
    flags.get_boolean_value("new-checkout", False, EvaluationContext("user-42", {"plan": "pro"}))
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEventDetails
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagResolutionDetails, FlagValueType
from openfeature.provider import AbstractProvider, Metadata

from flagsvc_sdk.client import FlagsvcClient
from flagsvc_sdk.engine import Reason, Result

# flagsvc's one reason outside OpenFeature's list, answered as the OFREP edge does.
REASONS = {Reason.PREREQUISITE_FAILED: Reason.TARGETING_MATCH}


def _context(evaluation_context: EvaluationContext | None) -> dict[str, Any]:
    if evaluation_context is None:
        return {}
    context = dict(evaluation_context.attributes)
    if evaluation_context.targeting_key is not None:
        context["targetingKey"] = evaluation_context.targeting_key
    return context


def _error_code(code: str | None) -> ErrorCode | None:
    if code is None:
        return None
    try:
        return ErrorCode(code)
    except ValueError:
        return ErrorCode.GENERAL


class FlagsvcProvider(AbstractProvider):
    """OpenFeature's provider interface over a ``FlagsvcClient`` (which it closes on shutdown).

    ``ready_timeout``: how long ``initialize`` waits for the first snapshot; without one the
    evaluations answer the default with PROVIDER_NOT_READY until it arrives.
    """

    def __init__(self, client: FlagsvcClient, *, ready_timeout: float | None = None) -> None:
        super().__init__()
        self.client = client
        self.ready_timeout = ready_timeout
        self._remove_listener: Callable[[], None] | None = None
        self._initialized = False

    def get_metadata(self) -> Metadata:
        return Metadata(name="flagsvc")

    def initialize(self, evaluation_context: EvaluationContext) -> None:
        self._remove_listener = self.client.on_change(self._changed)
        self.client.wait_for_ready(self.ready_timeout)
        self._initialized = True  # what arrived while initializing is announced by READY

    def shutdown(self) -> None:
        if self._remove_listener is not None:
            self._remove_listener()
            self._remove_listener = None
        self.client.close()

    def _changed(self, keys: frozenset[str]) -> None:
        if self._initialized and hasattr(self, "_on_emit"):  # attached to the API
            self.emit_provider_configuration_changed(
                ProviderEventDetails(
                    flags_changed=sorted(keys), metadata={"version": self.client.version or 0}
                )
            )

    def _resolve(
        self,
        key: str,
        default: Any,
        evaluation_context: EvaluationContext | None,
        accepts: Callable[[Any], Any | None],
    ) -> FlagResolutionDetails[Any]:
        result: Result = self.client.evaluate(key, _context(evaluation_context))
        if result.error_code is not None:
            return FlagResolutionDetails(
                value=default,
                reason=Reason.ERROR,
                error_code=_error_code(result.error_code),
                error_message=result.error_message,
            )
        value = accepts(result.value)
        if value is None:
            return FlagResolutionDetails(
                value=default,
                reason=Reason.ERROR,
                error_code=ErrorCode.TYPE_MISMATCH,
                error_message=f"flag {key!r} served {type(result.value).__name__} {result.value!r}",
            )
        metadata: dict[str, bool | int | float | str] = {}
        reason = REASONS.get(result.reason, result.reason)
        if reason != result.reason:
            metadata["flagsvcReason"] = result.reason
        snapshot = self.client.snapshot
        document = snapshot.document["flags"].get(key) if snapshot is not None else None
        if document is not None:
            if isinstance(document.get("version"), int):
                metadata["flagVersion"] = document["version"]
            if document.get("kill"):
                metadata["killed"] = True
        return FlagResolutionDetails(
            value=value, reason=reason, variant=result.variant, flag_metadata=metadata
        )

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        return self._resolve(
            flag_key,
            default_value,
            evaluation_context,
            lambda v: v if isinstance(v, bool) else None,
        )

    def resolve_string_details(
        self, flag_key: str, default_value: str, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[str]:
        return self._resolve(
            flag_key, default_value, evaluation_context, lambda v: v if isinstance(v, str) else None
        )

    def resolve_integer_details(
        self, flag_key: str, default_value: int, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[int]:
        def integer(value: Any) -> int | None:
            if isinstance(value, bool):
                return None
            if isinstance(value, int):
                return value
            if isinstance(value, float) and value.is_integer():
                return int(value)
            return None

        return self._resolve(flag_key, default_value, evaluation_context, integer)

    def resolve_float_details(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        def number(value: Any) -> float | None:
            if isinstance(value, int | float) and not isinstance(value, bool):
                return float(value)
            return None

        return self._resolve(flag_key, default_value, evaluation_context, number)

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: Sequence[FlagValueType] | Mapping[str, FlagValueType],
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Sequence[FlagValueType] | Mapping[str, FlagValueType]]:
        return self._resolve(
            flag_key,
            default_value,
            evaluation_context,
            lambda v: v if isinstance(v, dict | list) else None,
        )
