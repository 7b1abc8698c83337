"""The NeurIPS 2023 competition ε against hand-made answers and a transcription of the
published metric.py (google-deepmind/unlearning_evaluation), one example and one rule at a
time."""

import functools
import math

import numpy as np
import pytest
import torch

from audit.stats import neurips2023
from audit.stats.neurips2023 import (
    DELTA,
    epsilon_table,
    final_score,
    forget_score,
    interval_counts,
    interval_grid,
    per_example_epsilon,
    rates,
    resolution,
    threshold_counts,
)

F32 = np.float32

# -- the reference: metric.py's rules, one example and one rule at a time ----------------
# metric.py runs each rule family as one (models, rules) tensor on CUDA; here every rule is
# its own loop step over the models. The rules' floats (thresholds, grid ends, rates, logs)
# are computed as metric.py computes them.


@functools.lru_cache(maxsize=None)
def mean_over_models(positives, n_models, n_rules):
    """torch.mean on CUDA of n_models float32 0/1 indicators, in a family of n_rules rules:
    the float32 sum times the float32 factor fl32(n_rules) / fl32(n_models·n_rules)."""
    total = F32(0)
    for _ in range(positives):
        total = total + F32(1)
    return total * (F32(n_rules) / F32(n_models * n_rules))


@functools.lru_cache(maxsize=None)
def rule_epsilon(tpr, fnr, fpr, tnr, delta=DELTA):
    """metric.py's ε of one rule from its four float32 rates; NaN when it is discarded."""
    eps = F32(0)
    if fpr + fnr == 0 and tpr + tnr == 2:           # perfect separation
        eps = F32(np.inf)
    if eps == 0 and fpr * fnr == 0:                 # one rate 0: too few samples to tell
        eps = F32(np.nan)
    if eps == 0:
        with np.errstate(all="ignore"):             # the log of a negative number is NaN
            first = np.log(1 - delta - fpr) - np.log(fnr)
            second = np.log(1 - delta - fnr) - np.log(fpr)
        terms = [t for t in (first, second) if not np.isnan(t)]     # np.nanmax
        eps = max(max(terms), F32(0)) if terms else F32(np.nan)     # np.clip(…, 0, None)
    return eps


@functools.lru_cache(maxsize=None)
def rule_from_counts(predicted, positives, negatives, n_rules):
    """ε of one rule from its counts: (predicted positive among the positives, among the
    negatives), each side's size, the rule family's size."""
    tp, fp = predicted
    tpr, fnr = (mean_over_models(k, positives, n_rules) for k in (tp, positives - tp))
    fpr, tnr = (mean_over_models(k, negatives, n_rules) for k in (fp, negatives - fp))
    return rule_epsilon(tpr, fnr, fpr, tnr)


def interval_rules(peaky, other, width):
    """ε of every rule "l ≤ φ ≤ r ⇒ peakier side"."""
    start = min(peaky) + width - 2.0
    stop = max(peaky) + 2.0
    right_ends = np.linspace(start, stop, math.ceil((stop - start) * 100))
    n_rules = len(right_ends) * 400
    for right in right_ends:
        for left in np.linspace(right - width - 2.0, right - width + 2.0, 400).tolist():
            tp = sum(left <= x <= right for x in peaky)
            fp = sum(left <= x <= right for x in other)
            yield rule_from_counts((tp, fp), len(peaky), len(other), n_rules)


def threshold_rules(pos, neg):
    """ε of every rule "φ ≥ t ⇒ positive" over the pooled range."""
    lo, hi = min(pos + neg), max(pos + neg)
    count = math.ceil((hi - lo) * 100)
    thresholds = torch.linspace(lo, hi, count, dtype=torch.float32)   # torch's default dtype
    for t in thresholds.tolist():
        tp = sum(x >= t for x in pos)
        fp = sum(x >= t for x in neg)
        yield rule_from_counts((tp, fp), len(pos), len(neg), count)


