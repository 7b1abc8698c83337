"""The NeurIPS 2023 machine-unlearning competition's per-example ε and its score.

For one forget example the audit holds N values of φ (logit-scaled confidence) from N
unlearned models and N from N retrained models. The competition asks how well any rule
from a fixed family tells the two populations apart, converts each rule's error rates into
the (ε, δ) bound, and keeps the largest ε. The rules, in the order they are applied:

1. Positive side. The population with the larger median is "positive" (on a tie of the
   medians the unlearned population is positive). Single-threshold rules call φ > t
   positive.
2. Range guard. With range = max − min, if range(smaller-median side) /
   range(larger-median side) < 0.01 the example gets ε = 50 (``cap``) and no rule is
   evaluated. Read literally, "smaller" and "larger" name the two sides of rule 1 (by
   median), not the narrower and wider ranges. When the larger-median side has range 0
   the ratio is undefined (0/0) or infinite, and the guard does not fire; the rules decide.
3. Single-threshold rules. T = ceil((max − min)·100) thresholds, ``np.linspace(min, max,
   T)``, over the pooled range of both populations; rule t predicts positive iff φ > t.
   FPR = share of the negative side above t, FNR = share of the positive side at or below t.
4. Interval rules on the peakier side. The peakier side is the population with the
   smaller range (a tie goes to the positive side); width = its range; min_pos and
   max_pos are its extremes. Right ends: R = ceil((max_pos + 2 − (min_pos + width −
   2))·100) points, ``np.linspace(min_pos + width − 2, max_pos + 2, R)``. Left ends for
   each right end r: ``r + (o − width)`` for the 400 offsets o = ``np.linspace(−2, 2,
   400)``. Rule (l, r) predicts "peakier side" iff l ≤ φ ≤ r (empty when l > r). FPR =
   share of the other side inside, FNR = share of the peakier side outside. The bound
   below is symmetric in (FPR, FNR), so which side of an interval rule is called
   positive does not change ε.
5. Per rule, with δ = 1e-5: FPR = FNR = 0 → ε = ∞; exactly one of them 0 → the rule is
   discarded; otherwise ε = max(ln((1−δ−FPR)/FNR), ln((1−δ−FNR)/FPR)), floored at 0.
   A term whose numerator is ≤ 0 (a rate of 1) is left out, and when both are left out
   (FPR = FNR = 1, a perfectly inverted rule) ε = ∞, as in the competition's public
   starting-kit code.
6. ε = max over the rules (0 when every rule is discarded), clipped to [0, 50].

Score: bucket k covers ε in [0.5k, 0.5(k+1)) for k = 0 … 2·ceil(ln(N−1)) − 1 and is worth
2^−k; ε at or beyond ceil(ln(N−1)) (including the capped ∞) is worth 0. The forget score
is the mean over examples; the final score multiplies it by RA_u/RA_r × TA_u/TA_r, each
accuracy a mean over its models. Point estimates only: nothing here is an interval.

Because every rate is a count out of N, ε is a function of the two error counts, so the
vectorised path tabulates ε once on the (N+1)² grid of counts and counts every rule's
errors from the grids' arithmetic structure (see ``_count_below``).
"""

from __future__ import annotations

import math

import numpy as np

from audit import stats

NEURIPS2023_VERSION = "1"
DELTA = 1e-5
CAP = 50.0
RANGE_RATIO = 0.01
PER_UNIT = 100          # grid points per unit of φ, thresholds and right ends
LEFT_VALUES = 400       # left ends per right end
PAD = 2.0               # the ± span of the interval grids
_CELLS_PER_CHUNK = 4_000_000
_NEAR = 1e-6            # in grid steps; rounding in the arithmetic guess is ~1e-11


def epsilon_table(n_models: int, delta: float = DELTA) -> np.ndarray:
    """ε of one rule (rule 5, unfloored at the cap) for FP = a and FN = b counts out of N.

    Entry [a, b]: a = b = 0 → ∞; exactly one 0 → 0 (a discarded rule cannot raise the
    maximum above its floor of 0); a = b = N → ∞; otherwise the bound, floored at 0.
    """
    counts = np.arange(n_models + 1, dtype=np.float64)
    fpr = (counts / n_models)[:, None]
    fnr = (counts / n_models)[None, :]
    table = np.maximum(stats.epsilon_from_rates(fpr, fnr, delta), 0.0)
    table[(fpr == 1) & (fnr == 1)] = np.inf
    table[0, :] = 0.0
    table[:, 0] = 0.0
    table[0, 0] = np.inf
    return table


