"""Load the demo company from ``quotaflow/seed_data/`` into an empty database, in one transaction."""

from __future__ import annotations

import csv
import datetime as dt
import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from quotaflow.services import audit, spec_kinds, specs, tracking
from quotaflow.services.auth import hash_password
from quotaflow.services.uow import unit_of_work
from quotaflow.store import queries
from quotaflow.store.models import (
    AttributeValue,
    OrgLevel,
    OrgUnit,
    Period,
    PeriodWeek,
    RoleGrant,
    UnitResult,
    User,
)

#: The demo company, inside the package (an installed wheel seeds the demo on its own).
SEED_DIR = Path(__file__).resolve().parents[1] / "seed_data"
NON_ATTRIBUTE_COLUMNS = {"period", "unit_code"}
# The default specs shipped in quotaflow/seed_data/specs: file -> (kind, key). Loaded as active versions.
SEED_SPECS = {f"{kind}.json": (kind, spec_kinds.DEFAULT_MODEL_KEY) for kind in (
    spec_kinds.FACTOR_MODEL, spec_kinds.SCENARIO_PRESETS, spec_kinds.RISK_RULES,
    spec_kinds.NOTIFICATION_ROUTES, spec_kinds.CONFIRMATION_POLICY, spec_kinds.PACING_CURVE,
    spec_kinds.ALERT_RULES, spec_kinds.REMEDIES, spec_kinds.WHATIF_POLICY)}


@dataclass(frozen=True)
class DemoLogin:
    username: str
    role: str
    scope: str
    display_name: str


class SeedError(RuntimeError):
    pass


def period_weeks(start: dt.date, end: dt.date) -> list[tuple[int, int, dt.date, dt.date]]:
    """ISO weeks overlapping [start, end], clipped to it: (iso_year, iso_week, from, to)."""
    weeks = []
    monday = start - dt.timedelta(days=start.weekday())
    while monday <= end:
        iso = monday.isocalendar()
        weeks.append((iso.year, iso.week, max(monday, start), min(monday + dt.timedelta(days=6), end)))
        monday += dt.timedelta(days=7)
    return weeks


def add_period(session: Session, code: str, start: dt.date, end: dt.date) -> Period:
    period = Period(code=code, start_date=start, end_date=end)
    for number, (year, week, first, last) in enumerate(period_weeks(start, end), start=1):
        period.weeks.append(
            PeriodWeek(week_no=number, iso_year=year, iso_week=week, start_date=first, end_date=last)
        )
    session.add(period)
    return period


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def load_demo(session: Session, seed_dir: Path = SEED_DIR, password: str | None = None) -> tuple[str, list[DemoLogin]]:
    """Seed an empty database with the demo company; returns the demo password and logins.

    The password is generated unless given; it is for the demo only.
    """
    with unit_of_work(session):
        if session.scalar(select(func.count()).select_from(OrgUnit)):
            raise SeedError("the database already holds an organisation; seed only an empty one")
        company = json.loads((seed_dir / "company.json").read_text(encoding="utf-8"))
        password = password or secrets.token_urlsafe(9)

        depth_of: dict[str, int] = {}
        for depth, level in enumerate(company["levels"]):
            depth_of[level["key"]] = depth
            session.add(OrgLevel(depth=depth, key=level["key"], name_en=level["name_en"],
                                 name_zh=level["name_zh"], alias_zh=level.get("alias_zh")))
        periods = {
            p["code"]: add_period(session, p["code"], dt.date.fromisoformat(p["start"]), dt.date.fromisoformat(p["end"]))
            for p in company["periods"]
        }
        session.flush()
        # The demo plans for its company.json quarter (a later period added stays a draft).
        planning = company.get("planning_period")
        if planning:
            queries.set_planning_period(session, periods[planning])

        units = _load_units(session, _read_csv(seed_dir / "org_units.csv"), depth_of)
        _load_attributes(session, _read_csv(seed_dir / "attributes.csv"), units, periods)
        history = [
            {"unit_id": units[r["unit_code"]].id, "period_id": periods[r["period"]].id,
             "metric": "sales", "value": float(r["sales"])}
            for r in _read_csv(seed_dir / "history.csv")
        ]
        session.execute(insert(UnitResult), history)
        logins = _load_users(session, _read_csv(seed_dir / "users.csv"), units, password)
        for filename, (kind, key) in SEED_SPECS.items():
            content = json.loads((seed_dir / "specs" / filename).read_text(encoding="utf-8"))
            specs.activate(session, specs.create_version(session, kind, key, content, None, "demo seed"), None)
        # Approval flows: every seed_data/specs/flows/<key>.json, active under its file name.
        for path in sorted((seed_dir / "specs" / "flows").glob("*.json")):
            content = json.loads(path.read_text(encoding="utf-8"))
            specs.activate(session, specs.create_version(session, spec_kinds.FLOW, path.stem, content, None,
                                                         "demo seed"), None)
        tracking.seed_demo(session, seed_dir, {c: u.id for c, u in units.items()}, periods)
        audit.record(session, None, "seed_demo", "database", None,
                     after={"units": len(units), "users": len(logins)})
        tracking.seed_demo_plan(session, seed_dir)
        return password, logins


def _load_units(session: Session, rows: list[dict[str, str]], depth_of: dict[str, int]) -> dict[str, OrgUnit]:
    units: dict[str, OrgUnit] = {}
    # Parents come first in the file; flush level by level so ids exist for paths.
    for depth in sorted(set(depth_of.values())):
        batch = [r for r in rows if depth_of[r["level"]] == depth]
        for row in batch:
            parent = units.get(row["parent_code"]) if row["parent_code"] else None
            if row["parent_code"] and parent is None:
                raise SeedError(f"org_units.csv: unit {row['code']} names unknown parent {row['parent_code']}")
            unit = OrgUnit(
                code=row["code"], parent=parent, depth=depth, path="",
                name_en=row["name_en"], name_zh=row["name_zh"],
                city_en=row.get("city_en") or None, city_zh=row.get("city_zh") or None,
                opened=row.get("opened") or None,
            )
            session.add(unit)
            units[row["code"]] = unit
        session.flush()
        for row in batch:
            unit = units[row["code"]]
            unit.path = f"{unit.parent.path if unit.parent else '/'}{unit.id}/"
    session.flush()
    return units


def _load_attributes(session: Session, rows: list[dict[str, str]], units: dict[str, OrgUnit],
                     periods: dict[str, Period]) -> None:
    values = []
    for row in rows:
        unit_id = units[row["unit_code"]].id
        period_id = periods[row["period"]].id
        for name, raw in row.items():
            if name in NON_ATTRIBUTE_COLUMNS or raw == "":
                continue
            values.append({"period_id": period_id, "unit_id": unit_id, "name": name, "value": float(raw)})
    session.execute(insert(AttributeValue), values)


def _load_users(session: Session, rows: list[dict[str, str]], units: dict[str, OrgUnit],
                password: str) -> list[DemoLogin]:
    password_hash = hash_password(password)
    logins = []
    for row in rows:
        person = units[row["person_unit_code"]] if row.get("person_unit_code") else None
        user = User(username=row["username"], display_name=row["display_name_zh"] if row["locale"] == "zh"
                    else row["display_name_en"], password_hash=password_hash, locale=row["locale"],
                    person_unit=person)
        user.grants.append(RoleGrant(role=row["role"], unit=units[row["scope_unit_code"]]))
        session.add(user)
        logins.append(DemoLogin(row["username"], row["role"], row["scope_unit_code"], user.display_name))
    return logins
