"""Factor-model specs: schema, semantic checks with JSON pointers, compiled dataclasses."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from quotaflow.rules.model import FactorModel, ModelError, load_model
from quotaflow.rules.specs import load_schema

ROOT = Path(__file__).resolve().parents[2]
SEED_MODEL = ROOT / "quotaflow" / "seed_data" / "specs" / "factor_model.json"


def base_doc() -> dict:
    return {
        "id": "m", "version": 1, "levels": ["company", "region", "person"],
        "fields": [
            {"name": "hist", "type": "number", "min": 0},
            {"name": "pot", "type": "number", "min": 0},
            {"name": "fit", "type": "number", "min": 0, "max": 100},
            {"name": "heads", "type": "integer", "min": 0},
            {"name": "new", "type": "boolean", "required": False, "default": False},
        ],
        "factors": [
            {"key": "history", "label_en": "History", "label_zh": "历史", "fields": ["hist"],
             "expression": "hist", "normalisation": "share"},
            {"key": "potential", "fields": ["pot", "new"],
             "expression": "pot * 1.5 if new else pot", "normalisation": "share"},
            {"key": "fit", "fields": ["fit", "heads"], "expression": "fit",
             "normalisation": "score", "scale": "heads"},
        ],
        "weights": {"history": 50, "potential": 30, "fit": 20},
        "policies": {
            "default": {"lower": "hist * 0.9", "upper": "hist * 1.6", "rounding_unit": 1000},
            "region": {"rounding_unit": 10000},
        },
    }


def issues_of(doc: dict) -> list:
    with pytest.raises(ModelError) as info:
        load_model(doc)
    return info.value.issues


def test_seed_model_loads_with_the_case_weights() -> None:
    model = load_model(SEED_MODEL)
    assert isinstance(model, FactorModel)
    assert model.factor_keys == ("historical_performance", "regional_potential",
                                 "team_maturity", "product_fit", "competitor_coverage")
    assert model.weight_percent == (30, 25, 20, 15, 10)
    assert np.isclose(model.weights.sum(), 1.0)
    assert model.levels == ("company", "region", "team", "person")
    assert model.policy("region").rounding_unit == 10000
    assert model.policy("person").rounding_unit == 1000
    # Levels inherit the default bounds.
    assert model.policy("team").upper_source == model.policy("default").upper_source
    assert len(model.content_hash) == 64
    # Every column the seed generator writes that the model reads is declared.
    header = (ROOT / "quotaflow" / "seed_data" / "units.csv").read_text(encoding="utf-8").splitlines()[0].split(",")
    assert set(model.field_names) <= set(header)


def test_schemas_have_ids_and_are_valid() -> None:
    from jsonschema import Draft202012Validator

    for name in ("factor-model", "scenario-presets", "risk-rules"):
        schema = load_schema(name)
        Draft202012Validator.check_schema(schema)
        assert schema["$id"] == f"https://quotaflow.dev/schemas/{name}.schema.json"
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_compiled_dataclasses() -> None:
    model = load_model(base_doc())
    f = model.factors[1]
    assert f.fields == ("pot", "new") and f.expression.names == ("new", "pot")
    assert model.factors[2].scale.names == ("heads",)
    assert model.factors[0].label_zh == "历史"
    assert model.factors[1].label_en == "potential"  # falls back to the key
    pol = model.policy("region")
    assert pol.rounding_unit == 10000 and pol.lower_source == "hist * 0.9"
    assert model.policy("person").rounding_unit == 1000  # from the default
    out = pol.upper.evaluate({"hist": np.array([10.0, 20.0])})
    assert out.tolist() == [16.0, 32.0]


def test_schema_errors_carry_pointers() -> None:
    doc = base_doc()
    doc["factors"][1]["normalisation"] = "percent"
    del doc["weights"]
    pointers = {i.pointer for i in issues_of(doc)}
    assert "/factors/1/normalisation" in pointers
    assert "" in pointers  # the missing "weights" is reported at the document root


def test_unknown_field_in_expression_names_the_column() -> None:
    doc = base_doc()
    doc["factors"][0]["expression"] = "hist + histt"
    (issue,) = issues_of(doc)
    assert issue.pointer == "/factors/0/expression"
    assert issue.column == 8
    assert "histt" in issue.message


def test_expression_reading_an_unlisted_field() -> None:
    doc = base_doc()
    doc["factors"][0]["expression"] = "hist + pot"
    (issue,) = issues_of(doc)
    assert issue.pointer == "/factors/0/expression"
    assert issue.code == "unlisted_field" and issue.column == 8


def test_factor_field_not_declared() -> None:
    doc = base_doc()
    doc["factors"][0]["fields"] = ["hist", "margin"]
    (issue,) = issues_of(doc)
    assert issue.pointer == "/factors/0/fields/1"
    assert "margin" in issue.message


def test_measure_must_be_a_number() -> None:
    doc = base_doc()
    doc["factors"][0]["expression"] = "hist > 0"
    (issue,) = issues_of(doc)
    assert issue.pointer == "/factors/0/expression"
    assert issue.code == "expression.type"


@pytest.mark.parametrize("weights, ok", [
    ({"history": 50, "potential": 30, "fit": 20}, True),
    ({"history": 33.3, "potential": 33.3, "fit": 33.4}, True),
    ({"history": 50, "potential": 30, "fit": 19.99}, False),
    ({"history": 50, "potential": 30, "fit": 30}, False),
    ({"history": 0.5, "potential": 0.3, "fit": 0.2}, False),  # percent, not fractions
])
def test_weights_must_total_exactly_100(weights: dict, ok: bool) -> None:
    doc = base_doc()
    doc["weights"] = weights
    if ok:
        assert load_model(doc).weights.sum() == pytest.approx(1.0)
    else:
        (issue,) = issues_of(doc)
        assert issue.pointer == "/weights" and issue.code == "weights_total"


def test_weight_keys_must_match_factors() -> None:
    doc = base_doc()
    doc["weights"] = {"history": 70, "potential": 20, "margin": 10}
    pointers = {i.pointer: i.code for i in issues_of(doc)}
    assert pointers["/weights/margin"] == "unknown_factor"
    assert pointers["/factors/2/key"] == "missing_weight"


def test_duplicates() -> None:
    doc = base_doc()
    doc["factors"].append(copy.deepcopy(doc["factors"][0]))
    doc["fields"].append({"name": "hist", "type": "number"})
    found = {(i.pointer, i.code) for i in issues_of(doc)}
    assert ("/factors/3/key", "duplicate") in found
    assert ("/fields/5/name", "duplicate") in found


def test_policy_errors() -> None:
    doc = base_doc()
    doc["policies"]["region"]["upper"] = "hist * (1.6"
    doc["policies"]["team"] = {"rounding_unit": 100}
    doc["policies"]["default"]["lower"] = "hist * growth"
    found = {i.pointer: i for i in issues_of(doc)}
    assert found["/policies/region/upper"].code.startswith("expression.")
    assert found["/policies/team"].code == "unknown_level"
    assert found["/policies/default/lower"].column == 8


def test_scale_only_for_scores_and_range_checks() -> None:
    doc = base_doc()
    doc["factors"][0]["scale"] = "hist"
    doc["fields"][0]["max"] = -1
    found = {i.pointer: i.code for i in issues_of(doc)}
    assert found["/factors/0/scale"] == "scale"
    assert found["/fields/0/min"] == "range"


def test_a_unit_is_locked_once() -> None:
    doc = base_doc()
    doc["policies"]["default"]["locks"] = {"P1": 1000}
    doc["policies"]["region"]["locks"] = {"P1": 2000}
    (issue,) = issues_of(doc)
    assert issue.pointer == "/policies/region/locks/P1"


def test_all_issues_are_reported_at_once() -> None:
    doc = base_doc()
    doc["factors"][0]["expression"] = "nope"
    doc["weights"]["fit"] = 10
    with pytest.raises(ModelError) as info:
        load_model(doc)
    err = info.value
    assert len(err.issues) == 2
    assert "and 1 more" in str(err)
    assert err.pointer == "/factors/0/expression"


def test_derive_overrides_reach_inheriting_levels() -> None:
    model = load_model(base_doc())
    derived = model.derive(weight_percent=(40, 40, 20),
                           policy_overrides={"default": {"upper": "hist * 3"}})
    assert derived.policy("region").upper_source == "hist * 3"
    assert derived.policy("region").rounding_unit == 10000
    assert derived.weight_percent == (40, 40, 20)
    assert model.policy("region").upper_source == "hist * 1.6"  # the original is untouched


def test_load_from_file(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text(json.dumps(base_doc()), encoding="utf-8")
    assert load_model(path).id == "m"
