"""QuotaFlow: fair, explained, agreed and tracked sales targets.

The package is called ``quotaflow`` rather than the design card's ``platform``:
a top-level ``platform`` package shadows the standard library module that Flask
and SQLAlchemy import.  ``create_app`` is resolved lazily so that the pure
core (``quotaflow.rules`` and friends) can be imported without loading Flask.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from quotaflow.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from quotaflow.app import create_app

        return create_app
    raise AttributeError(f"module 'quotaflow' has no attribute {name!r}")
