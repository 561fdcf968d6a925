"""Helpers of the API tests (importable as ``api_support``)."""

from __future__ import annotations


def day(period_code: str, day_of_period: int = 5) -> str:
    """A date inside a test period (``fresh_period`` makes Q3: July to September), so the
    demo's own 2026Q4 actuals stay as other tests expect them."""
    return f"{period_code[:4]}-07-{day_of_period:02d}"