def _grid(start: np.ndarray, stop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row ``np.linspace(start, stop, ceil((stop − start)·PER_UNIT))``, +∞-padded."""
    lengths = np.ceil((stop - start) * PER_UNIT).astype(np.int64)
    width = max(int(lengths.max(initial=0)), 1)
    grid = np.full((len(start), width), np.inf)
    for length in np.unique(lengths):
        if length > 0:
            rows = lengths == length
            grid[rows, :length] = np.linspace(start[rows], stop[rows], length, axis=1)
    return grid, lengths


def _count_below(values: np.ndarray, grid: np.ndarray, lengths: np.ndarray,
                 offsets: np.ndarray, strict: bool) -> np.ndarray:
    """counts[e, k, i] = #{j : values[e, j] < grid[e, i] + offsets[e, k]} (≤ if not strict).

    Each value's position s in the increasing grid row (the number of grid points it
    passes) is read off the row's start and step; where that lands within _NEAR of a grid
    point (float rounding could then misplace it) s is settled by exact comparisons
    against ``grid[e, s] + offsets[e, k]``, the very floats a rule-by-rule loop compares.
    The counts are the cumulative histogram of s.
    """
    m, n = values.shape
    width = grid.shape[1]
    k = offsets.shape[1]
    last = grid[np.arange(m), np.maximum(lengths - 1, 0)]
    with np.errstate(invalid="ignore"):  # rows without a grid hold no finite points; their step is unused
        step = np.where(lengths > 1, (last - grid[:, 0]) / np.maximum(lengths - 1, 1), 1.0)
    step = np.where(step > 0, step, 1.0)
    with np.errstate(invalid="ignore"):
        t = (values[:, :, None] - (grid[:, :1, None] + offsets[:, None, :])) / step[:, None, None]
        below = np.floor(t)
        t -= below
        t -= 0.5
        near = np.flatnonzero(np.abs(t, out=t) > 0.5 - _NEAR)
        below += 1
        np.maximum(below, 0, out=below)
        np.minimum(below, lengths[:, None, None], out=below)
    s = below.astype(np.int64).ravel()
    e, j, kk = near // (n * k), (near // k) % n, near % k
    v, c, row, flat = values[e, j], offsets[e, kk], e * width, grid.ravel()

    def settle(here, v, c, row):  # one step of s towards: grid[s-1] + c passes v, grid[s] + c not
        g_up = np.take(flat, row + np.minimum(here, width - 1)) + c
        g_down = np.take(flat, row + np.maximum(here - 1, 0)) + c
        up = (here < width) & ((g_up <= v) if strict else (g_up < v))
        down = (here > 0) & ~((g_down <= v) if strict else (g_down < v))
        return here + up - down, np.flatnonzero(up | down)

    at = np.arange(near.size)
    while at.size:
        s[near[at]], moved = settle(s[near[at]], v[at], c[at], row[at])
        at = at[moved]
    cells = (np.arange(m)[:, None, None] * k + np.arange(k)[None, None, :]) * (width + 1)
    hist = np.bincount((cells + s.reshape(m, n, k)).ravel(), minlength=m * k * (width + 1))
    return np.cumsum(hist.reshape(m, k, width + 1), axis=2)[:, :, :width]


def _threshold_epsilon(pos: np.ndarray, neg: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Rule 3: the largest ε over single thresholds on the pooled range."""
    n = pos.shape[1]
    pooled = np.concatenate([pos, neg], axis=1)
    grid, lengths = _grid(pooled.min(axis=1), pooled.max(axis=1))
    zero = np.zeros((len(pos), 1))
    fn = _count_below(pos, grid, lengths, zero, strict=False)[:, 0]        # pos ≤ t
    fp = n - _count_below(neg, grid, lengths, zero, strict=False)[:, 0]    # neg > t
    eps = table[fp, fn]
    eps[np.arange(grid.shape[1])[None, :] >= lengths[:, None]] = 0.0
    return eps.max(axis=1, initial=0.0)


