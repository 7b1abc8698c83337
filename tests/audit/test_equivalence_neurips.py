"""The NeurIPS 2023 competition ε against hand-made answers and a rule-by-rule loop."""

import math

import numpy as np
import pytest

from audit import neurips2023 as equivalence
from audit.neurips2023 import (
    DELTA,
    epsilon_table,
    final_score,
    forget_score,
    per_example_epsilon,
    resolution,
)

# -- the reference: one example, one rule at a time, as the definition reads ----------

def literal_rule_epsilon(fpr, fnr, delta=DELTA):
    """Rule 5 for one rule; None when the rule is discarded."""
    if fpr == 0 and fnr == 0:
        return math.inf
    if fpr == 0 or fnr == 0:
        return None
    terms = []
    if 1 - delta - fpr > 0:
        terms.append(math.log((1 - delta - fpr) / fnr))
    if 1 - delta - fnr > 0:
        terms.append(math.log((1 - delta - fnr) / fpr))
    if not terms:  # FPR = FNR = 1: a perfectly inverted rule
        return math.inf
    return max(max(terms), 0.0)


def literal_epsilon(unlearned, retrained, delta=DELTA, cap=equivalence.CAP):
    """ε of one forget example from its N unlearned and N retrained values of φ."""
    u, r = [float(x) for x in unlearned], [float(x) for x in retrained]
    n = len(u)
    # Rule 1: the positive side has the larger median (a tie: unlearned).
    pos, neg = (u, r) if np.median(u) >= np.median(r) else (r, u)
    # Rule 2: range guard, smaller-median side over larger-median side.
    pos_range, neg_range = max(pos) - min(pos), max(neg) - min(neg)
    if pos_range > 0 and neg_range / pos_range < equivalence.RANGE_RATIO:
        return cap
    rates = []
    # Rule 3: single thresholds over the pooled range; φ > t is called positive.
    lo, hi = min(pos + neg), max(pos + neg)
    for t in np.linspace(lo, hi, math.ceil((hi - lo) * equivalence.PER_UNIT)):
        fpr = sum(x > t for x in neg) / n
        fnr = sum(x <= t for x in pos) / n
        rates.append((fpr, fnr))
    # Rule 4: intervals [left, right] around the peakier (smaller-range) side.
    peaky, other = (pos, neg) if pos_range <= neg_range else (neg, pos)
    low, high = min(peaky), max(peaky)
    width = high - low
    start, stop = low + width - equivalence.PAD, high + equivalence.PAD
    offsets = np.linspace(-equivalence.PAD, equivalence.PAD, equivalence.LEFT_VALUES)
    for right in np.linspace(start, stop, math.ceil((stop - start) * equivalence.PER_UNIT)):
        for o in offsets:
            left = right + (o - width)
            fpr = sum(left <= x <= right for x in other) / n
            fnr = sum(not (left <= x <= right) for x in peaky) / n
            rates.append((fpr, fnr))
    # Rules 5 and 6: ε per rule, discarded rules dropped, maximum clipped to [0, cap].
    eps = [literal_rule_epsilon(fpr, fnr, delta) for fpr, fnr in rates]
    return min(max([0.0] + [e for e in eps if e is not None]), cap)


def literal_epsilons(unlearned, retrained, **kwargs):
    return np.array([literal_epsilon(unlearned[:, i], retrained[:, i], **kwargs)
                     for i in range(unlearned.shape[1])])


@pytest.fixture
def coarse(monkeypatch):
    """Coarser grids, so the rule-by-rule loop stays quick; both sides read them."""
    monkeypatch.setattr(equivalence, "PER_UNIT", 10)
    monkeypatch.setattr(equivalence, "LEFT_VALUES", 40)


def column(*values):
    return np.array(values, dtype=float)[:, None]


# -- golden cases -----------------------------------------------------------------------

def test_perfect_separation_is_infinite_and_capped():
    u = column(0.0, 0.1, 0.2, 0.3)
    assert per_example_epsilon(u, u + 10.0)[0] == 50.0
    assert per_example_epsilon(u, u + 10.0, cap=20.0)[0] == 20.0


def test_collapsed_unlearned_population_hits_the_range_guard(monkeypatch):
    r = column(1.0, 2.5, 2.5005, 4.0)
    u = column(2.4999, 2.5, 2.5001, 2.5002)      # range 3e-4 / 3 < 0.01, smaller median
    assert per_example_epsilon(u, r)[0] == 50.0
    assert per_example_epsilon(np.full((4, 1), 2.4), r)[0] == 50.0
    monkeypatch.setattr(equivalence, "RANGE_RATIO", 0.0)
    assert per_example_epsilon(u, r)[0] < 50.0     # the rules alone do not separate it


