"""Persistence: SQLAlchemy models and queries. The only package that knows SQL."""

from quotaflow.store import guards as _guards  # noqa: F401  (registers ORM invariants)
from quotaflow.store.db import Database, db

__all__ = ["Database", "db"]