def literal_epsilon(unlearned, retrained, cap=neurips2023.CAP):
    """ε of one forget example from its N unlearned and N retrained values of φ."""
    u, r = [float(x) for x in unlearned], [float(x) for x in retrained]
    # compute_forget_score_from_confs: the retrained side is positive iff its median is larger.
    pos, neg = (r, u) if np.median(r) > np.median(u) else (u, r)
    # _get_epsilons: the range guard, the smaller range over the larger.
    pos_diff, neg_diff = np.max(pos) - np.min(pos), np.max(neg) - np.min(neg)
    largest = pos_diff if pos_diff > neg_diff else neg_diff
    smallest = neg_diff if pos_diff > neg_diff else pos_diff
    with np.errstate(invalid="ignore"):             # 0/0 is NaN, and NaN < 0.01 is False
        if smallest / largest < 0.01:
            return cap
    # _get_double_threshold_rates: the peakier side; on equal ranges the negative one.
    peaky, other = (neg, pos) if pos_diff >= neg_diff else (pos, neg)
    eps = list(interval_rules(peaky, other, float(smallest)))
    eps += list(threshold_rules(pos, neg))
    kept = [e for e in eps if not np.isnan(e)]
    if not kept:                                    # metric.py's assertion; salun: 0
        return 0.0
    return min(max(float(max(kept)), 0.0), cap)


def literal_epsilons(unlearned, retrained, **kwargs):
    return np.array([literal_epsilon(unlearned[:, i], retrained[:, i], **kwargs)
                     for i in range(unlearned.shape[1])])


def literal_forget_score(eps, n_models):
    """compute_forget_score_from_confs's buckets, edge by edge."""
    max_epsilon = np.ceil(np.log(n_models - 1))
    start, points, buckets = 0.0, 1.0, {}
    while start + 0.5 <= max_epsilon:
        buckets[start] = points
        points /= 2
        start += 0.5
    score = 0.0
    for e in eps:
        for start, points in buckets.items():
            if e < start + 0.5:
                score += points
                break
    return score / len(eps)


def column(*values):
    return np.array(values, dtype=float)[:, None]


# -- golden cases -----------------------------------------------------------------------------

def test_perfect_separation_is_infinite_and_capped():
    u = column(0.0, 0.1, 0.2, 0.3)
    assert per_example_epsilon(u, u + 10.0)[0] == 50.0
    assert per_example_epsilon(u, u + 10.0, cap=20.0)[0] == 20.0


def test_range_guard_compares_the_smaller_range_with_the_larger():
    narrow = column(2.5, 2.5001, 2.5002, 2.5003)
    wide = column(1.0, 2.0, 2.50005, 4.0)
    assert np.median(narrow) > np.median(wide)      # the narrow side is the positive one
    assert per_example_epsilon(narrow, wide)[0] == 50.0
    assert per_example_epsilon(wide, narrow)[0] == 50.0
    assert per_example_epsilon(narrow - 1.0, wide)[0] == 50.0   # the narrow side negative
    assert per_example_epsilon(np.full((4, 1), 2.4), wide)[0] == 50.0   # one range 0


def test_both_ranges_zero_leave_it_to_the_rules():
    same = np.full((4, 1), 1.5)
    eps, unruled = per_example_epsilon(same, same, return_unruled=True)
    assert eps[0] == 0.0 and unruled[0]             # every rule discarded: salun's 0
    assert per_example_epsilon(same, same + 1.0)[0] == 50.0      # a threshold separates them


def test_a_rule_with_both_rates_one_is_discarded():
    # The narrow side lies just below the wide one, 0.002 apart: no threshold and no right
    # end falls into the gap, so only intervals holding all of the wide side and none of
    # the narrow one (FPR = FNR = 1) would separate them; those are discarded.
    narrow, wide = column(0.0, 0.1, 0.2, 0.3), column(0.302, 0.5, 0.7, 0.9)
    peaky, other = narrow[:, 0], wide[:, 0]
    fp, fn = interval_counts(peaky, other)
    assert ((fp == 4) & (fn == 4)).any() and not ((fp == 0) & (fn == 0)).any()
    _, fp, fn = threshold_counts(other, peaky)
    assert not ((fp == 0) & (fn == 0)).any()
    assert math.isnan(epsilon_table(4)[4, 4])
    eps = per_example_epsilon(narrow, wide)[0]
    assert eps == epsilon_table(4)[1, 1] == literal_epsilon(peaky, other)      # one error each way


