"""RMIA, the relative membership-inference attack of Zarifzadeh et al. ("Low-Cost High-Power
Membership Inference Attacks"), on p_y, the probability a model gives the true label.

For a target model theta, an example x and a population example z (never trained on by
theta),

    LR(x, z) = [P(x|theta) / P(x)] / [P(z|theta) / P(z)],

where P(.) is the probability averaged over reference models. The score of x is the
fraction of the population z with LR(x, z) >= gamma. P(x) is a trimmed mean over the
reference models: `trim` is the proportion cut from each end of the sorted values
(scipy.stats.trim_mean's proportiontocut, 0.1 = the lowest and highest 10 %). Online, all
references (IN and OUT) are averaged; offline only the OUT ones, and the missing IN half is
approximated linearly: P(x) ~= 1/2 [(1 + a) P_OUT(x) + (1 - a)], with a tuned on a
reference model whose membership is known (tune_a).

gamma = 2 is the paper's default; one public implementation uses gamma = 1.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import trim_mean

from attacks.mia.roc import auc
from audit.core.registry import ATTACKS

VERSION = "1"

GAMMA = 2.0
TRIM = 0.1
A_GRID = np.round(np.linspace(0.0, 1.0, 11), 10)
# denominators are floored here so that a reference probability that underflowed to 0 stays finite
_TINY = np.finfo(np.float64).tiny


def _masked_trim_mean(values: np.ndarray, mask: np.ndarray, trim: float) -> np.ndarray:
    """scipy.stats.trim_mean over axis 0 of the entries where mask is True, per column.

    Column i keeps sorted positions [g, k - g) with k its number of entries and
    g = floor(trim * k), scipy's rule. NaN where a column has no entry left.
    """
    count = mask.sum(axis=0)
    cut = np.floor(trim * count).astype(np.int64)
    ordered = np.sort(np.where(mask, values, np.nan), axis=0)  # NaNs sort last
    rank = np.arange(len(values))[:, None]
    keep = (rank >= cut) & (rank < count - cut)
    kept = keep.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(kept > 0, np.where(keep, ordered, 0.0).sum(axis=0) / kept, np.nan)


def reference_probability(p_ref: np.ndarray, in_mask: np.ndarray | None, offline: bool, a: float,
                          trim: float = TRIM) -> np.ndarray:
    """P(x) for each of n examples from the reference models' p_y, p_ref (R, n).

    Online (offline=False): the trimmed mean over all R references; in_mask is not used.
    Offline: the trimmed mean P_OUT over the references with in_mask False (all of them
    when in_mask is None), then 1/2 [(1 + a) P_OUT + (1 - a)]. Returns (n,); NaN for an
    example that has no OUT reference.
    """
    p_ref = np.asarray(p_ref, dtype=np.float64)
    if p_ref.ndim != 2:
        raise ValueError(f"p_ref must be (references, examples), got {p_ref.shape}")
    if not 0.0 <= trim < 0.5:
        raise ValueError(f"trim must be in [0, 0.5), not {trim}")
    if not offline:
        return np.asarray(trim_mean(p_ref, trim, axis=0), dtype=np.float64)
    out = np.ones_like(p_ref, dtype=bool) if in_mask is None else ~np.asarray(in_mask, dtype=bool)
    if out.shape != p_ref.shape:
        raise ValueError(f"in_mask must match p_ref {p_ref.shape}, got {out.shape}")
    p_out = np.asarray(trim_mean(p_ref, trim, axis=0)) if out.all() else _masked_trim_mean(p_ref, out, trim)
    return 0.5 * ((1.0 + a) * p_out + (1.0 - a))


def _batched_count_at_most(sorted_rows: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Per row r, how many of sorted_rows[r] are <= thresholds[r, j]: a row-wise
    np.searchsorted(side="right"), as a binary search vectorised over rows and queries."""
    rows, m = sorted_rows.shape
    lo = np.zeros(thresholds.shape, dtype=np.int64)
    hi = np.full(thresholds.shape, m, dtype=np.int64)
    row = np.arange(rows)[:, None]
    while True:
        active = lo < hi
        if not active.any():
            return lo
        mid = (lo + hi) // 2
        at_most = sorted_rows[row, np.minimum(mid, m - 1)] <= thresholds
        lo = np.where(active & at_most, mid + 1, lo)
        hi = np.where(active & ~at_most, mid, hi)


