"""``quotaflow allocate``: run a factor model over a units CSV from the command line.

    quotaflow allocate --model MODEL.json --units UNITS.csv --total AMOUNT
                       [--scenario NAME] [--format json|csv] [--out FILE]
                       [--scenarios PRESETS.json] [--risks RISKS.json]

Prints (or writes) every unit's target, explanation and risks. Without ``--scenario``
every preset runs (a summary per scenario with its plan-level risks, then its units).
Scenario presets and risk rules default to ``scenario_presets.json`` and
``risk_rules.json`` next to the model when they exist. Any invalid spec or data exits
non-zero with a message naming the place (JSON pointer, or CSV row and column).

Also runnable on its own: ``python -m quotaflow.allocate_cli --help``.
"""

from __future__ import annotations

import io
import json
import sys
from functools import partial
from pathlib import Path
from typing import Any

import click

from quotaflow.plugins import expression_functions
from quotaflow.rules.allocation import Plan, allocate, scores_for
from quotaflow.rules.model import FactorModel, load_model
from quotaflow.rules.risks import RiskReport, RiskRules, evaluate_risks, load_risk_rules
from quotaflow.rules.scenarios import ScenarioPresets, load_presets, run_scenarios
from quotaflow.rules.scoring import AllocationError
from quotaflow.rules.specs import SpecError
from quotaflow.rules.tree import TreeError, UnitTree, load_units_csv
from quotaflow.services import export_writer

PRESETS_FILE = "scenario_presets.json"
RISKS_FILE = "risk_rules.json"


class AmountType(click.ParamType):
    """A non-negative yuan amount: 249500000, 249,500,000, 249_500_000 or 2.495e8."""

    name = "amount"

    def convert(self, value: Any, param: Any, ctx: Any) -> float:
        try:
            amount = float(str(value).replace(",", "").replace("_", ""))
        except ValueError:
            self.fail(f"{value!r} is not an amount of yuan", param, ctx)
        if not (amount >= 0 and amount < 1e15):
            self.fail(f"{value!r} must be between 0 and 10^15 yuan", param, ctx)
        return amount


def _spec_failure(path: Path, exc: SpecError) -> click.ClickException:
    lines = [f"{path}: invalid {exc.kind}:"]
    lines += [f"  {issue}" for issue in exc.issues]
    return click.ClickException("\n".join(lines))


def _load(kind: str, path: Path, loader: Any, *args: Any) -> Any:
    try:
        return loader(path, *args)
    except SpecError as exc:
        raise _spec_failure(path, exc) from None
    except json.JSONDecodeError as exc:
        raise click.ClickException(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno}, "
                                   f"column {exc.colno}") from None
    except OSError as exc:
        raise click.ClickException(f"{path}: cannot read the {kind}: {exc.strerror}") from None


def _default_spec(given: str | None, model_path: Path, name: str) -> Path | None:
    if given:
        return Path(given)
    candidate = model_path.parent / name
    return candidate if candidate.exists() else None


def _unit_records(plan: Plan, report: RiskReport | None) -> list[dict[str, Any]]:
    """One dict per unit (output formatting: this loop is not part of the engine)."""
    tree = plan.tree
    keys = plan.model.factor_keys
    ids = tree.ids.tolist()
    parent = tree.parent.tolist()
    level = tree.level.tolist()
    target = plan.target.tolist()
    lower, upper = plan.lower.tolist(), plan.upper.tolist()
    locked = plan.locked.tolist()
    amounts = plan.factor_amounts.tolist()
    bounds = plan.bounds_adjustment.tolist()
    rounding = plan.rounding_adjustment.tolist()
    names = {k: v.tolist() for k, v in tree.labels.items()}
    root = tree.root
    flagged = set()
    if report is not None:
        for rows in report.unit_hits.values():
            flagged.update(rows.tolist())
    out = []
    for i in range(tree.size):
        rec: dict[str, Any] = {"id": ids[i], "parent": ids[parent[i]] if parent[i] >= 0 else None,
                               "level": level[i]}
        for k, col in names.items():
            rec[k] = col[i]
        rec.update({
            "target": target[i],
            "lower": int(lower[i]) if i != root else None,
            "upper": int(upper[i]) if i != root and upper[i] != float("inf") else None,
            "locked": locked[i],
            "explanation": {
                "factors": dict(zip(keys, amounts[i], strict=True)),
                "bounds_adjustment": bounds[i],
                "rounding_adjustment": rounding[i],
            },
            "risks": report.unit_risks(i) if i in flagged else [],
        })
        if i == root:
            rec["explanation"]["requested"] = plan.total
        out.append(rec)
    return out


def _csv_text(blocks: list[tuple[str, Plan, list[dict[str, Any]]]]) -> str:
    buf = io.StringIO()
    keys = blocks[0][1].model.factor_keys
    label_cols = [k for k in ("name_en", "name_zh") if k in blocks[0][2][0]]
    writer = export_writer.csv_writer(buf, lineterminator="\n")
    writer.writerow(["scenario", "id", "parent", "level", *label_cols, "target", "lower", "upper",
                     "locked", *[f"factor_{k}" for k in keys], "bounds_adjustment",
                     "rounding_adjustment", "risks"])
    for name, _plan, units in blocks:
        for u in units:
            ex = u["explanation"]
            writer.writerow([name, u["id"], u["parent"] or "", u["level"],
                             *[u[k] for k in label_cols], u["target"],
                             "" if u["lower"] is None else u["lower"],
                             "" if u["upper"] is None else u["upper"], int(u["locked"]),
                             *[ex["factors"][k] for k in keys], ex["bounds_adjustment"],
                             ex["rounding_adjustment"],
                             "; ".join(f"{r['severity']}: {r['message_en']}" for r in u["risks"])])
    return buf.getvalue()


