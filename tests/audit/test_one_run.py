"""The one-run audit's ε lower bound: planted answers, calibration under known ε, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special, stats

from audit.core.errors import SalunInputError
from audit.stats.one_run import (
    GUESS_FRACTIONS,
    METHOD,
    epsilon_lower_bound,
    guess_choices,
    one_run_audit,
    one_run_audits,
    p_value,
)

RR_EPSILON = 1.0
RR_ACCURACY = math.e / (1 + math.e)


def _bisect_bound(guesses: int, correct: int, alpha: float) -> float:
    """Largest ε with P[Bin(r, e^ε/(1+e^ε)) ≥ W] ≤ alpha, by bisection on scipy's binomial tail."""
    def rejected(eps: float) -> bool:
        return stats.binom.sf(correct - 1, guesses, special.expit(eps)) <= alpha

    if not rejected(0.0):
        return 0.0
    low, high = 0.0, 1.0
    while rejected(high):
        low, high = high, 2 * high
    for _ in range(200):
        middle = (low + high) / 2
        low, high = (middle, high) if rejected(middle) else (low, middle)
    return low


def _corrected_p(m: int, r: int, v: int, eps: float, delta: float) -> float:
    """The paper's (ε, δ) p-value written out term by term."""
    pmf = stats.binom.pmf(np.arange(r + 1), r, special.expit(eps))
    tail = pmf[v:].sum()
    worst = max((pmf[v - i:v].sum() / i for i in range(1, v + 1)), default=0.0)
    return min(tail + 2 * m * delta * worst, 1.0)


