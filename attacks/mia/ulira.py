"""U-LiRA, the per-example unlearning attack of Hayes et al. ("Inexact Unlearning Needs More
Careful Evaluations to Avoid a False Sense of Privacy").

Shadow originals are trained on random halves of the pool and then unlearned by the audited
method. For every example x, one Gaussian is fitted to phi(x) over the shadows that trained
on x and then forgot it ("trained then unlearned") and one over the shadows that never
trained on x ("never trained"), with lira.fit_gaussians (median location, per-example or
pooled std). A target model, either unlearned with x forgotten or never having seen x, is
scored by the log-likelihood ratio of the two; higher = more likely unlearned rather than
never trained. An AUC of 0.5 means the unlearning is indistinguishable from never training.
"""

from __future__ import annotations

import numpy as np

from attacks.mia.lira import fit_gaussians, log_likelihood_ratio
from audit.core.registry import ATTACKS

VERSION = "1"


@ATTACKS.register("ulira")
def scores(target_phi: np.ndarray, shadow_phi: np.ndarray, forgot: np.ndarray, never: np.ndarray,
           scale: str = "per_example") -> np.ndarray:
    """U-LiRA (Hayes et al.): log N(phi_t; unlearned) - log N(phi_t; never trained), per model and example.

    target_phi (T, n) (any leading axes); shadow_phi, forgot, never (S, n): the shadows'
    signals, whether x was in the shadow's training set and then in its forget set, and
    whether x was outside its training set. Returns (T, n); NaN where an example has no
    shadow on one side (or, per example, fewer than two).
    """
    forgot = np.asarray(forgot, dtype=bool)
    never = np.asarray(never, dtype=bool)
    if np.any(forgot & never):
        raise ValueError("an example cannot be both forgotten by and never trained in the same shadow")
    mu_u, sigma_u = fit_gaussians(shadow_phi, forgot, scale)
    mu_n, sigma_n = fit_gaussians(shadow_phi, never, scale)
    return log_likelihood_ratio(np.asarray(target_phi, dtype=np.float64), mu_u, sigma_u, mu_n, sigma_n)
