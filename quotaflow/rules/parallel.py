"""Run independent numpy-heavy jobs side by side.

numpy releases the GIL inside its kernels, so jobs that are mostly array work (one
scenario's allocation, one factor's scoring) overlap on a multi-core machine. One
small pool is shared by the process; on a single core everything runs inline.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

WORKERS = max(1, min(4, os.cpu_count() or 1))
_pool: ThreadPoolExecutor | None = None
_lock = threading.Lock()
_local = threading.local()


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="quotaflow-rules")
        return _pool


def parallel_map(fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """``[fn(x) for x in items]``, in order, spread over the pool when it pays.

    Nested calls (a job that itself maps) run inline, so the pool cannot deadlock.
    """
    items = list(items)
    if WORKERS == 1 or len(items) < 2 or getattr(_local, "inside", False):
        return [fn(x) for x in items]

    def run(x: T) -> R:
        _local.inside = True
        try:
            return fn(x)
        finally:
            _local.inside = False

    return list(_executor().map(run, items))
