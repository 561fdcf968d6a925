"""Plugins add expression functions without changing QuotaFlow's code."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from quotaflow.plugins import PluginError, discover, expression_functions
from quotaflow.rules import ExpressionError, compile_expression


def test_first_party_ramp_function_agrees_in_both_evaluators() -> None:
    expression = compile_expression("ramp(tenure, 18)", {"tenure": "number"},
                                    functions=expression_functions())
    tenure = np.array([0.0, 3.0, 10.5, 18.0, 40.0])
    values = expression.evaluate({"tenure": tenure})
    assert values.tolist() == [0.25, 0.25, 0.625, 1.0, 1.0]
    assert [expression.evaluate_row({"tenure": t}) for t in tenure] == values.tolist()


def test_plugin_function_errors_name_the_row() -> None:
    expression = compile_expression("ramp(tenure, 2)", {"tenure": "number"},
                                    functions=expression_functions())
    with pytest.raises(ExpressionError) as error:
        expression.evaluate({"tenure": np.array([5.0])})
    assert error.value.row == 0


def test_unknown_without_the_plugin() -> None:
    with pytest.raises(ExpressionError) as error:
        compile_expression("ramp(tenure, 18)", {"tenure": "number"})
    assert error.value.code == "unknown_function"


def test_plugins_from_a_folder(tmp_path: Path) -> None:
    (tmp_path / "triple.py").write_text(
        "def register(registry):\n"
        "    registry.functions.register('triple', scalar=lambda x: 3 * x, vector=lambda x: 3 * x)\n"
    )
    (tmp_path / "_private.py").write_text("raise RuntimeError('never imported')\n")
    registry = discover([tmp_path])
    assert "triple" in registry.loaded
    expression = compile_expression("triple(x)", {"x": "number"}, functions=registry.functions)
    assert expression.evaluate({"x": np.array([2.0])}).tolist() == [6.0]


def test_a_broken_plugin_is_named(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("VALUE = 1\n")
    with pytest.raises(PluginError, match="'broken' has no register"):
        discover([tmp_path])


def test_factor_models_may_call_plugin_functions(tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner

    from quotaflow.allocate_cli import allocate_command

    model = json.loads((Path(__file__).parents[1] / "quotaflow/seed_data/specs/factor_model.json").read_text())
    model["policies"]["default"]["upper"] = "headcount * 700000 * ramp(avg_tenure_months, 18) * 1.5"
    path = tmp_path / "model.json"
    path.write_text(json.dumps(model))
    units = Path(__file__).parents[1] / "quotaflow/seed_data/units.csv"
    result = CliRunner().invoke(allocate_command, ["--model", str(path), "--units", str(units),
                                                   "--total", "200000000", "--format", "csv",
                                                   "--scenarios", str(units.parent / "specs/scenario_presets.json")])
    assert result.exit_code == 0, result.output
    assert "scenario balanced" in result.output


def test_the_inbox_channel_is_built_in(tmp_path) -> None:
    """A deployment pointing QUOTAFLOW_PLUGIN_PATH at its own folder keeps in-app
    notifications: the inbox does not come from the first-party plugin folder."""
    from quotaflow.plugins import discover

    registry = discover([tmp_path])
    assert "inbox" in registry.channels and registry.channel_info["inbox"].per_recipient
