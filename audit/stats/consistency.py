"""Is one unlearned model's φ on each forget example consistent with the retrained models'?

A checkpoint audited on its own has no population of its own to compare; what it can be
held to is the retrained population. Per forget example, with the N retrained models' φ of
mean m and sample standard deviation s, the subject's φ = x gives

    t = (x − m) / (s · sqrt(1 + 1/N)),   two-sided p from Student's t with N − 1 degrees of freedom,

the test that x is a new draw from the same normal population (the prediction interval).
Benjamini-Hochberg over the forget examples at level α gives the share that differ.
"""

from __future__ import annotations

import numpy as np
from scipy import stats as scipy_stats

from audit.stats.basics import benjamini_hochberg

VERSION = "1"
MOST_DIFFERENT = 10


def consistency_test(subject_phi: np.ndarray, retrained_phi: np.ndarray, alpha: float,
                     forget_index: np.ndarray) -> dict:
    """`subject_phi` (examples,), `retrained_phi` (models, examples); `forget_index` the examples'
    dataset indices, to name the most different ones."""
    x = np.asarray(subject_phi, dtype=np.float64)
    r = np.asarray(retrained_phi, dtype=np.float64)
    n = r.shape[0]
    if n < 2:
        raise ValueError("the consistency test needs at least 2 retrained models")
    mean, spread = r.mean(axis=0), r.std(axis=0, ddof=1) * np.sqrt(1 + 1 / n)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(spread > 0, (x - mean) / spread, np.where(x == mean, 0.0, np.inf * np.sign(x - mean)))
    p = 2 * scipy_stats.t.sf(np.abs(t), df=n - 1)
    rejected, _ = benjamini_hochberg(p, alpha)
    order = np.argsort(p)[:MOST_DIFFERENT]
    return {
        "version": VERSION,
        "test": "Student-t prediction interval of the retrained models' φ, two-sided, Benjamini-Hochberg",
        "fraction_different": float(rejected.mean()),
        "fraction_higher": float((rejected & (x > mean)).mean()),  # more confident than a retrained model
        "fraction_lower": float((rejected & (x < mean)).mean()),
        "median_abs_t": float(np.median(np.abs(t))),
        "alpha": float(alpha),
        "n_reference_models": int(n),
        "n_examples": int(len(x)),
        "most_different": [{"index": int(forget_index[i]), "phi": float(x[i]), "retrained_mean": float(mean[i]),
                            "p": float(p[i])} for i in order],
    }
