"""Editing factor models as the builder does keeps them valid and the weights at 100."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quotaflow.rules import load_model
from quotaflow.rules.model_edit import (
    ModelEditError,
    rebalance,
    remove_factor,
    set_weights,
    upsert_factor,
)

SEED_MODEL = json.loads((Path(__file__).parents[2] / "quotaflow/seed_data/specs/factor_model.json").read_text())
CROSS_BORDER = {
    "key": "cross_border", "label_en": "Cross-border service capability", "label_zh": "跨境服务能力",
    "fields": ["cross_border_rating"], "expression": "cross_border_rating", "normalisation": "score",
}
RATING = {"name": "cross_border_rating", "type": "number", "min": 0, "max": 100, "required": False,
          "default": 0, "label_en": "Cross-border rating", "label_zh": "跨境服务能力评分"}


def test_adding_the_sixth_factor_rebalances_the_other_weights() -> None:
    doc = upsert_factor(SEED_MODEL, CROSS_BORDER, 10, [RATING])
    assert doc["weights"] == {"historical_performance": 27, "regional_potential": 22.5,
                              "team_maturity": 18, "product_fit": 13.5, "competitor_coverage": 9,
                              "cross_border": 10}
    model = load_model(doc)
    assert model.factor_keys[-1] == "cross_border"
    assert "cross_border_rating" in model.field_names
    assert SEED_MODEL["weights"]["historical_performance"] == 30  # the input is untouched


def test_editing_a_factor_replaces_it_in_place() -> None:
    doc = upsert_factor(SEED_MODEL, {**CROSS_BORDER, "key": "product_fit", "fields": ["product_fit"],
                                     "expression": "product_fit * 2"}, 15)
    keys = [f["key"] for f in doc["factors"]]
    assert keys == [f["key"] for f in SEED_MODEL["factors"]]
    assert doc["factors"][3]["expression"] == "product_fit * 2"
    assert doc["weights"] == SEED_MODEL["weights"]


def test_remove_and_set_weights() -> None:
    doc = remove_factor(SEED_MODEL, "competitor_coverage")
    assert sum(Decimal(str(w)) for w in doc["weights"].values()) == 100
    load_model(doc)
    with pytest.raises(ModelEditError) as error:
        set_weights(doc, {**doc["weights"], "product_fit": 1})
    assert error.value.pointer == "/weights"
    with pytest.raises(ModelEditError, match="no weight"):
        set_weights(doc, {"historical_performance": 100})


def test_rebalance_keeps_hundredths_exact() -> None:
    weights = rebalance({"a": 1, "b": 1, "c": 1, "d": 10}, "d")
    assert weights == {"a": 30.0, "b": 30.0, "c": 30.0, "d": 10.0}
    thirds = rebalance({"a": 1, "b": 1, "c": 1}, None)
    assert sorted(thirds.values()) == [33.33, 33.33, 33.34]


@given(st.dictionaries(st.sampled_from("abcdefgh"), st.integers(0, 100), min_size=2),
       st.integers(0, 100))
def test_rebalanced_weights_total_exactly_100(weights: dict[str, int], pinned: int) -> None:
    key = sorted(weights)[0]
    result = rebalance({**weights, key: pinned}, key)
    assert sum(Decimal(str(v)) for v in result.values()) == 100
    assert result[key] == pinned
    assert all(v >= 0 for v in result.values())
