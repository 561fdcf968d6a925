"""The one cache of compiled specs, keyed by content hash.

Spec versions are immutable, so a compiled spec (a factor model, presets, risk rules, an
approval flow) never goes stale: callers key it by ``(kind, content hash, ...)`` -- with
the hash of whatever else the compilation read, e.g. the factor model presets are
checked against. Least recently used entries go first; a failed compilation is not
cached (its exception reaches the caller every time).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")

MAX_ENTRIES = 128

_entries: OrderedDict[tuple[Hashable, ...], Any] = OrderedDict()
_lock = threading.Lock()


def compiled(key: tuple[Hashable, ...], build: Callable[[], T]) -> T:
    """The value cached under ``key``, else ``build()`` (cached when it returns)."""
    with _lock:
        if key in _entries:
            _entries.move_to_end(key)
            return _entries[key]  # type: ignore[no-any-return]
    value = build()  # outside the lock: two threads may both build, the results are equal
    with _lock:
        _entries[key] = value
        while len(_entries) > MAX_ENTRIES:
            _entries.popitem(last=False)
    return value


def clear() -> None:
    with _lock:
        _entries.clear()
