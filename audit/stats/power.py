"""Power of the rules that PASS on the absence of a finding, and what would decide the others.

A rule such as `equivalence.per_example.ks.fraction_different <= 0.05` passes when few
forget examples differ significantly from retraining. With few models per side the
per-example tests flag almost nothing, so the rule would pass a method that did not
forget. Such a PASS is only given when the rule has at least POWER chance of failing the
smallest violation it is meant to catch:

    twice the tolerated share of the forget set (at least one example) whose φ is shifted
    by one standard deviation of the retrained models' φ (Cohen's d = 1), the rest as
    retrained.

The power is simulated on that effect with the audit's own numbers (models per side,
forget examples, level, the same KS test and Benjamini-Hochberg step as the audit) from a
fixed seed, so it is reproducible. Rules judged on a 95 % interval or an equivalence test
need no such guard: they PASS only when the data exclude the effect.
"""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np

from audit.stats import basics as stats
from audit.core.seeds import numpy_generator

POWER = 0.8
SHIFT = 1.0          # the effect's size, in retrained standard deviations of φ
DRAWS = 100          # simulated audits per power estimate
MAX_MODELS = 1024    # the search for a deciding N stops here
EFFECT = ("twice the tolerated share of the forget set with φ shifted by one standard deviation "
          "of the retrained models' φ")


@functools.lru_cache(maxsize=256)
def ks_rule_power(n_models: int, n_examples: int, tolerated: float, alpha: float, draws: int = DRAWS) -> float:
    """P(the KS rule `fraction_different <= tolerated` FAILs) under the module's effect, with
    `n_models` unlearned and as many retrained models per example."""
    affected = min(n_examples, max(1, math.ceil(2 * tolerated * n_examples)))
    rng = numpy_generator("ks rule power", n_models, n_examples, tolerated, alpha, draws)
    retrained = rng.normal(size=(n_models, draws * n_examples))
    unlearned = rng.normal(size=(n_models, draws, n_examples))
    unlearned[:, :, :affected] += SHIFT
    with warnings.catch_warnings():  # scipy falls back to the asymptotic p-value for large N, and says so
        warnings.simplefilter("ignore", RuntimeWarning)
        _, p = stats.ks_per_example(unlearned.reshape(n_models, -1), retrained)
    failed = 0
    for draw in p.reshape(draws, n_examples):
        rejected, _ = stats.benjamini_hochberg(draw, alpha)
        failed += rejected.mean() > tolerated
    return float(failed / draws)


def models_for_power(power_at, n_models: int, target: float = POWER) -> int | None:
    """The smallest N >= n_models with power_at(N) >= target (doubling, then bisection), or
    None when not even MAX_MODELS reach it."""
    low, high = n_models, n_models
    while power_at(high) < target:
        if high >= MAX_MODELS:
            return None
        low, high = high, min(2 * high, MAX_MODELS)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if power_at(middle) >= target else (middle, high)
    return high


def ks_rule_guard(n_models: int, n_examples: int, tolerated: float, alpha: float) -> dict:
    """{power, effect, models_needed}: the KS rule's power at these numbers, and the models per
    side that would give it POWER (None past MAX_MODELS)."""
    power = ks_rule_power(n_models, n_examples, tolerated, alpha)
    needed = n_models if power >= POWER else models_for_power(
        lambda n: ks_rule_power(n, n_examples, tolerated, alpha, draws=DRAWS // 2), n_models + 1)
    return {"power": power, "effect": EFFECT, "models_needed": needed}


def models_to_decide(estimate: float, threshold: float, se_models: float, se_examples: float,
                     n_models: int) -> int | None:
    """Models per population that would shrink a two-way interval (±1.96 se) clear of
    `threshold`, if the estimate stayed where it is: the models' share of the variance falls
    like 1/N, the examples' share does not. None when the examples' share alone already
    reaches the threshold (a larger forget set, not more models, would decide it)."""
    room = (abs(estimate - threshold) / 1.96) ** 2 - se_examples**2
    if room <= 0:
        return None
    return max(n_models + 1, math.ceil(n_models * se_models**2 / room))
