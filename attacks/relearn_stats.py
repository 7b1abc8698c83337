"""Statistics of relearning attacks on unlearned classifiers, over N paired seeds.

Per seed an unlearned and a retrained model (the reference, which never saw the forget set)
are fine-tuned under the same attack, and forget-set accuracy is recorded at checkpoints
b_0 = 0 < ... < b_C. `recovery_curves` summarises the curves, the recovery at the full budget
and whether the unlearned curve lies above the retrained one; `relearn_time` compares the
steps few-shot relearning needs. Every output is JSON-serialisable; intervals come from
`audit.stats.basics.summarize`.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from audit.stats.basics import summarize


def _p(value) -> float | None:
    value = float(value)
    return None if math.isnan(value) else value


def _check_curves(unlearned, retrained, steps) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    u = np.asarray(unlearned, dtype=np.float64)
    r = np.asarray(retrained, dtype=np.float64)
    b = np.asarray(steps, dtype=np.float64)
    if u.ndim != 2 or u.shape != r.shape:
        raise ValueError("unlearned and retrained must be (seeds, checkpoints) of the same shape")
    if u.shape[0] < 1 or u.shape[1] < 2:
        raise ValueError("need at least one seed and two checkpoints")
    if b.shape != (u.shape[1],) or np.any(np.diff(b) <= 0) or not np.all(np.isfinite(b)):
        raise ValueError("steps must be increasing, one per checkpoint")
    if not (np.all(np.isfinite(u)) and np.all(np.isfinite(r))):
        raise ValueError("accuracies must be finite")
    return u, r, b


def gap_areas(unlearned, retrained, steps) -> list[float]:
    """Per seed the mean vertical gap: trapezoid of (unlearned − retrained) over steps / (b_C − b_0)."""
    u, r, b = _check_curves(unlearned, retrained, steps)
    area = np.trapezoid(u - r, x=b, axis=1) / (b[-1] - b[0])
    return [float(a) for a in area]


def recovery_curves(unlearned, retrained, steps, alpha: float = 0.05) -> dict:
    """Summaries per checkpoint, recovery and gain at the full budget, and the 'above' tests.

    recovery = mean over seeds of u[:, -1] − r[:, -1] (forget accuracy the attack brings back
    beyond what a model that never saw the forget set reaches); gain = mean of the rise
    (u[:, -1] − u[:, 0]) − (r[:, -1] − r[:, 0]). "above" tests the per-seed mean gap a_s > 0
    one-sided with a paired Student t and a Wilcoxon signed-rank test; the decision uses t.
    With one seed, or gaps equal on every seed (no spread), p_t is None and "above" False.
    """
    u, r, b = _check_curves(unlearned, retrained, steps)
    n = u.shape[0]
    last = summarize(u[:, -1] - r[:, -1], bounds=(-1, 1))
    gain = summarize((u[:, -1] - u[:, 0]) - (r[:, -1] - r[:, 0]), bounds=(-2, 2))
    a = np.asarray(gap_areas(u, r, b))
    gap = summarize(a, bounds=(-1, 1))
    p_t = p_w = None
    if n >= 2 and np.ptp(a) > 1e-12:  # a t-test needs spread between the seeds' gaps
        p_t = _p(stats.ttest_1samp(a, 0.0, alternative="greater").pvalue)
    if n >= 2 and np.any(a != 0):
        p_w = _p(stats.wilcoxon(a, alternative="greater").pvalue)
    above = p_t is not None and p_t < alpha
    if n < 2:
        why = "One seed cannot test whether the unlearned curve lies above the retrained one."
    elif p_t is None:
        why = (
            f"The gap {gap['mean']:.4f} is the same on all {n} seeds, so the t-test is undefined"
            + (f"; Wilcoxon p = {p_w:.4g}." if p_w is not None else ".")
        )
    else:
        verdict = "lies above" if above else "is not shown to lie above"
        why = (
            f"The unlearned curve {verdict} the retrained one: mean gap {gap['mean']:.4f} "
            f"over {n} seeds, one-sided t-test p = {p_t:.4g} (alpha {alpha})"
            + (f", Wilcoxon p = {p_w:.4g}." if p_w is not None else ".")
        )
    checkpoints = [s.item() if isinstance(s, np.generic) else s for s in steps]
    return {
        "steps": checkpoints,
        "unlearned": [summarize(u[:, c], bounds=(0, 1)) for c in range(u.shape[1])],
        "retrained": [summarize(r[:, c], bounds=(0, 1)) for c in range(r.shape[1])],
        "difference": [summarize(u[:, c] - r[:, c], bounds=(-1, 1)) for c in range(u.shape[1])],
        "recovery": {"value": last["mean"], "ci95": last["ci95"], "n": n, "budget": checkpoints[-1]},
        "gain": {"value": gain["mean"], "ci95": gain["ci95"]},
        "above": {"mean_gap": gap, "p_t": p_t, "p_wilcoxon": p_w, "alpha": float(alpha),
                  "above": bool(above), "why": why},
    }


def _check_times(values, max_steps: int, name: str) -> tuple[np.ndarray, int]:
    values = list(values)
    if not values:
        raise ValueError(f"{name} needs at least one seed")
    for v in values:
        if v is not None and (isinstance(v, bool) or not 0 <= v <= max_steps or v != int(v)):
            raise ValueError(f"{name}: steps must be integers in [0, max_steps] or None")
    filled = np.array([max_steps + 1 if v is None else int(v) for v in values], dtype=np.float64)
    return filled, sum(v is None for v in values)


def relearn_time(unlearned_steps, retrained_steps, max_steps: int, alpha: float = 0.05) -> dict:
    """Steps few-shot relearning needs to restore the original's forget accuracy, per side.

    None means not restored within max_steps (censored). Censored runs count as max_steps + 1
    everywhere: in the summaries, in the medians and in the one-sided Mann-Whitney U test that
    unlearned models relearn in fewer steps. This is a conservative rank treatment: censored runs
    tie at the top rank rather than being given their (unknown, larger) true times.
    """
    if isinstance(max_steps, bool) or int(max_steps) != max_steps or max_steps < 1:
        raise ValueError("max_steps must be a positive integer")
    max_steps = int(max_steps)
    u, cu = _check_times(unlearned_steps, max_steps, "unlearned_steps")
    r, cr = _check_times(retrained_steps, max_steps, "retrained_steps")
    p = _p(stats.mannwhitneyu(u, r, alternative="less").pvalue)
    faster = p is not None and p < alpha
    why = (
        f"Unlearned models relearn {'faster' if faster else 'not detectably faster'} than retrained "
        f"ones: median {np.median(u):g} vs {np.median(r):g} steps ({cu} and {cr} not back within "
        f"{max_steps}, counted as {max_steps + 1}), one-sided Mann-Whitney p = "
        + (f"{p:.4g}" if p is not None else "undefined") + f" (alpha {alpha})."
    )
    med_r = float(np.median(r))
    bounds = (0, max_steps + 1)
    return {
        "unlearned": {**summarize(u, bounds=bounds), "censored": int(cu)},
        "retrained": {**summarize(r, bounds=bounds), "censored": int(cr)},
        "faster": {"p": p, "faster": bool(faster), "alpha": float(alpha), "why": why},
        "median_ratio": None if med_r == 0 else float(np.median(u)) / med_r,
        "max_steps": max_steps,
    }
