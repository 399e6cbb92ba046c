"""``override_flag`` / ``override_value``: pin a flag in tests, as decorator or ``with`` block.

@override_flag("new-checkout", active=False)
def test_checkout__flag_off__serves_the_legacy_page(client): ...

with override_value("upload.max-size-mb", 1):
    ...
"""

from __future__ import annotations

from contextlib import ContextDecorator
from typing import Any

from flagsvc_sdk.django.conf import get_client

_ABSENT: Any = object()


class override_value(ContextDecorator):
    """Every evaluation of ``key`` in this process serves ``value`` until the block ends."""

    def __init__(self, key: str, value: Any) -> None:
        self.key, self.value = key, value
        self._previous: list[Any] = []

    def __enter__(self) -> override_value:
        client = get_client()
        self._previous.append(client.overrides.get(self.key, _ABSENT))
        client.override(self.key, self.value)
        return self

    def __exit__(self, *exc: object) -> None:
        client = get_client()
        previous = self._previous.pop()
        if previous is _ABSENT:
            client.clear_override(self.key)
        else:
            client.override(self.key, previous)


class override_flag(override_value):
    """A boolean flag on (``active=True``) or off for everyone until the block ends."""

    def __init__(self, key: str, active: bool = True) -> None:
        super().__init__(key, bool(active))
