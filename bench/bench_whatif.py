"""The what-if partial on the demo company: how fast a region head sees their targets move.

Seeds the demo company into a temporary SQLite database, saves a balanced plan for the
planning period, signs in as each region head and times (over the same run):

  partial   POST /whatif/<region>/results, the htmx answer a keystroke asks for: a
            changed weight and a few changed team and person inputs each time
            (different values every request, so nothing is answered from a cache of
            results; the region's loaded inputs are cached, as in production)
  cold      the same partial with the loaded-inputs cache emptied before each request
            (what every request would cost without the cache)
  compute   the service part of it (whatif.run: patch columns, allocate the subtree)
  page      GET /whatif/<region>, the full page (the baseline a page reload would cost)
  resim     plans.simulate for one scenario: the whole company re-simulated from the
            database (the baseline without a sandbox)

and prints medians and p95 in milliseconds, and the ratios of the baselines to the
partial. Prints, asserts no timings. Run: python bench/bench_whatif.py [--requests 200]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REGIONS = ("EAST", "NORTH", "SOUTH", "WEST", "CENTRAL", "NE")
PASSWORD = "bench-only-password"
TOTAL = 249_500_000


def timed(fn: Callable[[], object], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def p95(values: list[float]) -> float:
    return float(np.percentile(values, 95))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="partial requests to time")
    parser.add_argument("--baseline-runs", type=int, default=15)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="qf-bench-whatif-"))
    os.environ["QUOTAFLOW_INSTANCE_PATH"] = str(tmp)
    from quotaflow import create_app
    from quotaflow.i18n import compile_catalogs
    from quotaflow.services import plans, whatif
    from quotaflow.services.seeding import load_demo
    from quotaflow.store import db
    from quotaflow.store import queries as q
    from quotaflow.store.migrate import upgrade

    compile_catalogs()
    url = f"sqlite:///{tmp / 'bench.db'}"
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench-secret-key-not-for-production"})
    upgrade(url)
    with app.app_context():
        load_demo(db.session, password=PASSWORD)
        period = q.periods(db.session)[-1]
        plan = plans.create_plan(db.session, q.user_by_username(db.session, "admin"), period,
                                 "balanced", TOTAL, "what-if bench")
        plan_id, period_code = plan.id, period.code
        regions = [code for code in REGIONS if q.unit_by_code(db.session, code) is not None]
        sizes = {code: whatif.open_base(db.session, q.unit_by_code(db.session, code),
                                        plan).tree.size for code in regions}
    print(f"demo company, period {period_code}, plan {plan_id}; units per region: "
          + ", ".join(f"{c} {n}" for c, n in sizes.items()))

    rng = np.random.default_rng(7)
    clients, tokens = {}, {}
    for code in regions:
        client = app.test_client()
        username = f"head.{code.lower()}"
        login = client.get("/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', login).group(1)
        response = client.post("/login", data={"username": username, "password": PASSWORD,
                                               "csrf_token": token})
        if response.status_code != 302:
            raise SystemExit(f"could not sign in as {username}")
        page = client.get(f"/whatif/{code}?plan={plan_id}")
        if page.status_code != 200:
            raise SystemExit(f"/whatif/{code}: {page.status_code}")
        html = page.get_data(as_text=True)
        tokens[code] = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
        clients[code] = client

    with app.app_context():
        people = {}
        for code in regions:
            base = whatif.open_base(db.session, q.unit_by_code(db.session, code), plan)
            teams = base.children(0)
            people[code] = (
                [str(base.tree.ids[t]) for t in teams],
                [str(base.tree.ids[p]) for p in base.children(int(teams[0]))],
                {str(base.tree.ids[t]): float(base.tree.fields["market_potential"][t])
                 for t in teams})

    def form(code: str) -> dict[str, str]:
        teams, persons, potential = people[code]
        team = teams[int(rng.integers(len(teams)))]
        data = {"plan": str(plan_id),
                "w:historical_performance": f"{rng.uniform(22, 38):.1f}",
                f"in:{team}:market_potential": f"{potential[team] * rng.uniform(0.8, 1.2):.0f}",
                f"in:{teams[0]}:product_fit": f"{rng.uniform(40, 100):.1f}",
                "expand": teams[0]}
        for person in persons[:3]:
            data[f"in:{person}:avg_tenure_months"] = f"{rng.uniform(3, 60):.0f}"
        return data

    def partial(code: str) -> None:
        response = clients[code].post(f"/whatif/{code}/results", data=form(code),
                                      headers={"HX-Request": "true",
                                               "X-CSRFToken": tokens[code]})
        if response.status_code != 200 or b'data-testid="whatif-error"' in response.data:
            raise SystemExit(f"partial failed for {code}: {response.data[:300]!r}")

    # Warm up: every region's inputs loaded once (the cache a running server keeps).
    for code in regions:
        partial(code)
    partial_ms = []
    for k in range(args.requests):
        code = regions[k % len(regions)]
        partial_ms.extend(timed(lambda code=code: partial(code), 1))

    def cold(code: str) -> None:
        whatif.clear_cache()
        partial(code)

    cold_ms = []
    for k in range(args.baseline_runs):
        code = regions[k % len(regions)]
        cold_ms.extend(timed(lambda code=code: cold(code), 1))

    with app.app_context():
        units = {code: q.unit_by_code(db.session, code) for code in regions}
        plan_row = plans.pq.plan_by_id(db.session, plan_id)
        compute_ms = []
        for k in range(args.requests):
            code = regions[k % len(regions)]
            data = form(code)
            inputs = {(key.split(":")[1], key.split(":")[2]): v for key, v in data.items()
                      if key.startswith("in:")}
            weights = {key[2:]: v for key, v in data.items() if key.startswith("w:")}
            compute_ms.extend(timed(lambda code=code, i=inputs, w=weights: whatif.run(
                db.session, units[code], plan_row, inputs=i, weights=w), 1))
        resim_ms = timed(lambda: plans.simulate(db.session, plan_row.period, TOTAL,
                                                scenario="balanced"), args.baseline_runs)

    page_ms = []
    for k in range(args.baseline_runs):
        code = regions[k % len(regions)]
        page_ms.extend(timed(lambda code=code: clients[code].get(
            f"/whatif/{code}?plan={plan_id}"), 1))

    rows = [("partial", partial_ms), ("cold", cold_ms), ("compute", compute_ms),
            ("page", page_ms),
            ("resim", resim_ms)]
    print(f"{'':10}{'runs':>6}{'median ms':>12}{'p95 ms':>10}")
    for name, values in rows:
        print(f"{name:10}{len(values):>6}{statistics.median(values):>12.2f}{p95(values):>10.2f}")
    med = statistics.median(partial_ms)
    print(f"cold / partial (median):  {statistics.median(cold_ms) / med:.1f}x")
    print(f"page / partial (median):  {statistics.median(page_ms) / med:.1f}x")
    print(f"resim / partial (median): {statistics.median(resim_ms) / med:.1f}x")
    print(f"partial p95 {p95(partial_ms):.1f} ms "
          f"({'under' if p95(partial_ms) < 100 else 'OVER'} the 100 ms goal)")


if __name__ == "__main__":
    main()
