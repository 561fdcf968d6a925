"""A plan from the database for a 100,000-person company, on SQLite or PostgreSQL.

Builds a company (1 root, regions, teams of 100 people) with every input of the demo
factor model, the demo specs active, then times (median of several runs):

  load      the period's tree and inputs from the database (plan_data.load_period_data)
  rules     the three scenarios with their risks on the loaded tree (pure rules engine)
  simulate  load + rules, as the target simulator runs them
  persist   saving one scenario: the plan row and every unit's row (save_scenario)
  create    create_plan end to end (load, one scenario, persist)

and prints the ratio of the database part (load + persist) to the pure rules part.
Prints, asserts no timings. Run:

    python bench/bench_plan_from_db.py [--people 100000] [--database-url URL]

Without a URL (or QUOTAFLOW_BENCH_DATABASE_URL) it runs on a temporary SQLite file. A
PostgreSQL URL names a server and an admin database (e.g.
postgresql+psycopg://postgres@127.0.0.1:5432/postgres): the benchmark creates a
temporary database beside it and drops it at the end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from sqlalchemy import create_engine, func, insert, select, text
from sqlalchemy.orm import Session

from quotaflow.rules import run_scenarios
from quotaflow.services import plans, specs
from quotaflow.services.plan_data import load_period_data
from quotaflow.services.seeding import SEED_DIR, SEED_SPECS
from quotaflow.store.db import make_engine
from quotaflow.store.migrate import upgrade
from quotaflow.store.models import AttributeValue, OrgLevel, OrgUnit, Period, PlanUnit
from quotaflow.store.org_columns import input_columns, org_columns

LEVELS = ("company", "region", "team", "person")
TEAM_SIZE = 100
TEAMS_PER_REGION = 50
SUMMED = ("hist_sales", "prev_quarter_sales", "market_potential", "headcount", "cost")
TOTAL_PER_HEAD = 520_000  # yuan per person: about the demo's 249.5M / 480


def company(people: int, seed: int = 11) -> tuple[list[dict], dict[str, np.ndarray]]:
    """Units (root, regions, teams, people; ids 1..n in that order) and their inputs."""
    rng = np.random.default_rng(seed)
    teams = -(-people // TEAM_SIZE)
    regions = -(-teams // TEAMS_PER_REGION)
    n = 1 + regions + teams + people
    depth = np.r_[0, np.full(regions, 1), np.full(teams, 2), np.full(people, 3)]
    ids = np.arange(1, n + 1)
    parent = np.zeros(n, dtype=np.int64)  # 0: no parent
    parent[1:1 + regions] = 1
    parent[1 + regions:1 + regions + teams] = 2 + np.arange(teams) // TEAMS_PER_REGION
    parent[1 + regions + teams:] = 2 + regions + np.arange(people) // TEAM_SIZE

    tenure = rng.integers(1, 120, people).astype(float)
    ramp = np.clip(0.25 + 0.75 * (tenure - 3) / 15, 0.25, 1.0)
    potential = rng.lognormal(np.log(1.1e6), 0.4, people).round(-3)
    new_city = (rng.random(people) < 0.05).astype(float)
    hist = np.where(tenure > 12, potential * rng.uniform(0.3, 0.45, people), 0).round()
    person = {
        "hist_sales": hist, "prev_quarter_sales": (hist * rng.uniform(0.9, 1.1, people)).round(),
        "market_potential": potential, "new_city_share": new_city, "headcount": np.ones(people),
        "avg_tenure_months": tenure, "ramped_productivity": (700_000 * ramp).round(),
        "product_fit": rng.uniform(40, 95, people).round(1),
        "competitor_coverage": rng.uniform(10, 80, people).round(1),
        "cost": rng.uniform(80_000, 160_000, people).round(),
    }
    values = {k: np.zeros(n) for k in person}
    for k, v in person.items():
        values[k][n - people:] = v
    # Parents: sums, or headcount-weighted means, deepest level first.
    for d in (2, 1, 0):
        rows = np.flatnonzero(depth == d)
        child = np.flatnonzero(depth == d + 1)
        slot = np.searchsorted(ids[rows], parent[child])
        heads = np.bincount(slot, weights=values["headcount"][child], minlength=len(rows))
        for k in values:
            if k in SUMMED:
                values[k][rows] = np.bincount(slot, weights=values[k][child], minlength=len(rows))
            else:
                weighted = np.bincount(slot, weights=values[k][child] * values["headcount"][child],
                                       minlength=len(rows))
                values[k][rows] = (weighted / heads).round(4)
    values["headcount"] = values["headcount"].round()
    paths = {}
    units = []
    for i in range(n):  # setup only; the benchmark itself never loops over units
        uid = int(ids[i])
        p = int(parent[i])
        paths[uid] = f"{paths[p] if p else '/'}{uid}/"
        code = ("HQ" if depth[i] == 0 else f"R{uid:03d}" if depth[i] == 1
                else f"T{uid:05d}" if depth[i] == 2 else f"P{uid:06d}")
        units.append({"id": uid, "code": code, "parent_id": p or None, "depth": int(depth[i]),
                      "path": paths[uid], "name_en": code, "name_zh": code})
    return units, values


def build(url: str, people: int) -> int:
    upgrade(url)
    engine = make_engine(url)
    units, values = company(people)
    with Session(engine) as session:
        for d, key in enumerate(LEVELS):
            session.add(OrgLevel(depth=d, key=key, name_en=key, name_zh=key))
        period = Period(code="2026Q4", start_date=dt.date(2026, 10, 1),
                        end_date=dt.date(2026, 12, 31))
        session.add(period)
        session.flush()
        session.execute(insert(OrgUnit), units)
        ids = [u["id"] for u in units]
        for name, column in values.items():
            session.execute(insert(AttributeValue), [
                {"period_id": period.id, "name": name, "unit_id": i, "value": float(v)}
                for i, v in zip(ids, column.tolist(), strict=True)])
        for filename, (kind, key) in SEED_SPECS.items():
            content = json.loads((SEED_DIR / "specs" / filename).read_text(encoding="utf-8"))
            specs.activate(session, specs.create_version(session, kind, key, content, None), None)
        session.commit()
        period_id = period.id
    with engine.connect() as conn:  # planner statistics, as a live database has them
        conn.exec_driver_sql("ANALYZE")
        conn.commit()
    engine.dispose()
    return period_id


def median_ms(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


@contextmanager
def database(url: str | None) -> Iterator[str]:
    """The database to run on: a temporary SQLite file, or a temporary database on the
    PostgreSQL server of ``url`` (created here, dropped at the end)."""
    if not url:
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{Path(tmp) / 'bench.db'}"
        return
    if not url.startswith("postgresql"):
        yield url
        return
    name = f"qf_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--database-url", default=os.environ.get("QUOTAFLOW_BENCH_DATABASE_URL"),
                        help="a PostgreSQL server's admin URL (a temporary database is made "
                             "there), or nothing for a temporary SQLite file")
    args = parser.parse_args()
    with database(args.database_url) as url:
        start = time.perf_counter()
        period_id = build(url, args.people)
        print(f"built {args.people:,} people in {time.perf_counter() - start:.1f} s "
              f"on {url.split(':', 1)[0]}")
        engine = make_engine(url)
        with Session(engine) as session:
            period = session.get(Period, period_id)
            chosen = plans.active_specs(session)
            data = load_period_data(session, period, chosen.model)
            total = float(args.people * TOTAL_PER_HEAD)
            n = data.tree.size
            print(f"{n:,} units, {len(chosen.model.fields)} input fields, total {total:,.0f}")

            load = median_ms(lambda: load_period_data(session, period, chosen.model), args.runs)
            units_ms = median_ms(lambda: org_columns(session), args.runs)
            columns_ms = median_ms(lambda: input_columns(session, period_id,
                                                         chosen.model.field_names, data.unit_ids,
                                                         all_active=True), args.runs)
            rules = median_ms(lambda: run_scenarios(chosen.model, data.tree, total,
                                                    chosen.presets, risks=chosen.rules),
                              args.runs)
            sim_ms = median_ms(lambda: plans.simulate(session, period, total), args.runs)
            sim = plans.simulate(session, period, total)
            persist_times = []
            for _ in range(args.runs):
                begin = time.perf_counter()
                plan = plans.save_scenario(session, None, sim, "balanced", "bench")
                persist_times.append(time.perf_counter() - begin)
            persist = statistics.median(persist_times) * 1000
            create = median_ms(lambda: plans.create_plan(session, None, period, "balanced",
                                                         total, "bench"), args.runs)
            stored = session.scalar(select(func.count()).select_from(PlanUnit)
                                    .where(PlanUnit.plan_id == plan.id))
            assert stored == n  # a correctness check of the run, not a timing
        engine.dispose()
    print(f"load (DB -> tree)           {load:8.1f} ms")
    print(f"  of which the org units     {units_ms:8.1f} ms (org_columns)")
    print(f"  of which the input columns {columns_ms:8.1f} ms (input_columns x "
          f"{len(chosen.model.fields)})")
    print(f"rules (3 scenarios + risks) {rules:8.1f} ms")
    print(f"simulate (load + rules)     {sim_ms:8.1f} ms")
    print(f"persist one plan            {persist:8.1f} ms ({n:,} rows)")
    print(f"create_plan end to end      {create:8.1f} ms")
    print(f"DB part (load + persist) / pure rules: {(load + persist) / rules:.2f}x "
          f"(median of {args.runs})")


if __name__ == "__main__":
    main()