def _summary_text(summary: dict[str, Any]) -> str:
    lines = [f"scenario {summary['scenario']} ({summary['label_en']} / {summary['label_zh']}): "
             f"requested {summary['requested_total']:,}, planned {summary['planned_total']:,}"]
    for risk in summary.get("plan_risks", []):
        lines.append(f"  [{risk['severity']}] {risk['message_en']}")
    counts = summary.get("unit_risk_counts")
    if counts:
        lines.append("  unit risks: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return "\n".join(lines)


def run(model: FactorModel, tree: UnitTree, total: float, presets: ScenarioPresets | None,
        rules: RiskRules | None, scenario: str | None) -> list[tuple[dict[str, Any], Plan,
                                                                     RiskReport | None]]:
    """The plans to print: the chosen scenario, every preset, or the model as is."""
    if presets is None:
        if scenario is not None:
            raise click.ClickException(f"--scenario {scenario}: no scenario presets (pass "
                                       f"--scenarios or put {PRESETS_FILE} next to the model)")
        plan = allocate(model, tree, total, scores=scores_for(model, tree))
        report = evaluate_risks(rules, plan) if rules is not None else None
        summary = {"scenario": "model", "label_en": "Model as published", "label_zh": "发布模型",
                   "requested_total": plan.total, "planned_total": plan.planned_total,
                   "infeasible": [x.as_dict() for x in plan.infeasible]}
        if report is not None:
            summary.update(report.summary())
        return [(summary, plan, report)]
    if scenario is not None and scenario not in presets.keys:
        raise click.ClickException(f"--scenario {scenario}: unknown scenario (known: "
                                   f"{', '.join(presets.keys)})")
    results = run_scenarios(model, tree, total, presets, risks=rules,
                            only=None if scenario is None else [scenario])
    return [(r.summary(), r.plan, r.risks) for r in results.values()]


@click.command("allocate")
@click.option("--model", "model_file", required=True,
              type=click.Path(exists=True, dir_okay=False), help="Factor-model JSON.")
@click.option("--units", "units_file", required=True,
              type=click.Path(exists=True, dir_okay=False),
              help="Units CSV: id, parent (empty for the root), [level], the model's fields.")
@click.option("--total", required=True, type=AmountType(), help="Company total in yuan.")
@click.option("--scenario", default=None, help="Run only this preset (default: all).")
@click.option("--format", "fmt", type=click.Choice(["json", "csv"]), default="json",
              show_default=True)
@click.option("--out", "out_file", type=click.Path(dir_okay=False, writable=True),
              default=None, help="Write here instead of standard output.")
@click.option("--scenarios", "presets_file", type=click.Path(exists=True, dir_okay=False),
              default=None, help=f"Scenario presets (default: {PRESETS_FILE} next to the model).")
@click.option("--risks", "risks_file", type=click.Path(exists=True, dir_okay=False),
              default=None, help=f"Risk rules (default: {RISKS_FILE} next to the model).")
def allocate_command(model_file: str, units_file: str, total: float, scenario: str | None,
                     fmt: str, out_file: str | None, presets_file: str | None,
                     risks_file: str | None) -> None:
    """Allocate a company total down the units by a factor model."""
    model_path = Path(model_file)
    model = _load("factor model", model_path,
                  partial(load_model, functions=expression_functions()))
    presets_path = _default_spec(presets_file, model_path, PRESETS_FILE)
    risks_path = _default_spec(risks_file, model_path, RISKS_FILE)
    presets = _load("scenario presets", presets_path, load_presets, model) if presets_path \
        else None
    rules = _load("risk rules", risks_path, load_risk_rules, model) if risks_path else None
    try:
        tree = load_units_csv(units_file, model)
        results = run(model, tree, total, presets, rules, scenario)
    except TreeError as exc:
        raise click.ClickException(f"{units_file}: {exc}") from None
    except AllocationError as exc:
        raise click.ClickException(f"{units_file}: {exc}") from None

    blocks = [(s["scenario"], plan, _unit_records(plan, report)) for s, plan, report in results]
    if fmt == "json":
        doc = {"model": {"id": model.id, "version": model.version,
                         "content_hash": model.content_hash},
               "company_total": round(total),
               "scenarios": [{**s, "units": units}
                             for (s, _, _), (_, _, units) in zip(results, blocks, strict=True)]}
        text = json.dumps(doc, ensure_ascii=False, indent=1) + "\n"
    else:
        text = _csv_text(blocks)
    summaries = "\n".join(_summary_text(s) for s, _, _ in results)
    if out_file:
        Path(out_file).write_text(text, encoding="utf-8")
        click.echo(summaries)
        click.echo(f"wrote {out_file}")
    else:
        if fmt == "csv":
            # Standard output stays a clean CSV; the summary goes to the terminal.
            click.echo(summaries, err=True)
        click.echo(text, nl=False)


def main() -> None:  # pragma: no cover - thin wrapper
    allocate_command(prog_name="quotaflow allocate")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