def _interval_epsilon(peaky: np.ndarray, other: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Rule 4: the largest ε over intervals [r + (o − width), r] around the peakier side."""
    n = peaky.shape[1]
    low, high = peaky.min(axis=1), peaky.max(axis=1)
    width = high - low
    grid, lengths = _grid(low + width - PAD, high + PAD)
    zero = np.zeros((len(peaky), 1))
    lefts = np.linspace(-PAD, PAD, LEFT_VALUES)[None, :] - width[:, None]
    inside = []
    for side in (peaky, other):
        upto = _count_below(side, grid, lengths, zero, strict=False)           # φ ≤ r
        below = _count_below(side, grid, lengths, lefts, strict=True)          # φ < l
        inside.append(np.maximum(upto - below, 0))
    eps = table[inside[1], n - inside[0]]
    eps[np.broadcast_to(np.arange(grid.shape[1]) >= lengths[:, None, None], eps.shape)] = 0.0
    return eps.reshape(len(peaky), -1).max(axis=1, initial=0.0)


def per_example_epsilon(unlearned, retrained, delta: float = DELTA, cap: float = CAP) -> np.ndarray:
    """ε per forget example (rules 1–6 of the module docstring), vectorised over examples.

    unlearned, retrained: (N, n) arrays of φ, one row per model, one column per example.
    Returns (n,) floats in [0, cap].
    """
    u = np.asarray(unlearned, dtype=np.float64)
    r = np.asarray(retrained, dtype=np.float64)
    if u.ndim != 2 or u.shape != r.shape or u.shape[0] < 1:
        raise ValueError(f"need two (N, n) arrays of one shape, got {u.shape} and {r.shape}")
    if not (np.isfinite(u).all() and np.isfinite(r).all()):
        raise ValueError("φ must be finite")
    u, r = u.T, r.T
    u_positive = (np.median(u, axis=1) >= np.median(r, axis=1))[:, None]
    pos, neg = np.where(u_positive, u, r), np.where(u_positive, r, u)
    pos_range, neg_range = np.ptp(pos, axis=1), np.ptp(neg, axis=1)
    guarded = (pos_range > 0) & (neg_range / np.where(pos_range > 0, pos_range, 1.0) < RANGE_RATIO)
    pos_peakier = (pos_range <= neg_range)[:, None]
    peaky, other = np.where(pos_peakier, pos, neg), np.where(pos_peakier, neg, pos)
    table = epsilon_table(u.shape[1], delta)
    eps = np.zeros(len(u))
    step = max(1, _CELLS_PER_CHUNK // (u.shape[1] * LEFT_VALUES))
    for start in range(0, len(u), step):
        part = slice(start, start + step)
        eps[part] = np.maximum(_threshold_epsilon(pos[part], neg[part], table),
                               _interval_epsilon(peaky[part], other[part], table))
    eps[guarded] = cap
    return np.clip(eps, 0.0, cap)


def forget_score(eps, n_models: int) -> float:
    """Mean bucket value: ε in [0.5k, 0.5(k+1)) is worth 2^−k below ceil(ln(N−1)), else 0.

    With N = 2 the top edge is ceil(ln 1) = 0, so every example is worth 0.
    """
    if n_models < 2:
        raise ValueError("the score needs at least 2 models per side")
    eps = np.asarray(eps, dtype=np.float64)
    top = math.ceil(math.log(n_models - 1))
    k = np.floor(eps / 0.5)
    worth = np.where(eps < top, 2.0 ** -np.minimum(k, 1075), 0.0)
    return float(worth.mean())


def final_score(forget_score: float, ra_u, ra_r, ta_u, ta_r) -> float:
    """forget score × RA_u/RA_r × TA_u/TA_r; each accuracy may be per-model values (meaned)."""
    ra_u, ra_r, ta_u, ta_r = (float(np.mean(x)) for x in (ra_u, ra_r, ta_u, ta_r))
    return float(forget_score * (ra_u / ra_r) * (ta_u / ta_r))


def resolution(n_models: int) -> float:
    """ln N: the largest finite ε N-vs-N rates can show is ln(N−1) (FPR = FNR = 1/N)."""
    return math.log(n_models)
