"""Summaries over seeds: every statistic carries its uncertainty and the number of models."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats


def summarize(values: Sequence[float], confidence: float = 0.95) -> dict:
    """Mean, sample std, Student-t interval of the mean, the values per seed and n.

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
        summary["ci95"] = [summary["mean"] - half, summary["mean"] + half]
    return summary
