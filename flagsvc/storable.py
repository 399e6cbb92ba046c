"""Text a database column can hold: find or drop NUL characters and lone surrogates.

Shared by the management API's body parsing, the edge's kill path and the services'
inputs, in both apps (flags and audit may import it; it imports neither).
"""

from __future__ import annotations

import re
from typing import Any

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def without_unstorable(text: str) -> str:
    """``text`` without NUL characters and lone surrogates (see ``unstorable_text``)."""
    return _UNSTORABLE.sub("", text)


def unstorable_text(value: Any, name: str = "body", max_depth: int = 64) -> tuple[str, str] | None:
    """The first place in parsed JSON that no database column can hold, as (field, problem).

    PostgreSQL refuses NUL in text, and a lone surrogate (JSON's ``"\\ud83d"``) cannot be
    encoded as UTF-8 at all; keys count as much as values. Nesting deeper than
    ``max_depth`` is refused too. Walked with a stack, so no input can exhaust recursion.
    """
    pending: list[tuple[Any, str, int]] = [(value, name, 0)]
    while pending:
        item, path, depth = pending.pop()
        if depth > max_depth:
            return name, f"is nested deeper than {max_depth} levels; flatten it"
        if isinstance(item, str):
            found = _UNSTORABLE.search(item)
            if found is not None:
                what = (
                    "a NUL character (\\u0000)"
                    if found.group() == "\x00"
                    else f"an unpaired surrogate (\\u{ord(found.group()):04x})"
                )
                return path, f"contains {what}; remove it or send the character it stands for"
        elif isinstance(item, dict):
            for key, child in reversed(item.items()):  # reversed: pop in document order
                child_path = key if path == name else f"{path}.{key}"
                if _UNSTORABLE.search(key):
                    return path, f"has a key with a NUL or an unpaired surrogate ({key!r})"
                pending.append((child, child_path, depth + 1))
        elif isinstance(item, list):
            pending.extend(
                (child, f"{path}[{i}]", depth + 1) for i, child in reversed(list(enumerate(item)))
            )
    return None
