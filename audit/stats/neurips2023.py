"""The NeurIPS 2023 machine-unlearning competition's per-example ε and its score.

For one forget example the audit holds N values of φ (logit-scaled confidence) from N
unlearned models and N from N retrained models. The competition asks how well any rule
from a fixed family tells the two populations apart, converts each rule's error rates into
an ε, and keeps the largest. The reference is the competition's published ``metric.py``
(google-deepmind/unlearning_evaluation: ``compute_forget_score_from_confs`` and
``_get_epsilons``, torch 2.2 on CUDA); this module computes what it computes, rule for rule:

1. Positive side. The population with the larger median is "positive" (on a tie of the
   medians the unlearned population is positive).
2. Range guard. With range = max − min of each side, largest = the larger range and
   smallest = the smaller (whichever side either belongs to): if smallest / largest < 0.01
   the example gets ε = 50 (``cap``) and no rule is evaluated. When both ranges are 0 the
   ratio is 0/0 = NaN and the guard does not fire.
3. Single thresholds. T = ceil((max − min)·100) thresholds over the pooled range of both
   sides, ``torch.linspace(min, max, T)`` in torch's default dtype, float32 (so the first
   and last thresholds are float32 roundings of the pooled extremes, either side of them);
   rule t predicts positive iff φ ≥ t. FPR = share of the negative side ≥ t, FNR = share of
   the positive side < t.
4. Intervals around the peakier side. The peakier side is the one with the smaller range;
   on equal ranges it is the negative (smaller-median) side. width = its range, lo and hi
   its extremes. Right ends: ``np.linspace(lo + width − 2, hi + 2, R)`` with R = ceil of
   (the difference of those two numbers)·100; for each right end r the 400 left ends
   ``np.linspace(r − width − 2, r − width + 2, 400)``. Rule (l, r) predicts "peakier" iff
   l ≤ φ ≤ r. FPR = share of the other side inside, FNR = share of the peakier side outside.
5. Rates are float32 means over the models: torch.mean on CUDA sums the float32 0/1
   indicators and multiplies by the float32 factor T / (N·T), T the family's number of
   rules (``rates``). For most N that is fl32(1/N), but N·fl32(1/N) rounds below 1 for
   some N (41, 47, 55, …), and then TPR + TNR ≠ 2 below.
6. Per rule, with δ = 1e-5, all in float32: FPR + FNR = 0 and TPR + TNR = 2 → ε = ∞;
   otherwise FPR·FNR = 0 → the rule is discarded (NaN); otherwise ε = max(ln(1−δ−FPR) −
   ln FNR, ln(1−δ−FNR) − ln FPR), a NaN term (the log of a negative number) left out,
   floored at 0. With FPR = FNR = 1 both terms are NaN and the rule is discarded.
7. ε = the largest ε of the rules that are not discarded, clipped to [0, 50]. Where every
   rule is discarded (both sides constant at one value, say) metric.py fails an assertion;
   salun's only departure is to give such an example ε = 0.

Score (``compute_forget_score_from_confs``): bucket k covers ε in [0.5k, 0.5k + 0.5) and is
worth 2^−k while 0.5k + 0.5 ≤ ceil(ln(N−1)); ε at or beyond ceil(ln(N−1)) (including the
capped ∞) is worth 0. The forget score is the mean over examples; the final score multiplies
it by RA_u/RA_r × TA_u/TA_r, each accuracy a mean over its models.

Not implemented: metric.py's φ (``compute_logit_scaled_confidence``) is log(p_y + 1e-45) −
log(Σ_{c≠y} p_c + 1e-45) from a softmax in the logits' dtype, so it saturates near ±103.6;
salun's φ is the exact stable value. The two agree below that.

Every rate is a count out of N, so ε is a function of the rule's two error counts:
``epsilon_table`` tabulates it once on the (N+1)² grid of counts with the same float32
arithmetic, and each example sorts its two sides once and counts every rule's errors with
``np.searchsorted`` against the very grid floats above.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

NEURIPS2023_VERSION = "2"
DELTA = 1e-5
CAP = 50.0
RANGE_RATIO = 0.01
PER_UNIT = 100          # thresholds and right ends per unit of φ
LEFT_VALUES = 400       # left ends per right end: ceil(2·PAD·PER_UNIT)
PAD = 2.0               # the ± span of the interval grids

_F32 = np.float32


def rates(n_models: int, n_rules: int = 1) -> np.ndarray:
    """Float32 rate of k = 0 … N positives among N models, as torch.mean gives it on CUDA
    over an (N, n_rules) tensor: the float32 sum times fl32(n_rules) / fl32(N·n_rules)."""
    return np.arange(n_models + 1, dtype=_F32) * _factor(n_models, n_rules)


def _factor(n_models: int, n_rules: int) -> np.float32:
    return _F32(n_rules) / _F32(n_models * n_rules)


def _rule_epsilon(fp, fn, rate: np.ndarray, delta: float) -> np.ndarray:
    """Rule 6 for FP = fp and FN = fn counts (arrays that broadcast), rate[k] the float32
    rate of k models: float32 ε, ∞ for a perfect rule, NaN for a discarded one."""
    n_models = len(rate) - 1
    fp, fn = np.asarray(fp), np.asarray(fn)
    fpr, fnr, tpr, tnr = rate[fp], rate[fn], rate[n_models - fn], rate[n_models - fp]
    one = _F32(1 - delta)                 # metric.py's 1 - delta - fpr: float32 throughout
    with np.errstate(all="ignore"):       # log(0), log(negative), 0·∞ are part of the rules
        bound = np.fmax(np.log(one - fpr) - np.log(fnr), np.log(one - fnr) - np.log(fpr))
        eps = np.where(fpr * fnr == 0, _F32(np.nan), np.clip(bound, _F32(0), None))
    return np.where((fpr + fnr == 0) & (tpr + tnr == 2), _F32(np.inf), eps)


def epsilon_table(n_models: int, delta: float = DELTA, n_rules: int = 1) -> np.ndarray:
    """Entry [a, b]: ε of a rule with FP = a and FN = b counts out of N, in a family of
    n_rules rules (rules 5 and 6), as float64 holding float32 values; ∞ for a perfect rule,
    NaN for a discarded one."""
    counts = np.arange(n_models + 1)
    return _rule_epsilon(counts[:, None], counts[None, :], rates(n_models, n_rules), delta).astype(np.float64)


@functools.lru_cache(maxsize=16)
def _lookup(n_models: int, delta: float, factor: float) -> np.ndarray:
    """The table flattened, discarded rules as −1, for one float32 mean factor."""
    counts = np.arange(n_models + 1)
    rate = counts.astype(_F32) * _F32(factor)
    table = _rule_epsilon(counts[:, None], counts[None, :], rate, delta).astype(np.float64)
    return np.where(np.isnan(table), -1.0, table).ravel()


def _best(fp: np.ndarray, fn: np.ndarray, n_models: int, delta: float) -> float:
    """The largest ε over one family's rules; −1 when it has none or all are discarded."""
    if fp.size == 0:
        return -1.0
    table = _lookup(n_models, delta, float(_factor(n_models, fp.size)))
    return float(np.take(table, fp.ravel() * (n_models + 1) + fn.ravel()).max())


