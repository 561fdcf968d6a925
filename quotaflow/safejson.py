"""JSON from outside (API bodies, bundle files) read with limits: too deep a nesting is
refused as invalid JSON instead of exhausting the interpreter's recursion (a 500, or a
traceback in the CLI) here or in whatever walks the document later."""

from __future__ import annotations

import json
import re
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


class JsonNotText(ValueError):
    """A string holds an unpaired surrogate (``"\\ud800"``): not Unicode text. Neither
    database driver can bind it (UnicodeEncodeError), so it is refused at the door instead
    of trusting every path to reject it before it reaches a query."""

    def __init__(self) -> None:
        super().__init__("a string holds an unpaired UTF-16 surrogate (\\ud800-\\udfff)")


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_UTF8_BOM = b"\xef\xbb\xbf"


def _strings(value: Any) -> Any:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _refuse_surrogates(value: Any) -> None:
    for text in _strings(value):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise JsonNotText() from None


def loads(text: str | bytes, max_depth: int = MAX_DEPTH, **kwargs: Any) -> Any:
    """``json.loads``, refusing more than ``max_depth`` levels with JsonTooDeep; bytes
    must be UTF-8 (``json.loads`` would also take UTF-16 and UTF-8-encoded surrogates) and
    strings must be Unicode text (JsonNotText). Invalid JSON and invalid UTF-8 raise
    ValueError subclasses as ``json.loads`` does."""
    if isinstance(text, bytes | bytearray):
        text = bytes(text).removeprefix(_UTF8_BOM).decode("utf-8")  # strict: UnicodeDecodeError
    try:
        value = json.loads(text, **kwargs)
    except RecursionError:
        raise JsonTooDeep(max_depth) from None
    if depth(value) > max_depth:
        raise JsonTooDeep(max_depth)
    if _SURROGATE_ESCAPE.search(text):  # only then can a string hold one
        _refuse_surrogates(value)
    return value
