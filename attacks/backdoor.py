"""Backdoor verification of deletion (Athena: Sommer et al., "Athena: Probabilistic
Verification of Machine Unlearning").

The data owner plants a trigger in its own points (relabelled to a target class). After the
deletion request it sends n triggered queries and counts how often the model predicts the
target. If the points were deleted the count is ~ Bin(n, q), q the base rate of a model that
never saw the trigger; if not, ~ Bin(n, p), p the backdoor rate of a model that learned it.
"Deleted" is rejected when the count reaches t, the smallest threshold with
P[Bin(n, q) >= t] <= alpha; the test's power is 1 - P[Bin(n, p) < t].

The caller passes a conservative base rate, an upper confidence bound from the retrained
models' triggered queries (`audit.stats.basics.clopper_pearson_upper(k, n, alpha)`), and the backdoor
rate estimated from the original models' queries.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import binom

from audit.data.poison import plant_trigger, queries  # the trigger, planted with the audit's data

__all__ = ["athena_test", "detection_threshold", "plant_trigger", "queries"]


def detection_threshold(n: int, q: float, alpha: float) -> int:
    """The smallest t in 0..n+1 with P[Bin(n, q) >= t] <= alpha; n + 1 means "never reject"."""
    t = np.arange(n + 2)
    tail = binom.sf(t - 1, n, q)  # P[X >= t]; 0 at t = n + 1, so some t always qualifies
    return int(t[np.argmax(tail <= alpha)])


def athena_test(successes: int, n: int, q: float, p: float, alpha: float = 0.05,
                power_wanted: float = 0.8) -> dict:
    """Athena's one-sided binomial test of "deleted" (rate q) against "not deleted" (rate p).

    decision: "not deleted" when successes >= threshold; "deleted" when not rejected and the
    power against p reaches power_wanted; "undecided" otherwise, and always when p <= q.
    """
    if n < 1:
        raise ValueError(f"n (the number of queries) must be >= 1, got {n}")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be in [0, n={n}], got {successes}")
    if not 0 <= q < 1:
        raise ValueError(f"q (the base rate) must be in [0, 1), got {q}")
    if not 0 < p <= 1:
        raise ValueError(f"p (the backdoor rate) must be in (0, 1], got {p}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    t = detection_threshold(n, q, alpha)
    power = 0.0 if t == n + 1 else float(binom.sf(t - 1, n, p))
    rejected = successes >= t
    head = (f"{successes} of {n} triggered queries hit the target; retrained models hit it at "
            f"{q:.3g}, so")
    rule = f"≥ {t} would reject deletion at α = {alpha:g}"
    if t == n + 1:
        rule = f"not even {n} of {n} would reject deletion at α = {alpha:g}"
    if p <= q:
        decision = "undecided"
        why = (f"{head} the test has no power: the backdoor rate {p:.3g} does not exceed the base "
               f"rate, so triggered queries cannot tell a deleted model from one that kept the points.")
    else:
        decision = "not deleted" if rejected else ("deleted" if power >= power_wanted else "undecided")
        why = f"{head} {rule} (power {power:.2f} against the backdoor rate {p:.3g})"
        if decision == "undecided":
            why += f", below the {power_wanted:g} wanted, so a clean result proves little"
        why += "."
    return {
        "successes": successes, "queries": n, "base_rate": q, "backdoor_rate": p,
        "threshold": t, "p_value": float(binom.sf(successes - 1, n, q)), "power": power,
        "alpha": alpha, "rejected": bool(rejected), "decision": decision, "why": why,
    }
