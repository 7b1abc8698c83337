"""The audited ε of one population of models: lower bounds that an honest accountant's ε is never below.

Two kinds of evidence, each a (1 − α) lower bound on the ε of the training:

- membership inference over the whole pool (members: every originals trains on it) against the
  test set (non-members), from the offline LiRA score (when the audit has shadow models) and the
  loss threshold; the hypothesis-testing bound of attacks.mia.roc, one score per example and side,
  the examples being the independent trials;
- the one-run audit (audit.stats.one_run) of the population trained with a random half of the
  mislabelled canaries, scored by offline LiRA against the shadows (none of which saw a canary's
  wrong label) or, without shadows, by the logit-scaled confidence in the wrong label.

The gap reads the largest of these bounds, so each is computed at α divided by their number (and
by the number of DP populations the audit compares): the largest holds at 1 − α (Bonferroni).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from attacks.mia import lira, threshold
from attacks.mia.roc import epsilon_lower_bound
from attacks.mia.units import Units
from audit.core.seeds import numpy_generator
from audit.data.canaries import canary_inclusion, canary_labels, canary_positions
from audit.data.shadows import references_of_test_points, shadow_membership
from audit.stats.one_run import one_run_audits
from audit.stats.signals import logit_scaled_confidence


@dataclass(frozen=True)
class Shadows:
    """The shadow models' φ on the pool and the test set, with the models that are OUT for each point."""

    phi_pool: np.ndarray
    phi_test: np.ndarray
    out_pool: np.ndarray
    out_test: np.ndarray
    logits_pool: np.ndarray  # (shadows, pool, classes), for the canaries' wrong labels
    scale: str


def shadows_of(spec: Any, data: Any, plan: Any, obs: Any) -> Shadows | None:
    keys = obs.usable(plan.shadows)
    if len(keys) < len(plan.shadows) or not keys:
        return None
    phi_pool, phi_test = obs.signal(keys, logit_scaled_confidence)
    test = data.eval_test_mask
    out_pool = ~shadow_membership(len(data.pool), spec.attacks.lira.shadows, spec.data.seed)
    out_test = references_of_test_points(int(test.sum()), len(keys), spec.data.seed)
    logits = np.stack([obs.arrays(key)["pool_logits"] for key in keys])
    return Shadows(phi_pool, phi_test[:, test], out_pool, out_test, logits, spec.attacks.lira.scale)


def membership_scores(obs: Any, keys: list[str], data: Any, shadows: Shadows | None) -> dict[str, tuple]:
    """attack -> (pool scores, test scores), each (models, examples), higher meaning member."""
    test = data.eval_test_mask
    loss_pool, loss_test = obs.signal(keys, lambda z, y: threshold.threshold_scores("loss", z, y))
    scores = {"threshold_loss": (loss_pool, loss_test[:, test])}
    if shadows is not None:
        phi_pool, phi_test = obs.signal(keys, logit_scaled_confidence)
        scores["lira_offline"] = (
            lira.offline_scores(phi_pool, shadows.phi_pool, ~shadows.out_pool, shadows.scale, shadows.out_pool),
            lira.offline_scores(phi_test[:, test], shadows.phi_test, ~shadows.out_test, shadows.scale,
                                shadows.out_test))
    return scores


def membership_bounds(obs: Any, keys: list[str], data: Any, shadows: Shadows | None, alpha: float,
                      delta: float, label: str) -> dict[str, Any]:
    """Each attack's ε lower bound, pool (members) against test (non-members), pooled over the models."""
    out = {}
    for name, (pool, test) in membership_scores(obs, keys, data, shadows).items():
        scores = np.concatenate([pool.ravel(), test.ravel()])
        is_member = np.concatenate([np.ones(pool.size, bool), np.zeros(test.size, bool)])
        units = Units.grid(pool.shape, test.shape, shared_models=True, shared_examples=False)
        bound = epsilon_lower_bound(scores, is_member, numpy_generator("dp audit", label, name), alpha, delta,
                                    units.examples)
        out[name] = {**bound, "confidence": 1 - alpha, "n_models": len(keys),
                     "method": "hypothesis-testing bound at one threshold (attacks.mia.roc)"}
    return out


def canary_scores(obs: Any, keys: list[str], data: Any, count: int, seed: int,
                  shadows: Shadows | None) -> np.ndarray:
    """(models, canaries) member scores of the canaries' wrong labels."""
    positions = canary_positions(len(data.pool), count, seed)
    wrong = canary_labels(obs.y_pool[positions], data.num_classes, seed)
    phi = np.stack([logit_scaled_confidence(obs.arrays(key)["pool_logits"][positions], wrong) for key in keys])
    if shadows is None:
        return phi
    reference = np.stack([logit_scaled_confidence(z[positions], wrong) for z in shadows.logits_pool])
    never_in = np.zeros(reference.shape, bool)
    return lira.offline_scores(phi, reference, never_in, shadows.scale)


def one_run(obs: Any, keys: list[str], seeds: list[int], data: Any, count: int, seed: int,
            shadows: Shadows | None, alpha: float, delta: float) -> dict[str, Any]:
    """The one-run audit of the canary population: per model, and the union bound over them."""
    scores = canary_scores(obs, keys, data, count, seed, shadows)
    included = np.stack([canary_inclusion(count, seed, model) for model in seeds])
    audit = one_run_audits(scores, included, alpha=alpha, delta=delta)
    return {**audit, "value": audit["joint_epsilon_lower_bound"], "n_models": len(keys),
            "score": "offline LiRA of the wrong label" if shadows is not None
            else "logit-scaled confidence in the wrong label"}
