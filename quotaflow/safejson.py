"""JSON from outside (API bodies, bundle files) read with limits: too deep a nesting is
refused as invalid JSON instead of exhausting the interpreter's recursion (a 500, or a
traceback in the CLI) here or in whatever walks the document later."""

from __future__ import annotations

import json
from typing import Any

#: Deeper than any spec, bundle or request body the product defines.
MAX_DEPTH = 64


class JsonTooDeep(ValueError):
    """Nested deeper than MAX_DEPTH (a ValueError, like any JSON that cannot be read)."""

    def __init__(self, max_depth: int = MAX_DEPTH) -> None:
        super().__init__(f"JSON nested deeper than {max_depth} levels")
        self.max_depth = max_depth


def depth(value: Any) -> int:
    """How deeply arrays and objects nest in ``value`` (a scalar: 0), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children)
    return deepest


def loads(text: str | bytes, max_depth: int = MAX_DEPTH, **kwargs: Any) -> Any:
    """``json.loads``, refusing more than ``max_depth`` levels with JsonTooDeep; invalid
    JSON and invalid UTF-8 raise ValueError subclasses as ``json.loads`` does."""
    try:
        value = json.loads(text, **kwargs)
    except RecursionError:
        raise JsonTooDeep(max_depth) from None
    if depth(value) > max_depth:
        raise JsonTooDeep(max_depth)
    return value