def test_equal_ranges_make_the_negative_side_peaky():
    low, high = column(0.0, 0.0, 0.375, 1.0), column(1.0, 1.5, 1.875, 2.0)
    assert np.ptp(low) == np.ptp(high) and np.median(high) > np.median(low)
    as_published = np.nanmax(list(interval_rules(list(low[:, 0]), list(high[:, 0]), 1.0)))
    swapped = np.nanmax(list(interval_rules(list(high[:, 0]), list(low[:, 0]), 1.0)))
    assert all(np.isnan(e) for e in threshold_rules(list(high[:, 0]), list(low[:, 0])))
    assert as_published == F32(epsilon_table(4)[1, 2]) < swapped == F32(epsilon_table(4)[1, 1])
    assert per_example_epsilon(high, low)[0] == per_example_epsilon(low, high)[0] == as_published


def test_thresholds_are_float32_and_inclusive():
    # The first threshold is fl32(0.1) > 0.1: the negative 0.1 falls below it. The last is
    # fl32(2) = 2: the positive 2.0 is at it, so predicted positive.
    t, fp, fn = threshold_counts(np.array([1.0, 2.0]), np.array([0.1, 0.9]))
    assert len(t) == 190 and t[0] == float(F32(0.1)) > 0.1 and t[-1] == 2.0
    assert (fp[0], fn[0]) == (1, 0) and (fp[-1], fn[-1]) == (0, 1)
    # fl32(0.7) < 0.7: the negative 0.7 is above the first threshold.
    t, fp, fn = threshold_counts(np.array([1.0, 2.0]), np.array([0.7, 0.9]))
    assert t[0] < 0.7 and (fp[0], fn[0]) == (2, 0)
    expected = torch.linspace(0.7, 2.0, 130, dtype=torch.float32).double().numpy()
    np.testing.assert_array_equal(t, expected)


def test_interval_left_ends_are_per_right_end_linspaces():
    peaky = np.array([-0.3, 0.1, 0.17, 0.41])
    width = peaky[-1] - peaky[0]
    right, left = interval_grid(peaky)
    start, stop = peaky[0] + width - 2.0, peaky[-1] + 2.0
    np.testing.assert_array_equal(right, np.linspace(start, stop, math.ceil((stop - start) * 100)))
    for i, tr in enumerate(right):
        np.testing.assert_array_equal(left[i], np.linspace(tr - width - 2.0, tr - width + 2.0, 400))


def test_the_table_is_float32_rule_by_rule():
    table = epsilon_table(4)
    assert table[0, 0] == math.inf
    assert np.isnan(table[0, 1:]).all() and np.isnan(table[1:, 0]).all() and np.isnan(table[4, 4])
    expected = F32(np.log(F32(1 - DELTA) - F32(0.25))) - F32(np.log(F32(0.25)))
    assert table[1, 1] == float(expected) != math.log(3 - 4 * DELTA)
    assert table[1, 1] == pytest.approx(math.log(3 - 4 * DELTA), abs=1e-6)
    for n in (3, 7, 41):
        r = rates(n)
        table = epsilon_table(n)
        for a in range(n + 1):
            for b in range(n + 1):
                expected = rule_epsilon(r[n - b], r[b], r[a], r[n - a])
                assert table[a, b] == expected or (np.isnan(expected) and np.isnan(table[a, b]))


def test_cuda_means_can_fall_short_of_one():
    # torch.mean multiplies by fl32(1/41), and 41·fl32(1/41) rounds to 1 − 2^−24: TPR + TNR
    # is never 2, so even rules that separate perfectly are discarded, and with them every
    # rule of a perfectly separated pair (where metric.py stops at its assertion).
    assert rates(40)[-1] == 1 and rates(41)[-1] < 1
    assert epsilon_table(40)[0, 0] == math.inf and math.isnan(epsilon_table(41)[0, 0])
    u = np.linspace(0.0, 0.4, 41)[:, None]
    assert per_example_epsilon(u[:40], u[:40] + 10.0)[0] == 50.0
    eps, unruled = per_example_epsilon(u, u + 10.0, return_unruled=True)
    assert eps[0] == 0.0 and unruled[0]


