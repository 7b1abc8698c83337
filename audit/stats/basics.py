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


# ---------------------------------------------------------------------------
# Multiple testing, per-example two-sample tests, equivalence and high-confidence epsilon.
# ---------------------------------------------------------------------------


def benjamini_hochberg(p_values, q: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Step-up Benjamini-Hochberg over n p-values: (rejected, adjusted p).

    Adjusted p of the i-th smallest is min over j >= i of p_(j)·n/j, capped at 1 (the values
    `scipy.stats.false_discovery_control` gives); a hypothesis is rejected when its adjusted
    p is at most q, which is the step-up rule: reject the k smallest, k the largest i with
    p_(i) <= i·q/n. Controls the false discovery rate at q under independence or positive
    dependence.
    """
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError("p_values must be one-dimensional")
    if np.any(np.isnan(p)) or np.any(p < 0) or np.any(p > 1):
        raise ValueError("p-values must lie in [0, 1]")
    n = len(p)
    if n == 0:
        return np.zeros(0, dtype=bool), np.zeros(0)
    order = np.argsort(p, kind="stable")
    scaled = p[order] * n / np.arange(1, n + 1)
    monotone = np.minimum.accumulate(scaled[::-1])[::-1]
    adjusted = np.empty(n)
    adjusted[order] = np.minimum(monotone, 1.0)
    return adjusted <= q, adjusted


def _two_sides(u, r) -> tuple[np.ndarray, np.ndarray]:
    u = np.asarray(u, dtype=np.float64)
    r = np.asarray(r, dtype=np.float64)
    if u.ndim == 1:
        u = u[:, None]
    if r.ndim == 1:
        r = r[:, None]
    if u.ndim != 2 or r.ndim != 2 or u.shape[1] != r.shape[1]:
        raise ValueError("u and r must be (models, examples) with the same number of examples")
    if len(u) < 1 or len(r) < 1:
        raise ValueError("each side needs at least one model")
    return u, r


def ks_per_example(u, r) -> tuple[np.ndarray, np.ndarray]:
    """Two-sample Kolmogorov-Smirnov test per example between unlearned u (N_u, n) and
    retrained r (N_r, n), column by column: (statistic (n,), p (n,)).

    The statistic sup_x |F_u(x) − F_r(x)| lies in [0, 1] and is itself the effect size; report
    it beside p, since p shrinks with the number of models even for a fixed small difference.
    p is scipy's (exact for small samples, asymptotic otherwise), two-sided.
    """
    u, r = _two_sides(u, r)
    result = stats.ks_2samp(u, r, axis=0)
    return np.atleast_1d(np.asarray(result.statistic, dtype=np.float64)), np.atleast_1d(
        np.asarray(result.pvalue, dtype=np.float64)
    )


def cohens_d_per_example(u, r) -> np.ndarray:
    """Standardised effect size per example: Cohen's d = (mean_u − mean_r) / pooled sd, with
    pooled sd² = ((N_u−1)·s_u² + (N_r−1)·s_r²) / (N_u + N_r − 2). 0 where both means and the
    pooled sd are 0, ±inf where only the sd is 0. Needs N_u + N_r >= 3."""
    u, r = _two_sides(u, r)
    nu, nr = len(u), len(r)
    if nu + nr < 3:
        raise ValueError("Cohen's d needs at least three models in all")
    var_u = u.var(axis=0, ddof=1) if nu > 1 else np.zeros(u.shape[1])
    var_r = r.var(axis=0, ddof=1) if nr > 1 else np.zeros(r.shape[1])
    pooled = np.sqrt(((nu - 1) * var_u + (nr - 1) * var_r) / (nu + nr - 2))
    diff = u.mean(axis=0) - r.mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = diff / pooled
    return np.where((diff == 0) & (pooled == 0), 0.0, d)


def permutation_per_example(
    u, r, rng: np.random.Generator, resamples: int = 1000
) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided permutation test of the difference in means per example: (statistic, p).

    statistic = mean_u − mean_r per column of u (N_u, n) and r (N_r, n). The same random
    relabelling of the N_u + N_r models is applied to every column (one matrix product per
    chunk of permutations), and p = (1 + #{|perm stat| >= |observed|}) / (1 + resamples),
    which is a valid p-value at any number of resamples. The standardised effect size to
    report beside it is `cohens_d_per_example(u, r)`.
    """
    u, r = _two_sides(u, r)
    if resamples < 1:
        raise ValueError("resamples must be at least 1")
    nu, nr = len(u), len(r)
    pooled = np.concatenate([u, r], axis=0)
    observed = u.mean(axis=0) - r.mean(axis=0)
    # Relative tolerance so that permutations reproducing the observed split count as ties.
    scale = np.abs(pooled).max(axis=0) + 1.0
    target = np.abs(observed) - 1e-12 * scale
    weights_template = np.concatenate([np.full(nu, 1.0 / nu), np.full(nr, -1.0 / nr)])
    exceed = np.zeros(u.shape[1], dtype=np.int64)
    chunk = max(1, min(resamples, 2**22 // max(1, pooled.shape[1])))
    done = 0
    while done < resamples:
        size = min(chunk, resamples - done)
        weights = rng.permuted(np.broadcast_to(weights_template, (size, nu + nr)), axis=1)
        permuted = weights @ pooled
        exceed += (np.abs(permuted) >= target).sum(axis=0)
        done += size
    return observed, (1.0 + exceed) / (1.0 + resamples)


def epsilon_from_rates(fpr, fnr, delta: float) -> np.ndarray:
    """The hypothesis-testing bound max(ln((1−δ−FPR)/FNR), ln((1−δ−FNR)/FPR)), elementwise:
    +inf where a rate is 0 and its partner's numerator positive; a term whose numerator is
    not positive gives no bound (−inf)."""
    fpr = np.asarray(fpr, dtype=np.float64)
    fnr = np.asarray(fnr, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.log((1 - delta - fpr) / fnr)
        b = np.log((1 - delta - fnr) / fpr)
    a = np.where(np.isnan(a), -np.inf, a)
    b = np.where(np.isnan(b), -np.inf, b)
    return np.maximum(a, b)


def epsilon_high_confidence(
    u, r, rng: np.random.Generator, alpha: float = 0.05, delta: float = 1e-5
) -> dict:
    """Per-example lower bound on ε that holds with confidence 1 − α, from unlearned u (N_u, n)
    and retrained r (N_r, n) values.

    The models of each side are split at random into a selection half (N//2) and a bounding
    half (the rest); the split is shared by all examples. On the selection half, per example,
    the candidate thresholds are the midpoints between consecutive distinct pooled values
    (sorted); a threshold t with direction +1 flags x > t as unlearned, with −1 flags x <= t.
    FPR = share of retrained flagged, FNR = share of unlearned not flagged. The pair (t,
    direction) maximising the point-estimate bound
        ε = max(ln((1−δ−FPR)/FNR), ln((1−δ−FNR)/FPR))
    is kept; ties (notably the +inf of a zero rate) are broken by the same bound with the
    counts smoothed to (k + ½)/(n + 1). On the bounding half the rates at that threshold are
    bounded by one-sided Clopper-Pearson upper bounds at α/2 each, so both hold together with
    probability >= 1 − α; as the bound decreases in both rates, plugging them in gives a lower
    bound on ε, floored at 0.

    Returns numpy arrays and floats: eps (n,), threshold (n,), direction (n,), median, q90,
    q99, alpha, delta, n_per_side_bounding (the smaller bounding half), n_bounding_unlearned,
    n_bounding_retrained, and max_certifiable = the bound with FPR = FNR = 0 observed on the
    bounding half, ln((1−δ−U)/U') with U = 1 − (α/2)^{1/k}: the resolution of the audit,
    which grows only like ln k with k models per side.
    """
    u, r = _two_sides(u, r)
    nu, nr = len(u), len(r)
    if nu < 2 or nr < 2:
        raise ValueError("each side needs at least two models (one to select, one to bound)")
    n = u.shape[1]
    perm_u, perm_r = rng.permutation(nu), rng.permutation(nr)
    su, sr = nu // 2, nr // 2
    u_sel, u_bnd = u[perm_u[:su]], u[perm_u[su:]]
    r_sel, r_bnd = r[perm_r[:sr]], r[perm_r[sr:]]
    ku, kr = nu - su, nr - sr

    # Selection: sort the pooled selection half per column and count with cumulative sums.
    pooled = np.concatenate([u_sel, r_sel], axis=0)
    is_u = np.concatenate([np.ones(su), np.zeros(sr)])
    order = np.argsort(pooled, axis=0, kind="stable")
    values = np.take_along_axis(pooled, order, axis=0)
    labels = is_u[order]
    u_below = np.cumsum(labels, axis=0)[:-1]  # #{u_sel <= t_j}, t_j between sorted j and j+1
    r_below = np.arange(1, su + sr)[:, None] - u_below  # #{r_sel <= t_j}
    valid = values[1:] > values[:-1]
    thresholds = (values[1:] + values[:-1]) / 2
    # Direction +1 (flag x > t): FPR = r_above/sr, FNR = u_below/su; direction −1 swaps to
    # FPR = r_below/sr, FNR = u_above/su.
    fp = np.stack([sr - r_below, r_below])
    fn = np.stack([u_below, su - u_below])
    point = epsilon_from_rates(fp / sr, fn / su, delta)
    smooth = epsilon_from_rates((fp + 0.5) / (sr + 1), (fn + 0.5) / (su + 1), delta)
    point = np.where(valid[None], point, -np.inf).reshape(-1, n)
    smooth = np.where(valid[None], smooth, -np.inf).reshape(-1, n)
    best = point.max(axis=0)
    key = np.where(point == best[None], smooth, -np.inf)
    choice = np.argmax(key, axis=0)
    n_thresholds = thresholds.shape[0]
    direction = np.where(choice < n_thresholds, 1, -1)
    threshold = thresholds[choice % n_thresholds, np.arange(n)]
    # Columns without two distinct values have no candidate: a threshold at their common value
    # flags nothing (direction +1), which certifies nothing.
    no_candidate = ~valid.any(axis=0)
    threshold = np.where(no_candidate, values[0], threshold)
    direction = np.where(no_candidate, 1, direction)

    # Bounding half.
    above_u = (u_bnd > threshold[None]).sum(axis=0)
    above_r = (r_bnd > threshold[None]).sum(axis=0)
    fp_b = np.where(direction == 1, above_r, kr - above_r)
    fn_b = np.where(direction == 1, ku - above_u, above_u)
    fpr_up = np.asarray(clopper_pearson_upper(fp_b, kr, alpha / 2), dtype=np.float64)
    fnr_up = np.asarray(clopper_pearson_upper(fn_b, ku, alpha / 2), dtype=np.float64)
    eps = np.maximum(epsilon_from_rates(fpr_up, fnr_up, delta), 0.0)
    best_possible = epsilon_from_rates(
        clopper_pearson_upper(0, kr, alpha / 2), clopper_pearson_upper(0, ku, alpha / 2), delta
    )
    return {
        "eps": eps,
        "threshold": threshold,
        "direction": direction,
        "median": float(np.median(eps)),
        "q90": float(np.quantile(eps, 0.9)),
        "q99": float(np.quantile(eps, 0.99)),
        "alpha": float(alpha),
        "delta": float(delta),
        "n_per_side_bounding": int(min(ku, kr)),
        "n_bounding_unlearned": int(ku),
        "n_bounding_retrained": int(kr),
        "max_certifiable": float(max(float(best_possible), 0.0)),
    }
