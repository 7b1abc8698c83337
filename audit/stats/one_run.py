"""The one-run privacy audit's ε lower bound (Steinke, Nasr and Jagielski, "Privacy Auditing with
One (1) Training Run", NeurIPS 2023).

m canaries are each included in the training set independently with probability ½ (S_i = ±1).
From the trained model the auditor scores every canary, guesses "included" for the k+ highest
scores, "excluded" for the k− lowest and abstains on the rest: r = k+ + k− guesses, W of them
correct. The guesses depend on the model alone, so the paper's theorems apply:

- (ε, 0)-DP: W is stochastically dominated by Binomial(r, q), q = e^ε / (1 + e^ε), so
  p(ε) = P[Bin(r, q) ≥ W] is a p-value for "the training is ε-DP".
- (ε, δ)-DP: the paper's closed-form p-value for δ > 0 (the bound its Python listing computes)
  adds 2mδ times the largest average of the binomial's probabilities over a window just below W:
  p(ε) = P[Bin(r, q) ≥ W] + 2mδ · max_{1≤i≤W} P[W − i ≤ Bin(r, q) < W] / i, capped at 1.
  The paper's tighter bound by its recursive procedure is not computed here; this one is valid
  and only looser.

The (1 − α) lower bound is ε_lb = inf{ε ≥ 0 : p(ε) > α}: every ε below it is rejected at level
α, so P[ε_lb > ε_true] ≤ α. With δ = 0 it has a closed form, ε_lb = logit of the one-sided
Clopper-Pearson lower bound on the proportion W / r (0 where that is at most ½). With δ > 0 it
is at most the δ = 0 bound and is found by a grid search below it.

Choosing the guesses: without given k± the audit tries a fixed set of symmetric choices
k+ = k− = round(f·m/2), f in GUESS_FRACTIONS, each tested at α / (number of choices) (a union
bound), and reports the largest bound; the set never depends on which canaries were included.

Several models (independent training runs, each with its own random inclusion) give one bound
each; their mean, spread, min and max describe them, and the only joint claim is the union
bound: the largest per-model bound at α / (number of models) holds with confidence 1 − α.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special, stats

from audit.core.errors import SalunInputError
from audit.stats.basics import clopper_pearson_lower, summarize

METHOD = "steinke2023_one_run"
GUESS_FRACTIONS = (0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
_TOLERANCE = 1e-10      # the search stops when its bracket on ε is this narrow
_GRID = 64              # grid steps per round of the search for the first crossing


def _check_alpha(alpha: float) -> float:
    if not isinstance(alpha, (int, float)) or not 0.0 < float(alpha) < 1.0:
        raise SalunInputError(f"alpha: must be a number in (0, 1), got {alpha!r}")
    return float(alpha)


def _check_delta(delta: float) -> float:
    if not isinstance(delta, (int, float)) or not 0.0 <= float(delta) < 1.0:
        raise SalunInputError(f"delta: must be a number in [0, 1), got {delta!r}")
    return float(delta)


def _check_count(name: str, value, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise SalunInputError(f"{name}: must be an integer >= {low}, got {value!r}")
    return int(value)


def _check_counts(guesses, correct, delta: float, canaries) -> tuple[int, int, int | None]:
    guesses = _check_count("guesses", guesses)
    correct = _check_count("correct", correct)
    if correct > guesses:
        raise SalunInputError(f"correct: {correct} correct guesses out of only {guesses} guesses")
    if canaries is not None:
        canaries = _check_count("canaries", canaries)
        if canaries < guesses:
            raise SalunInputError(f"canaries: {canaries} canaries cannot give {guesses} guesses")
    elif delta > 0:
        raise SalunInputError("canaries: the number of canaries m is needed when delta > 0")
    return guesses, correct, canaries


def p_value(guesses: int, correct: int, epsilon: float, delta: float = 0.0,
            canaries: int | None = None) -> float:
    """P-value of `correct` right guesses out of `guesses` under "(epsilon, delta)-DP".

    P[Bin(r, q) ≥ W] with q = e^ε / (1 + e^ε), plus, for δ > 0, the paper's correction
    2mδ · max_i P[W − i ≤ Bin(r, q) < W] / i (m = `canaries`), capped at 1.
    """
    delta = _check_delta(delta)
    guesses, correct, canaries = _check_counts(guesses, correct, delta, canaries)
    if not math.isfinite(epsilon) or epsilon < 0:
        raise SalunInputError(f"epsilon: must be a finite number >= 0, got {epsilon!r}")
    return _p_value(guesses, correct, float(epsilon), delta, canaries or guesses)


def _p_value(guesses: int, correct: int, epsilon: float, delta: float, canaries: int) -> float:
    return float(_p_values(guesses, correct, np.array([epsilon]), delta, canaries)[0])


def _p_values(guesses: int, correct: int, epsilons: np.ndarray, delta: float, canaries: int) -> np.ndarray:
    """`p_value` at each of `epsilons` (1-D), all at once."""
    q = special.expit(epsilons)
    tail = stats.binom.sf(correct - 1, guesses, q)
    if delta == 0.0 or correct == 0:
        return np.minimum(tail, 1.0)
    k = np.arange(correct - 1, -1, -1, dtype=np.float64)
    log_choose = special.gammaln(guesses + 1) - special.gammaln(k + 1) - special.gammaln(guesses - k + 1)
    below = np.exp(log_choose + k * special.log_expit(epsilons)[:, None]
                   + (guesses - k) * special.log_expit(-epsilons)[:, None])
    window = np.cumsum(below, axis=1) / np.arange(1, correct + 1)
    return np.minimum(tail + 2.0 * canaries * delta * window.max(axis=1), 1.0)


def _pure_bound(guesses: int, correct: int, alpha: float) -> float:
    if correct == 0:
        return 0.0
    q_low = clopper_pearson_lower(correct, guesses, alpha)
    if q_low <= 0.5:
        return 0.0
    return float(special.logit(q_low))


def _approximate_bound(guesses: int, correct: int, alpha: float, delta: float, canaries: int) -> float:
    """First crossing of alpha by the corrected p-value below the δ = 0 bound, which it cannot
    pass (the correction only adds). The p-value need not rise monotonically in ε, so each round
    evaluates a grid over the bracket and keeps the step where it first exceeds alpha (an
    excursion above alpha narrower than one step of the first grid, high / 64, goes unseen)."""
    low, high = 0.0, _pure_bound(guesses, correct, alpha)
    if _p_value(guesses, correct, high, delta, canaries) <= alpha:
        return high
    while high - low > _TOLERANCE * max(1.0, high):
        grid = np.linspace(low, high, _GRID + 1)
        first = int(np.argmax(_p_values(guesses, correct, grid, delta, canaries) > alpha))
        if first == 0:
            return low
        low, high = float(grid[first - 1]), float(grid[first])
    return low


def epsilon_lower_bound(guesses: int, correct: int, alpha: float = 0.05, delta: float = 0.0,
                        canaries: int | None = None) -> float:
    """The (1 − alpha) lower bound on ε from `correct` right guesses out of `guesses`.

    ε_lb = inf{ε ≥ 0 : p(ε) > alpha} with `p_value`'s p(ε): 0 when the guesses show nothing,
    finite at correct == guesses, non-decreasing in `correct`. For δ > 0 that needs alpha < ¼:
    P[Bin(r, q) ≥ rq] > ¼ (q ≥ ½), so p(ε) ≤ alpha puts W above the binomial's mode, where both
    of p's terms fall as W grows.
    `canaries` (m) is needed when delta > 0: the correction grows with m.
    """
    alpha = _check_alpha(alpha)
    delta = _check_delta(delta)
    guesses, correct, canaries = _check_counts(guesses, correct, delta, canaries)
    if delta == 0.0:
        return _pure_bound(guesses, correct, alpha)
    return _approximate_bound(guesses, correct, alpha, delta, canaries)


def _check_scores(scores, included) -> tuple[np.ndarray, np.ndarray]:
    try:
        scores = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError):
        raise SalunInputError("scores: must be an array of numbers") from None
    included = np.asarray(included)
    if scores.ndim != 1 or scores.size == 0:
        raise SalunInputError(f"scores: must be a non-empty 1-D array, got shape {scores.shape}")
    if included.shape != scores.shape:
        raise SalunInputError(f"included: shape {included.shape} does not match scores' {scores.shape}")
    if not np.all(np.isfinite(scores)):
        raise SalunInputError("scores: every score must be finite")
    if included.dtype != np.bool_ and not np.all(np.isin(included, (0, 1))):
        raise SalunInputError("included: must be booleans (or 0/1)")
    return scores, included.astype(bool)


def guess_choices(canaries: int) -> list[tuple[int, int]]:
    """The fixed (k+, k−) pairs tried when none is given: k+ = k− = round(f·m/2), f in GUESS_FRACTIONS."""
    pairs = []
    for fraction in GUESS_FRACTIONS:
        k = max(1, round(fraction * canaries / 2))
        if 2 * k <= canaries and (k, k) not in pairs:
            pairs.append((k, k))
    return pairs


def _choices(m: int, k_plus, k_minus) -> list[tuple[int, int]]:
    if k_plus is None and k_minus is None:
        pairs = guess_choices(m)
        if not pairs:
            raise SalunInputError(f"scores: {m} canary cannot give one guess of each kind; pass k_plus or k_minus")
        return pairs
    k_plus = 0 if k_plus is None else _check_count("k_plus", k_plus)
    k_minus = 0 if k_minus is None else _check_count("k_minus", k_minus)
    if k_plus + k_minus > m:
        raise SalunInputError(f"k_plus + k_minus: {k_plus} + {k_minus} guesses exceed the {m} canaries")
    return [(k_plus, k_minus)]


def _correct(order: np.ndarray, included: np.ndarray, k_plus: int, k_minus: int) -> int:
    top = order[:k_plus]
    bottom = order[len(order) - k_minus:] if k_minus else order[:0]
    return int(included[top].sum() + (~included[bottom]).sum())


def one_run_audit(scores: np.ndarray, included: np.ndarray, k_plus: int | None = None,
                  k_minus: int | None = None, alpha: float = 0.05, delta: float = 0.0) -> dict:
    """The one-run audit of one trained model from its canaries' member scores.

    `scores` (m,): higher means "member"; `included` (m,) bool: which canaries were trained on.
    The k_plus highest scores are guessed members and the k_minus lowest non-members (ties by
    position: the earlier canary ranks higher). Given neither k, every pair of `guess_choices(m)`
    is tried at alpha / (number of pairs) and the best bound kept; given one, the other is 0.
    """
    alpha = _check_alpha(alpha)
    delta = _check_delta(delta)
    scores, included = _check_scores(scores, included)
    m = scores.size
    pairs = _choices(m, k_plus, k_minus)
    alpha_used = alpha / len(pairs)
    order = np.argsort(-scores, kind="stable")
    best = None
    for plus, minus in pairs:
        correct = _correct(order, included, plus, minus)
        bound = epsilon_lower_bound(plus + minus, correct, alpha_used, delta, canaries=m)
        if best is None or bound > best[0]:
            best = (bound, plus, minus, correct)
    bound, plus, minus, correct = best
    return {
        "epsilon_lower_bound": bound, "guesses": plus + minus, "correct": correct, "canaries": m,
        "k_plus": plus, "k_minus": minus, "k_tried": [list(pair) for pair in pairs],
        "alpha": alpha, "alpha_used": alpha_used, "delta": delta, "method": METHOD,
        "confidence": 1.0 - alpha,
    }


def one_run_audits(scores: np.ndarray, included: np.ndarray, k_plus: int | None = None,
                   k_minus: int | None = None, alpha: float = 0.05, delta: float = 0.0) -> dict:
    """One-run audits of several independently trained models: `scores`, `included` (models, m).

    Each model's bound holds at confidence 1 − alpha on its own. The summary describes them
    (mean with its std and 95 % Student-t interval over the models, min, max, n = models); the joint
    claim is `joint_epsilon_lower_bound`, the largest bound with each model at alpha / models,
    which holds with confidence 1 − alpha by the union bound.
    """
    alpha = _check_alpha(alpha)
    scores, included = np.asarray(scores), np.asarray(included)
    if scores.ndim != 2 or scores.shape[0] == 0:
        raise SalunInputError(f"scores: must be a (models, canaries) array, got shape {scores.shape}")
    if included.shape != scores.shape:
        raise SalunInputError(f"included: shape {included.shape} does not match scores' {scores.shape}")
    n = scores.shape[0]
    models = [one_run_audit(s, i, k_plus, k_minus, alpha, delta) for s, i in zip(scores, included)]
    bounds = [model["epsilon_lower_bound"] for model in models]
    joint = [one_run_audit(s, i, k_plus, k_minus, alpha / n, delta) for s, i in zip(scores, included)]
    summary = summarize(bounds, confidence=0.95, bounds=(0.0, math.inf))
    summary.pop("per_seed")
    summary.update(min=min(bounds), max=max(bounds), units="models")
    return {
        "method": METHOD, "alpha": alpha, "delta": float(delta), "confidence": 1.0 - alpha,
        "models": models, "summary": summary,
        "joint_epsilon_lower_bound": max(model["epsilon_lower_bound"] for model in joint),
        "joint_alpha_per_model": alpha / n,
    }
