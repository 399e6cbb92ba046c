"""Local evaluation against one set of compiled flags: what ``FlagsvcClient`` and its
per-request views share. No lock and no I/O: the flags mapping is never changed in place.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flagsvc_sdk.engine import CompiledFlag, ErrorCode, Reason, Result

# The OpenFeature code for "no configuration yet" (not in the engine: the server always has one).
PROVIDER_NOT_READY = "PROVIDER_NOT_READY"
OVERRIDE_VARIANT = "override"

EvaluationDetails = Result  # value, variant, reason, error_code, error_message

UNSET: Any = object()  # "no default given": the client's defaults[key] answers
_EMPTY: Mapping[str, Any] = {}


def value_type(value: Any) -> str:
    """The flag type a Python value belongs to (``boolean``, ``string``, ``number``, ``json``)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    if isinstance(value, int | float):
        return "number"
    return "json"


def constant_flag(key: str, value: Any) -> CompiledFlag:
    """A flag that serves ``value`` to everyone (used for test overrides)."""
    return CompiledFlag(
        {
            "key": key,
            "type": value_type(value),
            "variants": {OVERRIDE_VARIANT: value},
            "off_variant": OVERRIDE_VARIANT,
            "enabled": True,
            "kill": None,
            "targets": [],
            "rules": [],
            "default_serve": {"variant": OVERRIDE_VARIANT},
            "prerequisites": [],
        },
        {},
    )


class Evaluator:
    """``is_enabled``, ``variant``, ``get_value`` and ``evaluate`` over ``self._flags``.

    Each call reads ``self._flags`` once, so it sees one whole snapshot even while an updater
    thread installs the next one.
    """

    _flags: Mapping[str, CompiledFlag]
    _defaults: Mapping[str, Any]
    _has_snapshot: bool

    def is_enabled(
        self, key: str, context: Mapping[str, Any] | None = None, default: bool | None = None
    ) -> bool:
        """Whether a boolean flag is on for ``context``.

        ``default`` (else the client's ``defaults[key]``, else False) answers when the flag is
        unknown, not boolean, or cannot be evaluated.

            >>> client.is_enabled("new-checkout", {"targetingKey": "user-42"})  # doctest: +SKIP
            True
        """
        flags = self._flags
        flag = flags.get(key)
        if flag is not None:
            result = flag.constant
            if result is None:
                try:
                    result = flag.evaluate(context or _EMPTY, flags)
                except Exception:
                    result = None
            if result is not None:
                value = result.value
                if value is True or value is False:
                    return value
        if default is None:
            return self._defaults.get(key) is True
        return default

    def variant(self, key: str, context: Mapping[str, Any] | None = None) -> str | None:
        """The name of the variant served (None when the flag is unknown or fails).

        >>> client.variant("homepage.hero", {"targetingKey": "user-42"})  # doctest: +SKIP
        'spring-sale'
        """
        return self.evaluate(key, context).variant

    def get_value(
        self, key: str, context: Mapping[str, Any] | None = None, default: Any = UNSET
    ) -> Any:
        """The flag's value; ``default`` when unknown, failing, or of another type than ``default``.

        >>> client.get_value("upload.max-size-mb", {"targetingKey": "u1"}, 10)  # doctest: +SKIP
        25
        """
        return self.evaluate(key, context, default).value

    def evaluate(
        self, key: str, context: Mapping[str, Any] | None = None, default: Any = UNSET
    ) -> Result:
        """Value, variant, reason and error code, in OpenFeature's vocabulary.

        Reasons: STATIC, TARGETING_MATCH, SPLIT, DEFAULT, DISABLED, PREREQUISITE_FAILED, ERROR;
        error codes: FLAG_NOT_FOUND, TYPE_MISMATCH, PROVIDER_NOT_READY, GENERAL.

        >>> client.evaluate("new-checkout", {"targetingKey": "u1"}, False)  # doctest: +SKIP
        Result(value=True, variant='on', reason='SPLIT', error_code=None, error_message=None)
        """
        if default is UNSET:
            default = self._defaults.get(key)
        flags = self._flags
        flag = flags.get(key)
        if flag is None:
            if not self._has_snapshot:
                return Result(
                    default,
                    None,
                    Reason.ERROR,
                    PROVIDER_NOT_READY,
                    "no snapshot yet (no bootstrap and the server has not answered)",
                )
            return Result(
                default,
                None,
                Reason.ERROR,
                ErrorCode.FLAG_NOT_FOUND,
                f"flag '{key}' does not exist in this environment",
            )
        try:
            result = flag.evaluate(context or _EMPTY, flags)
        except Exception as exc:  # a definition the engine cannot apply to this context
            return Result(default, None, Reason.ERROR, ErrorCode.GENERAL, repr(exc))
        if default is not None and value_type(result.value) != value_type(default):
            return Result(
                default,
                None,
                Reason.ERROR,
                ErrorCode.TYPE_MISMATCH,
                f"flag '{key}' is a {flag.type} flag; the default is a {value_type(default)}",
            )
        return result


class FlagsView(Evaluator):
    """The flags of one snapshot, pinned: every call sees the same version.

    >>> view = client.view()  # doctest: +SKIP
    >>> view.is_enabled("new-checkout", context) == view.is_enabled("new-checkout", context)  # doctest: +SKIP
    True
    """

    def __init__(
        self, flags: Mapping[str, CompiledFlag], defaults: Mapping[str, Any], has_snapshot: bool
    ) -> None:
        self._flags = flags
        self._defaults = defaults
        self._has_snapshot = has_snapshot
