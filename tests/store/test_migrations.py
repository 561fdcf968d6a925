"""`quotaflow db upgrade` gives the same schema on SQLite and PostgreSQL, matching the models."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from quotaflow.store.models import Base

GENERIC_TYPES = {
    "DOUBLE_PRECISION": "FLOAT", "DOUBLE": "FLOAT", "REAL": "FLOAT", "FLOAT": "FLOAT",
    "TIMESTAMP": "DATETIME", "DATETIME": "DATETIME", "VARCHAR": "VARCHAR", "TEXT": "TEXT",
    "INTEGER": "INTEGER", "BOOLEAN": "BOOLEAN", "DATE": "DATE", "JSON": "JSON",
}


def run_cli_upgrade(url: str, tmp_path: Path) -> None:
    env = {**os.environ, "QUOTAFLOW_DATABASE_URL": url, "QUOTAFLOW_INSTANCE_PATH": str(tmp_path),
           "QUOTAFLOW_SECRET_KEY": "migration-test"}
    quotaflow = [sys.executable, "-m", "quotaflow.cli"]
    result = subprocess.run([*quotaflow, "db", "upgrade"], env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "database at head" in result.stdout


def schema_of(url: str) -> dict[str, Any]:
    """A backend-neutral description of tables, columns, keys, indexes and checks."""
    engine = create_engine(url)
    inspector = inspect(engine)
    schema: dict[str, Any] = {}
    for table in sorted(inspector.get_table_names()):
        columns = {
            c["name"]: (GENERIC_TYPES.get(type(c["type"]).__name__.upper(), type(c["type"]).__name__),
                        getattr(c["type"], "length", None), c["nullable"])
            for c in inspector.get_columns(table)
        }
        schema[table] = {
            "columns": columns,
            "pk": sorted(inspector.get_pk_constraint(table)["constrained_columns"]),
            "fks": sorted((fk["name"], tuple(fk["constrained_columns"]), fk["referred_table"])
                          for fk in inspector.get_foreign_keys(table)),
            "uniques": sorted((u["name"], tuple(u["column_names"]))
                              for u in inspector.get_unique_constraints(table)),
            "indexes": sorted((i["name"], tuple(i["column_names"]), bool(i["unique"]))
                              # PostgreSQL also lists the index behind each unique constraint.
                              for i in inspector.get_indexes(table) if "duplicates_constraint" not in i),
            "checks": sorted(c["name"] for c in inspector.get_check_constraints(table)),
        }
    engine.dispose()
    return schema


def model_drift(url: str) -> list[Any]:
    engine = create_engine(url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    return diff


def test_upgrade_gives_the_same_schema_on_sqlite_and_postgresql(tmp_path, fresh_postgres_url) -> None:
    sqlite_url = f"sqlite:///{tmp_path / 'fresh.db'}"
    run_cli_upgrade(sqlite_url, tmp_path)
    run_cli_upgrade(fresh_postgres_url, tmp_path)
    sqlite_schema = schema_of(sqlite_url)
    postgres_schema = schema_of(fresh_postgres_url)
    assert "org_units" in sqlite_schema
    assert "alembic_version" in sqlite_schema
    assert sqlite_schema == postgres_schema


def test_migrations_match_the_models_on_both_backends(tmp_path, fresh_postgres_url) -> None:
    sqlite_url = f"sqlite:///{tmp_path / 'fresh.db'}"
    run_cli_upgrade(sqlite_url, tmp_path)
    run_cli_upgrade(fresh_postgres_url, tmp_path)
    assert model_drift(sqlite_url) == []
    assert model_drift(fresh_postgres_url) == []


def test_downgrade_to_base_and_back(tmp_path) -> None:
    from quotaflow.store.migrate import downgrade, upgrade

    url = f"sqlite:///{tmp_path / 'roundtrip.db'}"
    upgrade(url)
    downgrade(url, "base")
    assert schema_of(url).keys() == {"alembic_version"}
    upgrade(url)
    assert "spec_versions" in schema_of(url)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_upgrading_an_existing_database_keeps_planning_for_its_latest_period(
        tmp_path, request, backend: str) -> None:
    """Before 0010 pages planned for the latest period: the new setting starts there."""
    from sqlalchemy import text

    from quotaflow.store.migrate import upgrade

    url = (f"sqlite:///{tmp_path / 'existing.db'}" if backend == "sqlite"
           else request.getfixturevalue("fresh_postgres_url"))
    upgrade(url, "0009")
    engine = create_engine(url)
    with engine.begin() as conn:
        # Inserted out of date order: "latest" is by start date, not by id.
        for code, start, end in (("2026Q4", "2026-10-01", "2026-12-31"),
                                 ("2027Q1", "2027-01-01", "2027-03-31"),
                                 ("2026Q3", "2026-07-01", "2026-09-30")):
            conn.execute(text("INSERT INTO periods (code, start_date, end_date) "
                              "VALUES (:c, :s, :e)"), {"c": code, "s": start, "e": end})
    upgrade(url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT s.id, p.code FROM company_settings s "
                                 "JOIN periods p ON p.id = s.planning_period_id")).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [(1, "2027Q1")]


def test_upgrading_a_database_without_periods_leaves_the_choice_open(tmp_path) -> None:
    from sqlalchemy import text

    from quotaflow.store.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'empty.db'}"
    upgrade(url)
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, planning_period_id FROM company_settings")).all()
    assert [tuple(r) for r in rows] == [(1, None)]
    engine.dispose()
