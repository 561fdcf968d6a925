"""Editing a factor-model document the way the factor builder does, without JSON.

Pure functions from a document to a new document: add or change a factor with its new
input fields, remove one, set or rebalance the weights. The result is validated by
``load_model`` like any other spec; these functions only keep the document coherent
(a factor's weight entry, its declared fields) and the weights summing to exactly 100.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from decimal import ROUND_FLOOR, Decimal
from typing import Any

WEIGHT_STEP = Decimal("0.01")  # weights are kept to hundredths of a percent
TOTAL = Decimal(100)


class ModelEditError(ValueError):
    """An edit that cannot apply; ``pointer`` says where in the document."""

    def __init__(self, pointer: str, code: str, message: str) -> None:
        super().__init__(message)
        self.pointer, self.code, self.message = pointer, code, message


def upsert_factor(
    doc: Mapping[str, Any],
    factor: Mapping[str, Any],
    weight: float,
    new_fields: Sequence[Mapping[str, Any]] = (),
    *,
    rebalance_others: bool = True,
) -> dict[str, Any]:
    """Add ``factor`` (or replace the one with its key) at ``weight`` percent.

    ``new_fields`` are input fields to declare (replacing same-named ones). With
    ``rebalance_others`` the other weights shrink or grow in proportion so the total
    stays exactly 100; otherwise they are kept and the caller balances them.
    """
    out = copy.deepcopy(dict(doc))
    fields = list(out.get("fields", []))
    for field in new_fields:
        name = field.get("name")
        fields = [f for f in fields if f.get("name") != name] + [dict(field)]
    out["fields"] = fields
    key = factor.get("key")
    if not key:
        raise ModelEditError("/factors/-/key", "missing_key", "a factor needs a key")
    factors = [dict(f) for f in out.get("factors", [])]
    index = next((i for i, f in enumerate(factors) if f.get("key") == key), None)
    if index is None:
        factors.append(dict(factor))
    else:
        factors[index] = dict(factor)
    out["factors"] = factors
    weights = dict(out.get("weights", {}))
    weights[key] = weight
    out["weights"] = rebalance(weights, key) if rebalance_others else weights
    return out


def remove_factor(doc: Mapping[str, Any], key: str) -> dict[str, Any]:
    """Drop a factor and its weight; the remaining weights are rebalanced to 100."""
    out = copy.deepcopy(dict(doc))
    kept = [f for f in out.get("factors", []) if f.get("key") != key]
    if len(kept) == len(out.get("factors", [])):
        raise ModelEditError(f"/weights/{key}", "unknown_factor", f"no factor {key!r}")
    if not kept:
        raise ModelEditError("/factors", "last_factor", "a model needs at least one factor")
    out["factors"] = kept
    weights = {k: v for k, v in out.get("weights", {}).items() if k != key}
    out["weights"] = rebalance(weights, None)
    return out


def set_weights(doc: Mapping[str, Any], weights: Mapping[str, float]) -> dict[str, Any]:
    """Replace all weights; they must name every factor and total exactly 100."""
    keys = [f.get("key") for f in doc.get("factors", [])]
    unknown = sorted(set(weights) - set(keys))
    if unknown:
        raise ModelEditError(f"/weights/{unknown[0]}", "unknown_factor", f"no factor {unknown[0]!r}")
    missing = [k for k in keys if k not in weights]
    if missing:
        raise ModelEditError(f"/weights/{missing[0]}", "missing_weight", f"no weight for {missing[0]!r}")
    total = sum(Decimal(str(w)) for w in weights.values())
    if total != TOTAL:
        raise ModelEditError("/weights", "weights_total", f"weights total {total}, not 100")
    out = copy.deepcopy(dict(doc))
    out["weights"] = {k: weights[k] for k in keys}
    return out


def rebalance(weights: Mapping[str, float], fixed: str | None) -> dict[str, float]:
    """Scale every weight but ``fixed`` so the total is exactly 100.

    Shares are kept in proportion, in hundredths of a percent, the last hundredths
    going to the largest remainders (ties: the order given), so the sum is exact.
    """
    pinned = Decimal(str(weights[fixed])) if fixed is not None else Decimal(0)
    if not Decimal(0) <= pinned <= TOTAL:
        raise ModelEditError(f"/weights/{fixed}", "weight_range", "a weight lies between 0 and 100")
    others = {k: Decimal(str(v)) for k, v in weights.items() if k != fixed}
    room = TOTAL - pinned
    base = sum(others.values())
    if not others:
        if room != 0:
            raise ModelEditError("/weights", "weights_total", "a single factor carries 100%")
        return {fixed: float(pinned)} if fixed is not None else {}
    if base == 0:  # nothing to keep in proportion: share the room equally
        others = dict.fromkeys(others, Decimal(1))
        base = Decimal(len(others))
    exact = {k: v * room / base for k, v in others.items()}
    floored = {k: v.quantize(WEIGHT_STEP, rounding=ROUND_FLOOR) for k, v in exact.items()}
    left = int((room - sum(floored.values())) / WEIGHT_STEP)
    order = sorted(exact, key=lambda k: exact[k] - floored[k], reverse=True)
    for k in order[:left]:
        floored[k] += WEIGHT_STEP
    result = {k: float(floored[k]) for k in weights if k != fixed}
    if fixed is not None:
        result[fixed] = float(pinned)
    return {k: result[k] for k in weights}