def threshold_counts(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rule 3 on sorted sides: the thresholds (as float64) and each one's FP and FN counts."""
    lo, hi = min(pos[0], neg[0]), max(pos[-1], neg[-1])
    count = int(np.ceil((hi - lo) * PER_UNIT))
    t = torch.linspace(float(lo), float(hi), count, dtype=torch.float32).numpy().astype(np.float64)
    fn = np.searchsorted(pos, t, "left")                      # pos < t
    fp = len(neg) - np.searchsorted(neg, t, "left")           # neg ≥ t
    return t, fp, fn


def interval_grid(peaky: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rule 4's right ends (R,) and left ends (R, 400) around the sorted peakier side."""
    width = peaky[-1] - peaky[0]
    start, stop = peaky[0] + width - PAD, peaky[-1] + PAD
    right = np.linspace(start, stop, int(np.ceil((stop - start) * PER_UNIT)))
    left = np.linspace(right - width - PAD, right - width + PAD, LEFT_VALUES, axis=1)
    return right, left


def interval_counts(peaky: np.ndarray, other: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rule 4 on sorted sides: FP and FN counts of every (right end, left end) rule."""
    right, left = interval_grid(peaky)

    def inside(side):                                         # l ≤ φ ≤ r
        upto = np.searchsorted(side, right, "right")[:, None]
        return np.maximum(upto - np.searchsorted(side, left, "left"), 0)

    return inside(other), len(peaky) - inside(peaky)


def per_example_epsilon(unlearned, retrained, delta: float = DELTA, cap: float = CAP,
                        return_unruled: bool = False):
    """ε per forget example (rules 1–7 of the module docstring).

    unlearned, retrained: (N, n) arrays of φ, one row per model, one column per example.
    Returns (n,) floats in [0, cap]; with return_unruled also an (n,) boolean mask of the
    examples where every rule was discarded (ε = 0 there, where metric.py stops).
    """
    u = np.asarray(unlearned, dtype=np.float64)
    r = np.asarray(retrained, dtype=np.float64)
    if u.ndim != 2 or u.shape != r.shape or u.shape[0] < 1:
        raise ValueError(f"need two (N, n) arrays of one shape, got {u.shape} and {r.shape}")
    if not (np.isfinite(u).all() and np.isfinite(r).all()):
        raise ValueError("φ must be finite")
    n_models = u.shape[0]
    u_positive = np.median(u, axis=0) >= np.median(r, axis=0)
    pos = np.sort(np.where(u_positive, u, r).T, axis=1)
    neg = np.sort(np.where(u_positive, r, u).T, axis=1)
    pos_diff, neg_diff = pos[:, -1] - pos[:, 0], neg[:, -1] - neg[:, 0]
    largest = np.where(pos_diff > neg_diff, pos_diff, neg_diff)
    smallest = np.where(pos_diff > neg_diff, neg_diff, pos_diff)
    with np.errstate(divide="ignore", invalid="ignore"):
        guarded = smallest / largest < RANGE_RATIO
    eps = np.full(len(pos), float(cap))
    unruled = np.zeros(len(pos), dtype=bool)
    for i in np.flatnonzero(~guarded):
        p, q = pos[i], neg[i]
        peaky, other = (q, p) if pos_diff[i] >= neg_diff[i] else (p, q)
        best = max(_best(*interval_counts(peaky, other), n_models, delta),
                   _best(*threshold_counts(p, q)[1:], n_models, delta))
        unruled[i] = best < 0
        eps[i] = min(max(best, 0.0), cap)
    return (eps, unruled) if return_unruled else eps


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


def resolution(n_models: int, delta: float = DELTA) -> float:
    """The largest finite ε the rules can give with N models per side: the rule with one
    error each way, fl32(ln(fl32(1 − δ) − 1/N) − ln(1/N)) ≈ ln(N − 1 − Nδ), just below
    ln(N − 1); 0 where no rule gives a finite ε above 0 (N ≤ 2)."""
    if n_models < 1:
        raise ValueError("need at least 1 model per side")
    value = float(_rule_epsilon(1, 1, rates(n_models), delta))
    return 0.0 if math.isnan(value) else value
