"""Loading one attribute column for 100,000 units into numpy, on SQLite.

Prints the median of several runs for the store's loader and, in the same run,
for a plain ORM baseline (objects -> dict -> array), with the ratio.
Run: python bench/bench_attribute_column.py [--units 100000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from quotaflow.store.db import make_engine
from quotaflow.store.migrate import upgrade
from quotaflow.store.models import AttributeValue, OrgLevel, OrgUnit, Period
from quotaflow.store.queries import load_attribute_column

ATTRIBUTES = ("hist_sales", "market_potential", "headcount", "product_fit", "competitor_coverage")


def build(url: str, units: int) -> tuple[int, np.ndarray]:
    upgrade(url)
    engine = make_engine(url)
    with Session(engine) as session:
        session.add(OrgLevel(depth=0, key="person", name_en="Person", name_zh="个人"))
        period = Period(code="2026Q4", start_date=__import__("datetime").date(2026, 10, 1),
                        end_date=__import__("datetime").date(2026, 12, 31))
        session.add(period)
        session.flush()
        session.execute(insert(OrgUnit), [
            {"code": f"P{i:06d}", "depth": 0, "path": f"/{i}/", "name_en": f"P{i}", "name_zh": f"P{i}"}
            for i in range(1, units + 1)
        ])
        ids = np.array(session.scalars(select(OrgUnit.id).order_by(OrgUnit.id)).all())
        rng = np.random.default_rng(7)
        for name in ATTRIBUTES:
            values = rng.uniform(0, 1e6, len(ids))
            session.execute(insert(AttributeValue), [
                {"period_id": period.id, "name": name, "unit_id": int(u), "value": float(v)}
                for u, v in zip(ids, values, strict=True)
            ])
        session.commit()
        period_id = period.id
    engine.dispose()
    return period_id, ids


def orm_baseline(session: Session, period_id: int, name: str, ids: np.ndarray) -> np.ndarray:
    rows = session.scalars(
        select(AttributeValue).where(AttributeValue.period_id == period_id, AttributeValue.name == name)
    ).all()
    by_id = {row.unit_id: row.value for row in rows}
    return np.array([by_id.get(int(i), np.nan) for i in ids])


def median_seconds(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--units", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        print(f"building {args.units:,} units x {len(ATTRIBUTES)} attributes ...")
        period_id, ids = build(url, args.units)
        engine = make_engine(url)
        with Session(engine) as session:
            loaded = load_attribute_column(session, period_id, "market_potential", ids)
            assert np.array_equal(loaded, orm_baseline(session, period_id, "market_potential", ids))
            fast = median_seconds(lambda: load_attribute_column(session, period_id, "market_potential", ids),
                                  args.runs)
            slow = median_seconds(lambda: orm_baseline(session, period_id, "market_potential", ids), 3)
        engine.dispose()
    print(f"load_attribute_column ({args.units:,} units): {fast * 1000:8.1f} ms (median of {args.runs})")
    print(f"ORM objects baseline      ({args.units:,} units): {slow * 1000:8.1f} ms (median of 3)")
    print(f"ratio baseline / loader: {slow / fast:.1f}x; loader vs the 1 s budget: {fast:.3f} s")


if __name__ == "__main__":
    main()