def test_resolution_is_the_largest_finite_table_entry():
    for n in (1, 2, 3, 4, 7, 41, 100, 512):
        table = epsilon_table(n)
        assert resolution(n) == table[np.isfinite(table)].max(initial=0.0)
        if n > 2:
            assert resolution(n) == pytest.approx(math.log(n - 1 - n * DELTA), abs=1e-5)
            assert resolution(n) < math.log(n - 1)


def test_rejects_mismatched_or_non_finite_input():
    with pytest.raises(ValueError):
        per_example_epsilon(np.zeros((3, 2)), np.zeros((4, 2)))
    with pytest.raises(ValueError):
        per_example_epsilon(np.array([[np.nan]]), np.zeros((1, 1)))


# -- agreement with the transcription ------------------------------------------------------------

def random_case(seed):
    """A few forget examples with small N and small ranges, each of one awkward kind."""
    rng = np.random.default_rng(seed)
    n_models = int(rng.integers(4, 17))
    kind = seed % 5
    u = rng.normal(0.0, rng.uniform(0.05, 0.6), n_models)
    r = rng.normal(rng.normal(0.0, 0.3), rng.uniform(0.05, 0.6), n_models)
    if kind == 1:                                   # collapsed populations, either or both
        (u if seed % 2 else r)[:] = rng.normal()
        if seed % 3 == 0:
            u[:], r[:] = u[0], u[0] + rng.choice([0.0, 0.003, 0.02])
    elif kind == 2:                                 # a gap narrower than one grid step
        r = np.sort(u) + (np.ptp(u) + rng.uniform(0.0005, 0.009)) * rng.uniform(0.5, 1.5)
        r = r[rng.permutation(n_models)]
    elif kind == 3:                                 # quantised: ties, equal ranges
        u, r = np.round(u, 1), np.round(r, 1)
        r[: n_models // 2] = u[: n_models // 2]
    elif kind == 4:                                 # equal ranges exactly
        r = u[::-1] * -1.0 + rng.choice([0.0, 0.1, 0.25])
    return u[:, None], r[:, None]


@pytest.mark.parametrize("seed", range(10))
def test_matches_the_transcription_on_random_cases(seed):
    u, r = random_case(seed)
    np.testing.assert_allclose(per_example_epsilon(u, r), literal_epsilons(u, r), rtol=0, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(10, 60))
def test_matches_the_transcription_on_more_random_cases(seed):
    u, r = random_case(seed)
    np.testing.assert_allclose(per_example_epsilon(u, r), literal_epsilons(u, r), rtol=0, atol=1e-6)


# -- scores ---------------------------------------------------------------------------------------

def test_forget_score_buckets():
    # N = 512: edges every 0.5 up to ceil(ln 511) = 7; bucket k is worth 2^-k, beyond it 0.
    eps = [0.0, 0.49, 0.5, 1.2, 6.9, 7.0, 50.0]
    expected = (1 + 1 + 0.5 + 0.25 + 2.0 ** -13 + 0 + 0) / 7
    assert forget_score(eps, 512) == pytest.approx(expected, abs=1e-15)
    assert forget_score([0.0, 0.0], 2) == 0.0
    assert forget_score([0.0, 1.0], 4) == pytest.approx((1 + 0.25) / 2)   # top = ceil(ln 3) = 2
    rng = np.random.default_rng(3)
    for n in (2, 3, 4, 16, 41, 512):
        eps = np.concatenate([rng.uniform(0, 8, 200), np.arange(0, 8.5, 0.5), [50.0]])
        assert forget_score(eps, n) == pytest.approx(literal_forget_score(eps, n), abs=1e-12)


def test_final_score_and_version():
    assert final_score(0.5, [0.9, 0.7], 1.0, 0.8, [0.8, 0.8]) == pytest.approx(0.4)
    assert final_score(1.0, 0.5, 0.5, 0.6, 0.3) == pytest.approx(2.0)
    assert neurips2023.NEURIPS2023_VERSION == "2"
