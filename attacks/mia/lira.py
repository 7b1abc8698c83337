"""LiRA, the likelihood-ratio attack of Carlini et al. ("Membership Inference Attacks From
First Principles"), on a per-example signal phi (the logit-scaled confidence).

For every example, Gaussians are fitted to phi over the reference (shadow) models that
trained on it (IN) and over those that did not (OUT):

- location: the median over those models (robust to the odd diverged model);
- scale: "per_example", the sample std (ddof=1) over those models, or "pooled", one std
  for all examples, the pooled standard deviation sqrt(sum_i (k_i - 1) s_i^2 / sum_i (k_i - 1)),
  i.e. the mean of the per-example variances s_i^2 weighted by their degrees of freedom
  k_i - 1 (k_i = number of models fitted for example i). Deviations are taken from each
  example's own mean, so the pooled std measures spread across models only, never the
  spread of the locations across examples.

Every scale is floored at SIGMA_FLOOR so that the log-densities stay finite when the
reference models agree exactly. The online score is the log-likelihood ratio
log N(phi_t; mu_in, sigma_in) - log N(phi_t; mu_out, sigma_out); the offline score uses
OUT only. Arrays are (models, examples); everything is vectorised over both.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from audit.core.registry import ATTACKS
from audit.data.shadows import keep_per_column

VERSION = "2"

SCALES = ("per_example", "pooled")
# phi is a log-odds; spreads across independently trained models are orders of magnitude larger
SIGMA_FLOOR = 1e-3


def _masked_median(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Median over axis 0 of the entries where mask is True; NaN where there are none."""
    count = mask.sum(axis=0)
    ordered = np.sort(np.where(mask, values, np.nan), axis=0)  # NaNs sort last
    lo = np.clip((count - 1) // 2, 0, None)[None]
    hi = np.clip(count // 2, 0, len(values) - 1)[None]
    median = 0.5 * (np.take_along_axis(ordered, lo, 0)[0] + np.take_along_axis(ordered, hi, 0)[0])
    return np.where(count > 0, median, np.nan)


def _masked_moments(values: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sum of squared deviations from the mean, degrees of freedom k - 1), reducing axis 0."""
    count = mask.sum(axis=0)
    filled = np.where(mask, values, 0.0)
    mean = filled.sum(axis=0) / np.maximum(count, 1)
    squares = np.where(mask, (filled - mean) ** 2, 0.0).sum(axis=0)
    return squares, count - 1


def fit_gaussians(phi: np.ndarray, mask: np.ndarray, scale: str = "per_example") -> tuple[np.ndarray, np.ndarray]:
    """Per-example Gaussians over the models where mask is True.

    phi, mask: (S, n). Returns (mu (n,), sigma (n,)): mu is the median over the selected
    models (NaN for an example with none); sigma is the per-example std with ddof=1 (NaN
    for an example with fewer than two) or, for scale="pooled", the degrees-of-freedom
    weighted pooled std over all examples (NaN only if no example has two models). Finite
    sigmas are floored at SIGMA_FLOOR.
    """
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, not {scale!r}")
    phi = np.asarray(phi, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    if phi.ndim != 2 or phi.shape != mask.shape:
        raise ValueError(f"phi and mask must both be (models, examples), got {phi.shape} and {mask.shape}")
    mu = _masked_median(phi, mask)
    squares, dof = _masked_moments(phi, mask)
    with np.errstate(invalid="ignore", divide="ignore"):
        if scale == "per_example":
            variance = np.where(dof > 0, squares / np.maximum(dof, 1), np.nan)
        else:
            weights = np.maximum(dof, 0)
            total = weights.sum()
            pooled = squares[weights > 0].sum() / total if total > 0 else np.nan
            variance = np.full(phi.shape[1], pooled)
        sigma = np.sqrt(variance)
        sigma = np.where(sigma < SIGMA_FLOOR, SIGMA_FLOOR, sigma)  # NaN stays NaN
    return mu, sigma


def log_likelihood_ratio(target_phi: np.ndarray, mu_a: np.ndarray, sigma_a: np.ndarray,
                         mu_b: np.ndarray, sigma_b: np.ndarray) -> np.ndarray:
    """log N(phi; mu_a, sigma_a) - log N(phi; mu_b, sigma_b), broadcasting over leading axes."""
    z_a = (target_phi - mu_a) / sigma_a
    z_b = (target_phi - mu_b) / sigma_b
    return 0.5 * (z_b**2 - z_a**2) + np.log(sigma_b) - np.log(sigma_a)


@ATTACKS.register("lira")
def online_scores(target_phi: np.ndarray, phi: np.ndarray, in_mask: np.ndarray,
                  scale: str = "per_example", out_mask: np.ndarray | None = None) -> np.ndarray:
    """LiRA (Carlini et al.), online: log N(phi_t; mu_in, sigma_in) - log N(phi_t; mu_out, sigma_out).

    target_phi (..., n) are the target models' signals; phi, in_mask (S, n) the reference
    models' signals and whether each trained on each example (and used as IN); `out_mask`
    the models used as OUT (default: every model not IN). Returns (..., n).
    """
    in_mask = np.asarray(in_mask, dtype=bool)
    out = ~in_mask if out_mask is None else np.asarray(out_mask, dtype=bool)
    mu_in, sigma_in = fit_gaussians(phi, in_mask, scale)
    mu_out, sigma_out = fit_gaussians(phi, out, scale)
    return log_likelihood_ratio(np.asarray(target_phi, dtype=np.float64), mu_in, sigma_in, mu_out, sigma_out)


def _out_z(target_phi: np.ndarray, phi: np.ndarray, in_mask: np.ndarray, scale: str,
           out_mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(z of the targets against the OUT Gaussian, its sigma); OUT = `out_mask`, or every model not IN."""
    out = ~np.asarray(in_mask, dtype=bool) if out_mask is None else np.asarray(out_mask, dtype=bool)
    mu_out, sigma_out = fit_gaussians(phi, out, scale)
    return (np.asarray(target_phi, dtype=np.float64) - mu_out) / sigma_out, sigma_out


def offline_scores(target_phi: np.ndarray, phi: np.ndarray, in_mask: np.ndarray,
                   scale: str = "per_example", out_mask: np.ndarray | None = None) -> np.ndarray:
    """Offline LiRA, the paper's one-sided test against the OUT Gaussian only.

    Returns z = (phi_t - mu_out) / sigma_out, shape (..., n). The one-sided p-value of the
    null "x is OUT" is 1 - Phi(z), a decreasing function of z, so z ranks examples exactly
    as the p-value does (higher = more likely member) without saturating at 0 or 1.
    IN models (in_mask True) are not used; `out_mask` names the OUT models to fit (default:
    every model not IN).
    """
    return _out_z(target_phi, phi, in_mask, scale, out_mask)[0]


def offline_two_sided_scores(target_phi: np.ndarray, phi: np.ndarray, in_mask: np.ndarray,
                             scale: str = "per_example", out_mask: np.ndarray | None = None) -> np.ndarray:
    """Offline LiRA as Carlini et al.'s public code scores it: -log N(phi_t; mu_out, sigma_out).

    Two-sided: phi far above *or* far below what OUT models give scores high. For an unlearned
    target this flags the forget points that were not forgotten and those forgotten too hard
    (pushed below what retraining gives), which the one-sided test ranks as least member-like.
    """
    z, sigma_out = _out_z(target_phi, phi, in_mask, scale, out_mask)
    return 0.5 * z**2 + np.log(sigma_out) + 0.5 * np.log(2 * np.pi)


ScoreFn = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def shadow_game(phi: np.ndarray, in_mask: np.ndarray, score_fn: ScoreFn,
                rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Leave-one-out game over the shadow models.

    Each shadow s in turn is the target, scored by score_fn(phi[s], phi_others, in_used,
    out_used) with the other S - 1 shadows as references. Leaving s out leaves the examples
    s trained on one IN reference fewer than the others (and one OUT more); with `rng`, every
    example keeps the same number of IN and of OUT references (the smallest there is, chosen
    at random), so members and non-members are fitted alike. Returns (scores (S, n),
    is_member (S, n)), is_member being a copy of in_mask. The loop is over the S models;
    each call is vectorised over the n examples.
    """
    phi = np.asarray(phi, dtype=np.float64)
    in_mask = np.asarray(in_mask, dtype=bool)
    if phi.shape != in_mask.shape or phi.ndim != 2:
        raise ValueError(f"phi and in_mask must both be (shadows, examples), got {phi.shape} and {in_mask.shape}")
    shadows = len(phi)
    scores = np.empty_like(phi)
    for s in range(shadows):
        others = np.arange(shadows) != s
        inside, outside = in_mask[others], ~in_mask[others]
        if rng is not None:
            inside = keep_per_column(inside, int(inside.sum(axis=0).min()), rng)
            outside = keep_per_column(outside, int(outside.sum(axis=0).min()), rng)
        scores[s] = score_fn(phi[s], phi[others], inside, outside)
    return scores, in_mask.copy()
