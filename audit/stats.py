"""Summaries over seeds: every statistic carries its uncertainty and the number of models."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats


def summarize(
    values: Sequence[float], confidence: float = 0.95, bounds: tuple[float, float] | None = None
) -> dict:
    """Mean, sample std, Student-t interval of the mean, the values per seed and n.

    The interval assumes the per-seed values are independent and roughly normal; with
    `bounds` it is clipped to the range the quantity can take (a fraction cannot pass 1).
    With one value there is no spread to estimate: std and the interval are None.
    """
    array = np.asarray(list(values), dtype=np.float64)
    n = len(array)
    summary = {
        "mean": float(array.mean()) if n else None,
        "std": None,
        "ci95": None,
        "n": n,
        "per_seed": [float(v) for v in array],
    }
    if n >= 2:
        std = float(array.std(ddof=1))
        half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * std / math.sqrt(n))
        summary["std"] = std
        low, high = summary["mean"] - half, summary["mean"] + half
        if bounds is not None:
            low, high = max(low, bounds[0]), min(high, bounds[1])
        summary["ci95"] = [low, high]
    return summary
