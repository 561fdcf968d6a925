"""Sign-in backoff: how long the next attempt waits after a run of failures (pure).

The first ``free`` failures cost nothing (typos); from then on each failure doubles the
wait, from ``base`` seconds up to ``cap``: 1 s, 2 s, 4 s ... 15 min. The attacker gets
about ``free`` + log2(cap / base) guesses quickly and then one per ``cap``; nobody is
locked out for good, and no CAPTCHA is needed.
"""

from __future__ import annotations

import datetime as dt
import math


def backoff_seconds(failures: int, *, free: int, base: float = 1.0, cap: float = 900.0) -> float:
    """The wait after ``failures`` failures in a row: 0 below ``free``, then
    ``base * 2 ** (failures - free)`` capped at ``cap``."""
    if failures < free:
        return 0.0
    exponent = failures - free
    if exponent >= 64:  # 2 ** 64 seconds is past any cap; avoid huge floats
        return float(cap)
    return float(min(cap, base * 2 ** exponent))


def retry_after(last_failure_at: dt.datetime | None, failures: int, now: dt.datetime, *,
                free: int, base: float = 1.0, cap: float = 900.0) -> int:
    """Whole seconds until an attempt is accepted again (0: accepted now)."""
    wait = backoff_seconds(failures, free=free, base=base, cap=cap)
    if last_failure_at is None or wait <= 0:
        return 0
    remaining = (last_failure_at + dt.timedelta(seconds=wait) - now).total_seconds()
    return max(0, math.ceil(remaining))
