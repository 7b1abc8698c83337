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


def _binomial_counts(k, n) -> tuple[np.ndarray, np.ndarray]:
    k = np.asarray(k, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    k, n = np.broadcast_arrays(k, n)
    if np.any(n < 1) or np.any(k < 0) or np.any(k > n) or np.any(k != np.floor(k)) or np.any(n != np.floor(n)):
        raise ValueError("counts need integers 0 <= k <= n and n >= 1")
    return k, n


def _float_or_array(x: np.ndarray):
    return float(x) if x.ndim == 0 else x


def clopper_pearson(k, n, alpha: float = 0.05):
    """The exact two-sided (1 - alpha) interval for a binomial proportion from k successes in n.

    Beta quantiles: lower = Beta(alpha/2; k, n-k+1), upper = Beta(1-alpha/2; k+1, n-k), with
    lower = 0 at k = 0 and upper = 1 at k = n. Scalars give a pair of floats; arrays of k
    (with one n or an array of n, broadcast) give a pair of arrays.
    """
    k, n = _binomial_counts(k, n)
    with np.errstate(all="ignore"):
        lower = np.where(k == 0, 0.0, stats.beta.ppf(alpha / 2, np.maximum(k, 1), n - k + 1))
        upper = np.where(k == n, 1.0, stats.beta.ppf(1 - alpha / 2, k + 1, np.maximum(n - k, 1)))
    return _float_or_array(lower), _float_or_array(upper)


def clopper_pearson_upper(k, n, alpha: float = 0.05):
    """One-sided (1 - alpha) upper bound on a binomial proportion: Beta(1-alpha; k+1, n-k), 1 at k = n.

    Vectorised like `clopper_pearson`; the bound holds with probability at least 1 - alpha.
    """
    k, n = _binomial_counts(k, n)
    with np.errstate(all="ignore"):
        upper = np.where(k == n, 1.0, stats.beta.ppf(1 - alpha, k + 1, np.maximum(n - k, 1)))
    return _float_or_array(upper)


def clopper_pearson_lower(k, n, alpha: float = 0.05):
    """One-sided (1 - alpha) lower bound on a binomial proportion: Beta(alpha; k, n-k+1), 0 at k = 0."""
    k, n = _binomial_counts(k, n)
    with np.errstate(all="ignore"):
        lower = np.where(k == 0, 0.0, stats.beta.ppf(alpha, np.maximum(k, 1), n - k + 1))
    return _float_or_array(lower)