def test_identical_samples_give_zero():
    values = np.random.default_rng(0).normal(size=(16, 5))
    np.testing.assert_array_equal(per_example_epsilon(values, values.copy()), 0.0)


def test_only_the_interval_rule_separates():
    r = column(-3.0, -2.5, 2.5, 3.0)
    u = column(-0.1, 0.0, 0.05, 0.1)
    table = epsilon_table(4)
    # The best threshold, t in [-0.1, 0): FPR = 2/4, FNR = 1/4.
    best = math.log((1 - DELTA - 0.5) / 0.25)
    assert equivalence._threshold_epsilon(u.T, r.T, table)[0] == pytest.approx(best, abs=1e-12)
    assert per_example_epsilon(u, r)[0] == 50.0


def test_rules_with_one_zero_rate_are_discarded():
    u, r = column(0.0, 1.0), column(0.0, 2.0)
    # t in [1, 2) has FPR = 0, FNR = 1/2: kept, its second term would be ln(…/0) = ∞.
    assert per_example_epsilon(u, r)[0] == 0.0
    table = epsilon_table(2)
    assert table[0, 1] == table[1, 0] == 0.0 and table[0, 0] == math.inf


def test_the_table_is_the_rule_by_rule_bound():
    n = 7
    table = epsilon_table(n)
    for a in range(n + 1):
        for b in range(n + 1):
            expected = literal_rule_epsilon(a / n, b / n)
            assert table[a, b] == pytest.approx(0.0 if expected is None else expected, abs=1e-12)
    assert table[1, 1] == pytest.approx(math.log(n - 1 - n * DELTA))


# -- agreement with the rule-by-rule loop -------------------------------------------------

@pytest.mark.parametrize("seed", range(12))
def test_matches_the_literal_loop_on_random_cases(coarse, seed):
    rng = np.random.default_rng(seed)
    n_models, n_examples = int(rng.integers(2, 12)), int(rng.integers(1, 6))
    u = rng.normal(rng.normal(size=n_examples), rng.uniform(0.05, 2.0, n_examples), (n_models, n_examples))
    r = rng.normal(rng.normal(size=n_examples), rng.uniform(0.05, 2.0, n_examples), (n_models, n_examples))
    if seed % 3 == 0:                              # ties within and across the populations
        u, r = np.round(u, 1), np.round(r, 1)
        r[: n_models // 2] = u[: n_models // 2]
    if seed % 4 == 1:                              # a collapsed population
        u[:, 0] = u[0, 0]
    np.testing.assert_allclose(per_example_epsilon(u, r), literal_epsilons(u, r), rtol=0, atol=1e-9)


def test_matches_the_literal_loop_on_the_competition_grids():
    rng = np.random.default_rng(42)
    u = np.round(rng.normal(0.0, 0.5, (4, 2)), 1)
    r = np.round(rng.normal(0.3, 0.7, (4, 2)), 2)
    np.testing.assert_allclose(per_example_epsilon(u, r), literal_epsilons(u, r), rtol=0, atol=1e-9)


def test_rejects_mismatched_or_non_finite_input():
    with pytest.raises(ValueError):
        per_example_epsilon(np.zeros((3, 2)), np.zeros((4, 2)))
    with pytest.raises(ValueError):
        per_example_epsilon(np.array([[np.nan]]), np.zeros((1, 1)))


# -- scores ---------------------------------------------------------------------------------

def test_forget_score_buckets():
    # N = 512: edges every 0.5 up to ceil(ln 511) = 7; bucket k is worth 2^-k, beyond it 0.
    eps = [0.0, 0.49, 0.5, 1.2, 6.9, 7.0, 50.0]
    expected = (1 + 1 + 0.5 + 0.25 + 2.0 ** -13 + 0 + 0) / 7
    assert forget_score(eps, 512) == pytest.approx(expected, abs=1e-15)
    assert forget_score([0.0, 0.0], 2) == 0.0
    assert forget_score([0.0, 1.0], 4) == pytest.approx((1 + 0.25) / 2)   # top = ceil(ln 3) = 2


def test_final_score_and_resolution():
    assert final_score(0.5, [0.9, 0.7], 1.0, 0.8, [0.8, 0.8]) == pytest.approx(0.4)
    assert final_score(1.0, 0.5, 0.5, 0.6, 0.3) == pytest.approx(2.0)
    assert resolution(512) == pytest.approx(math.log(512))
    assert equivalence.NEURIPS2023_VERSION == "1"
