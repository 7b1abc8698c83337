"""Retrain equivalence of one method: the competition's per-example ε (audit/stats/neurips2023.py),
a high-confidence ε bound, per-example two-sample tests with Benjamini-Hochberg, and TOST on
the per-seed metrics."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from audit.stats import basics as stats
from audit.stats.neurips2023 import CAP, NEURIPS2023_VERSION, forget_score, per_example_epsilon, resolution
from audit.core.seeds import numpy_generator
from audit.stats.tost import tost_bootstrap, tost_decision, tost_welch


def _drawn_alike(u: np.ndarray, r: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Both sides' values of each example pooled and dealt out again at random: two
    populations drawn alike, whose ε is the floor N models can resolve on these values."""
    pooled = rng.permuted(np.concatenate([u, r]), axis=0)
    return pooled[: len(u)], pooled[len(u):]


def permutation_min_p(nu: int, nr: int, resamples: int) -> float:
    """The expected p of the per-example permutation test on perfectly separated values: the
    +1 of the estimate, plus the share of relabellings that reproduce the split (or its mirror)."""
    splits = math.comb(nu + nr, nu)
    return (1 + resamples * (2 if nu == nr else 1) / splits) / (1 + resamples)


def _numbers(value: Any) -> Any:
    """`value` with numpy scalars and arrays as plain JSON numbers and lists."""
    if isinstance(value, dict):
        return {k: _numbers(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def metric_tost(unlearned_metrics: dict[str, Any], retrained_metrics: dict[str, Any], names: tuple[str, ...],
                settings: Any, *seed: object) -> dict[str, Any]:
    """Welch and bootstrap TOST of each named metric's per-seed values, unlearned against
    retrained, with the decision both give (`settings`: the spec's [equivalence])."""
    tost = {}
    for name in names:
        a, b = unlearned_metrics[name]["per_seed"], retrained_metrics[name]["per_seed"]
        tests = {
            "welch": _numbers(tost_welch(a, b, settings.margin, settings.alpha)),
            "bootstrap": _numbers(tost_bootstrap(a, b, settings.margin,
                                                 numpy_generator("equivalence", "tost", name, *seed),
                                                 settings.alpha)),
        }
        tost[name] = {**tost_decision(tests, settings.margin, settings.alpha), **tests}
    return tost


def method_equivalence(unlearned_phi: np.ndarray, retrained_phi: np.ndarray, unlearned_metrics: dict[str, Any],
                       retrained_metrics: dict[str, Any], spec: Any, *seed: object,
                       forget_indices: np.ndarray | None = None) -> dict[str, Any]:
    """Every retrain-equivalence test of one method: φ on the forget set, (models, examples) per
    side, the rows of both sides paired by seed, and the per-seed metric summaries of
    results.json's `metrics` and `populations`."""
    if len(unlearned_phi) != len(retrained_phi):
        raise ValueError(f"φ of {len(unlearned_phi)} unlearned and {len(retrained_phi)} retrained models: "
                         "pair them by seed first")
    settings = spec.equivalence
    u, r = unlearned_phi, retrained_phi
    n = len(u)
    eps = per_example_epsilon(u, r)
    mean = {name: unlearned_metrics[name]["mean"] / retrained_metrics[name]["mean"] for name in ("RA", "TA")}
    score = forget_score(eps, n)
    high = stats.epsilon_high_confidence(u, r, numpy_generator("equivalence", "epsilon", *seed),
                                         alpha=settings.alpha)
    ks, ks_p = stats.ks_per_example(u, r)
    diff, perm_p = stats.permutation_per_example(u, r, numpy_generator("equivalence", "permutation", *seed),
                                                 resamples=settings.permutations)
    ks_rejected, _ = stats.benjamini_hochberg(ks_p, settings.alpha)
    perm_rejected, _ = stats.benjamini_hochberg(perm_p, settings.alpha)
    tost = metric_tost(unlearned_metrics, retrained_metrics, ("UA", "RA", "TA", "MIA"), settings, *seed)
    null = per_example_epsilon(*_drawn_alike(u, r, numpy_generator("equivalence", "null", *seed)))
    return {
        "n_models": n, "n_examples": int(u.shape[1]), "resolution": resolution(n),
        "neurips2023": {
            "version": NEURIPS2023_VERSION, "eps": eps.tolist(), "cap": CAP,
            "forget_indices": None if forget_indices is None else [int(i) for i in forget_indices],
            "eps_median": float(np.median(eps)),
            "eps_q90": float(np.quantile(eps, 0.9)), "forget_score": score,
            "final_score": score * mean["RA"] * mean["TA"],
            "null": {"eps_median": float(np.median(null)), "eps_q90": float(np.quantile(null, 0.9))},
        },
        "high_confidence": _numbers({**{k: v for k, v in high.items() if k not in ("eps", "threshold", "direction")},
                                     "fraction_positive": float(np.mean(high["eps"] > 0))}),
        "per_example": {
            "alpha": settings.alpha,
            "ks": {"fraction_different": float(ks_rejected.mean()), "median_statistic": float(np.median(ks)),
                   "alpha": settings.alpha, "min_p_value": float(stats.ks_per_example(np.zeros(n), np.ones(n))[1][0]),
                   "n_models": n, "n_examples": int(u.shape[1]), "power_guard": "ks_fraction"},
            "permutation": {"fraction_different": float(perm_rejected.mean()),
                            "median_abs_effect": float(np.median(np.abs(stats.cohens_d_per_example(u, r)))),
                            "resamples": settings.permutations, "alpha": settings.alpha,
                            "min_p_value": permutation_min_p(n, n, settings.permutations)},
        },
        "tost": tost,
    }