def _planted(m: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    included = np.zeros(m, dtype=bool)
    included[rng.permutation(m)[: m // 2]] = True
    return included.astype(float), included


def _size(r: int, alpha: float, accuracy: float, eps_true: float, **kwargs) -> float:
    """Exact P[ε_lb > eps_true] when W ~ Bin(r, accuracy): the bound's type-I error. The bound
    rises with W (checked below), so the smallest W that exceeds eps_true is found by bisection."""
    def exceeds(w: int) -> bool:
        return epsilon_lower_bound(r, w, alpha, **kwargs) > eps_true

    if not exceeds(r):
        return 0.0
    low, high = 0, r                                  # exceeds(high), not exceeds(low)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if exceeds(middle) else (middle, high)
    return float(stats.binom.sf(high - 1, r, accuracy))


@pytest.mark.parametrize("m", [100, 1000])
def test_perfectly_separated_canaries_give_the_bound_of_m_correct_guesses_out_of_m(m):
    scores, included = _planted(m, np.random.default_rng(m))
    result = one_run_audit(scores, included, k_plus=m // 2, k_minus=m // 2)
    assert (result["guesses"], result["correct"], result["canaries"]) == (m, m, m)
    assert result["epsilon_lower_bound"] == pytest.approx(_bisect_bound(m, m, 0.05), rel=1e-7)
    assert result["alpha_used"] == 0.05 and result["k_tried"] == [[m // 2, m // 2]]
    assert result["method"] == METHOD and result["confidence"] == pytest.approx(0.95)


def test_the_planted_bound_grows_with_the_number_of_canaries():
    small, large = (one_run_audit(*_planted(m, np.random.default_rng(1)), k_plus=m // 2, k_minus=m // 2)
                    for m in (100, 1000))
    assert large["epsilon_lower_bound"] > small["epsilon_lower_bound"] + 2.0
    # r perfect guesses at level alpha: q^r = alpha, a closed form to check the bisection against
    assert small["epsilon_lower_bound"] == pytest.approx(special.logit(0.05 ** (1 / 100)), rel=1e-7)


def test_the_default_guesses_pay_a_union_bound_over_a_fixed_set():
    m = 1000
    scores, included = _planted(m, np.random.default_rng(3))
    result = one_run_audit(scores, included)
    pairs = guess_choices(m)
    assert result["k_tried"] == [list(pair) for pair in pairs]
    assert len(pairs) == len(GUESS_FRACTIONS)
    assert result["alpha_used"] == pytest.approx(0.05 / len(pairs))
    # every guess of the largest symmetric choice is right: the reported bound is its bound at α/6
    assert (result["k_plus"], result["k_minus"], result["correct"]) == (500, 500, 1000)
    assert result["epsilon_lower_bound"] == pytest.approx(_bisect_bound(1000, 1000, 0.05 / 6), rel=1e-7)
    # the choice never looks at inclusion: the same set of pairs whatever `included` is
    assert one_run_audit(scores, ~included)["k_tried"] == result["k_tried"]


def test_identical_populations_give_zero_in_nearly_every_repetition():
    rng = np.random.default_rng(20231)
    bounds = []
    for _ in range(200):
        included = rng.random(500) < 0.5
        bounds.append(one_run_audit(rng.normal(size=500), included)["epsilon_lower_bound"])
    nonzero = np.mean(np.asarray(bounds) > 0)
    assert nonzero <= 0.05
    assert max(bounds) < 0.6


@pytest.mark.parametrize("r, alpha", [(100, 0.05), (1000, 0.05), (1000, 0.01)])
def test_randomised_response_with_epsilon_one_is_bounded_by_one_with_confidence(r, alpha):
    size = _size(r, alpha, RR_ACCURACY, RR_EPSILON)
    assert size <= alpha
    assert size > alpha / 3, "the bound is valid but far more conservative than it should be"
    rng = np.random.default_rng(r)
    correct = rng.binomial(r, RR_ACCURACY, size=1000)
    exceed = np.mean([epsilon_lower_bound(r, int(w), alpha) > RR_EPSILON for w in correct])
    assert exceed <= alpha + 3 * math.sqrt(alpha * (1 - alpha) / 1000)


def test_randomised_response_canaries_through_the_audit_stay_below_the_true_epsilon():
    rng = np.random.default_rng(7)
    bounds = []
    for _ in range(200):
        members = rng.random(1000) < 0.5
        told = np.where(rng.random(1000) < RR_ACCURACY, members, ~members)
        scores = told + rng.uniform(0.0, 0.5, size=1000)
        bounds.append(one_run_audit(scores, members)["epsilon_lower_bound"])
    bounds = np.asarray(bounds)
    assert np.mean(bounds <= RR_EPSILON) >= 0.95
    assert np.median(bounds) > 0.3, "an attack this strong must show some leakage"


def test_delta_corrects_for_a_mechanism_that_is_only_approximately_private():
    # each canary's answer is the truth w.p. δ, else randomised response: (1, δ)-DP, not 1-DP
    r = m = 1000
    delta = 0.01
    accuracy = delta + (1 - delta) * RR_ACCURACY
    assert _size(r, 0.05, accuracy, RR_EPSILON) > 0.05, "ignoring δ must break this case"
    assert _size(r, 0.05, accuracy, RR_EPSILON, delta=delta, canaries=m) <= 0.05


@pytest.mark.parametrize("r, v, eps", [(20, 17, 0.7), (60, 50, 1.2), (60, 60, 2.5), (200, 10, 0.0)])
def test_the_delta_correction_is_the_papers_p_value(r, v, eps):
    assert p_value(r, v, eps, delta=1e-3, canaries=2 * r) == pytest.approx(
        _corrected_p(2 * r, r, v, eps, 1e-3), rel=1e-9, abs=1e-15)
    assert p_value(r, v, eps) == pytest.approx(_corrected_p(2 * r, r, v, eps, 0.0), rel=1e-9, abs=1e-15)


def test_the_delta_bound_sits_where_the_corrected_p_value_reaches_alpha():
    m, r, v = 400, 200, 180
    bound = epsilon_lower_bound(r, v, 0.05, delta=1e-4, canaries=m)
    assert 0 < bound < epsilon_lower_bound(r, v, 0.05)
    assert _corrected_p(m, r, v, bound - 1e-4, 1e-4) <= 0.05 < _corrected_p(m, r, v, bound + 1e-4, 1e-4)
    # more canaries at the same guesses: a larger correction, a smaller bound
    assert epsilon_lower_bound(r, v, 0.05, delta=1e-4, canaries=10 * m) < bound


@pytest.mark.parametrize("delta", [0.0, 1e-5])
def test_the_bound_is_zero_without_evidence_monotone_in_correct_and_finite_at_all_correct(delta):
    m = r = 300
    bounds = [epsilon_lower_bound(r, v, 0.05, delta=delta, canaries=m) for v in range(r + 1)]
    assert bounds[0] == 0.0 and bounds[r // 2] == 0.0
    assert all(b <= c + 1e-9 for b, c in zip(bounds, bounds[1:]))
    assert math.isfinite(bounds[-1]) and bounds[-1] > bounds[-2] > 0
    assert epsilon_lower_bound(0, 0) == 0.0


def test_several_models_each_get_their_bound_and_a_union_bound_joint_claim():
    rng = np.random.default_rng(11)
    m = 200
    rows = [_planted(m, rng) for _ in range(3)]
    scores = np.stack([row[0] for row in rows])
    included = np.stack([row[1] for row in rows])
    scores[1] = rng.normal(size=m)                    # one model leaks nothing
    result = one_run_audits(scores, included, k_plus=m // 2, k_minus=m // 2)
    bounds = [model["epsilon_lower_bound"] for model in result["models"]]
    assert bounds[1] < bounds[0] == bounds[2] == pytest.approx(_bisect_bound(m, m, 0.05), rel=1e-7)
    summary = result["summary"]
    assert summary["n"] == 3 and summary["units"] == "models"
    assert summary["mean"] == pytest.approx(np.mean(bounds))
    assert summary["std"] == pytest.approx(np.std(bounds, ddof=1))
    assert (summary["min"], summary["max"]) == (min(bounds), max(bounds))
    assert result["joint_alpha_per_model"] == pytest.approx(0.05 / 3)
    assert result["joint_epsilon_lower_bound"] == pytest.approx(_bisect_bound(m, m, 0.05 / 3), rel=1e-7)
    assert result["joint_epsilon_lower_bound"] < max(bounds)


@pytest.mark.parametrize("call, name", [
    (lambda: one_run_audit(np.zeros(5), np.zeros(4, dtype=bool)), "included"),
    (lambda: one_run_audit(np.zeros(10), np.zeros(10, dtype=bool), k_plus=6, k_minus=5), "k_plus + k_minus"),
    (lambda: one_run_audit(np.zeros(10), np.zeros(10, dtype=bool), k_plus=-1), "k_plus"),
    (lambda: one_run_audit(np.zeros(10), np.zeros(10, dtype=bool), alpha=1.0), "alpha"),
    (lambda: one_run_audit(np.zeros(10), np.zeros(10, dtype=bool), alpha=0.0), "alpha"),
    (lambda: one_run_audit(np.array([0.0, np.nan]), np.zeros(2, dtype=bool)), "scores"),
    (lambda: one_run_audit(np.zeros(3), np.array([0, 2, 1])), "included"),
    (lambda: one_run_audit(np.zeros(10), np.zeros(10, dtype=bool), delta=1.5), "delta"),
    (lambda: epsilon_lower_bound(10, 11), "correct"),
    (lambda: epsilon_lower_bound(10, 5, alpha=-0.1), "alpha"),
    (lambda: epsilon_lower_bound(10, 5, delta=1e-5), "canaries"),
    (lambda: epsilon_lower_bound(10, 5, delta=1e-5, canaries=9), "canaries"),
    (lambda: one_run_audits(np.zeros((2, 5)), np.zeros((2, 6), dtype=bool)), "included"),
    (lambda: one_run_audits(np.zeros(5), np.zeros(5, dtype=bool)), "scores"),
])
def test_bad_input_is_one_line_naming_the_argument(call, name):
    with pytest.raises(SalunInputError) as error:
        call()
    message = str(error.value)
    assert message.startswith(name + ":") and "\n" not in message
