"""First-party plugin: expression functions for sales capacity.

``ramp(tenure_months, months_to_full)`` is the share of full productivity a sales
person reaches after ``tenure_months``: 25% in the first three months, rising
linearly to 100% at ``months_to_full``. Usable in any spec expression, e.g. a
capacity bound ``headcount * 700000 * ramp(avg_tenure_months, 18)``.
"""

from __future__ import annotations

import numpy as np

START_SHARE = 0.25
START_MONTHS = 3.0


def ramp_scalar(tenure: float, full_at: float) -> float:
    if full_at <= START_MONTHS:
        raise ValueError("months_to_full must be more than 3")
    progress = (tenure - START_MONTHS) / (full_at - START_MONTHS)
    return START_SHARE + (1 - START_SHARE) * min(1.0, max(0.0, progress))


def ramp_vector(tenure: np.ndarray, full_at: np.ndarray) -> np.ndarray:
    if np.any(np.asarray(full_at) <= START_MONTHS):
        raise ValueError("months_to_full must be more than 3")
    progress = (tenure - START_MONTHS) / (full_at - START_MONTHS)
    return START_SHARE + (1 - START_SHARE) * np.clip(progress, 0.0, 1.0)


def register(registry) -> None:  # noqa: ANN001 - the PluginRegistry
    registry.functions.register("ramp", scalar=ramp_scalar, vector=ramp_vector, arity=(2, 2))