@ATTACKS.register("rmia")
def scores(p_target_x: np.ndarray, p_x_ref: np.ndarray, p_target_z: np.ndarray, p_z_ref: np.ndarray,
           gamma: float = GAMMA) -> np.ndarray:
    """RMIA (Zarifzadeh et al.): the fraction of a population z that x beats by a likelihood ratio ≥ γ.

    Scores of n examples x against a population of m examples z.

    p_target_x (..., n), p_target_z (..., m): the target models' p_y (the leading axes, one
    per target model, must match); p_x_ref (n,), p_z_ref (m,): P(x), P(z) from
    reference_probability. Returns (..., n) in [0, 1]: the fraction of z with LR(x, z) >= gamma.

    LR(x, z) >= gamma is evaluated as r_z <= r_x / gamma with r = P(.|theta) / P(.), which is
    the same test up to rounding at exact ties; the population ratios are sorted once per
    target model and each x is located by binary search, O((n + m) log m) per model, no n x m
    matrix.
    """
    if gamma <= 0:
        raise ValueError(f"gamma must be positive, not {gamma}")
    p_target_x = np.asarray(p_target_x, dtype=np.float64)
    p_target_z = np.asarray(p_target_z, dtype=np.float64)
    if p_target_x.shape[:-1] != p_target_z.shape[:-1]:
        raise ValueError(f"leading axes differ: {p_target_x.shape} and {p_target_z.shape}")
    ratio_x = p_target_x / np.maximum(np.asarray(p_x_ref, dtype=np.float64), _TINY)
    ratio_z = p_target_z / np.maximum(np.asarray(p_z_ref, dtype=np.float64), _TINY)
    lead, n, m = p_target_x.shape[:-1], p_target_x.shape[-1], p_target_z.shape[-1]
    if m == 0:
        raise ValueError("the population z is empty")
    population = np.sort(ratio_z.reshape(-1, m), axis=1)
    counts = _batched_count_at_most(population, ratio_x.reshape(-1, n) / gamma)
    return (counts / m).reshape(*lead, n)


def tune_a(p_target: np.ndarray, is_member: np.ndarray, p_ref: np.ndarray, in_mask: np.ndarray | None,
           gamma: float = GAMMA, trim: float = TRIM, grid: np.ndarray = A_GRID) -> float:
    """The offline a in grid (default 0.0, 0.1, ..., 1.0) that maximises the AUC of offline RMIA
    on a held-out reference model whose membership is known.

    p_target, is_member (n,): that model's p_y and membership; p_ref, in_mask (R, n): the
    other references. The population z is every other non-member of the held-out model (in
    index order); the scored examples are all the others (every member and the remaining
    non-members), so no example is compared with itself. Ties go to the smallest a.
    """
    p_target = np.asarray(p_target, dtype=np.float64)
    is_member = np.asarray(is_member, dtype=bool)
    non_members = np.flatnonzero(~is_member)
    if len(non_members) < 2 or is_member.sum() == 0:
        raise ValueError("tuning a needs members and at least two non-members on the held-out model")
    population = np.zeros(len(p_target), dtype=bool)
    population[non_members[::2]] = True
    best_a, best_auc = float(grid[0]), -np.inf
    for a in grid:
        p_x = reference_probability(p_ref, in_mask, True, float(a), trim)
        s = scores(p_target[~population], p_x[~population], p_target[population], p_x[population], gamma)
        value = auc(s, is_member[~population])
        if value > best_auc:
            best_a, best_auc = float(a), value
    return best_a
