"""Known answers for the multiple-testing, two-sample, equivalence and high-confidence ε tools."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from audit.stats.basics import (
    benjamini_hochberg,
    clopper_pearson_upper,
    cohens_d_per_example,
    epsilon_high_confidence,
    ks_per_example,
    permutation_per_example,
)
from audit.stats.tost import tost_bootstrap, tost_welch


def test_benjamini_hochberg_matches_scipy():
    rng = np.random.default_rng(0)
    p = np.concatenate([rng.uniform(size=80), rng.uniform(0, 1e-3, size=20), [0.5, 0.5, 1.0, 0.0]])
    rejected, adjusted = benjamini_hochberg(p, q=0.05)
    np.testing.assert_allclose(adjusted, stats.false_discovery_control(p), rtol=1e-12)
    # Step-up rule: reject the k smallest, k the largest i with p_(i) <= i q / n.
    ordered = np.sort(p)
    passing = np.nonzero(ordered <= np.arange(1, len(p) + 1) * 0.05 / len(p))[0]
    k = passing[-1] + 1 if len(passing) else 0
    assert rejected.sum() == k
    assert np.all(p[rejected] <= ordered[k - 1])


def test_benjamini_hochberg_small_cases():
    rejected, adjusted = benjamini_hochberg([0.01, 0.04, 0.03], q=0.05)
    np.testing.assert_allclose(adjusted, [0.03, 0.04, 0.04])
    assert rejected.tolist() == [True, True, True]
    rejected, adjusted = benjamini_hochberg([], q=0.05)
    assert len(rejected) == 0 and len(adjusted) == 0


def test_ks_per_example_equals_scipy_per_column():
    rng = np.random.default_rng(1)
    u = rng.normal(size=(30, 12)) + np.linspace(0, 1.5, 12)
    r = rng.normal(size=(25, 12))
    statistic, p = ks_per_example(u, r)
    assert statistic.shape == p.shape == (12,)
    for j in range(12):
        expected = stats.ks_2samp(u[:, j], r[:, j])
        assert statistic[j] == pytest.approx(expected.statistic)
        assert p[j] == pytest.approx(expected.pvalue)


def test_permutation_close_to_welch_on_normal_data():
    rng = np.random.default_rng(2)
    n = 40
    u = rng.normal(size=(50, n)) + np.linspace(0, 0.8, n)
    r = rng.normal(size=(50, n))
    statistic, p = permutation_per_example(u, r, rng, resamples=2000)
    np.testing.assert_allclose(statistic, u.mean(0) - r.mean(0))
    welch = stats.ttest_ind(u, r, equal_var=False, axis=0).pvalue
    assert np.all(np.abs(p - welch) < 0.05 + 0.2 * welch)
    assert np.all(p >= 1 / 2001)


def test_permutation_uniform_under_null():
    rng = np.random.default_rng(3)
    u = rng.normal(size=(20, 2000))
    r = rng.normal(size=(20, 2000))
    _, p = permutation_per_example(u, r, rng, resamples=500)
    assert 0.03 < np.mean(p < 0.05) < 0.07
    assert 0.45 < np.mean(p < 0.5) < 0.55


def test_permutation_identical_sides_give_p_one():
    values = np.ones((5, 3))
    _, p = permutation_per_example(values, values, np.random.default_rng(0), resamples=50)
    np.testing.assert_allclose(p, 1.0)


def test_cohens_d_known_value():
    u = np.array([[1.0], [2.0], [3.0]])
    r = np.array([[3.0], [4.0], [5.0]])
    np.testing.assert_allclose(cohens_d_per_example(u, r), [-2.0])


def test_tost_identical_large_samples_are_equivalent():
    rng = np.random.default_rng(4)
    x = rng.normal(0.0, 0.2, size=5000)
    result = tost_welch(x, x.copy(), margin=0.02)
    assert result["equivalent"] and result["difference"] == 0
    assert result["p"] < 0.05 and result["detectable_margin"] < 0.02


def test_tost_shifted_samples_are_not_equivalent():
    rng = np.random.default_rng(5)
    x = rng.normal(0.0, 0.2, size=5000)
    result = tost_welch(x + 0.1, x, margin=0.02)
    assert not result["equivalent"]
    assert result["p"] > 0.5


def test_tost_tiny_samples_are_not_equivalent():
    result = tost_welch([0.1, 0.3, 0.2], [0.25, 0.15, 0.2], margin=0.02)
    assert not result["equivalent"]
    assert result["detectable_margin"] > result["margin"]


def test_tost_too_few_models():
    for test in (tost_welch, lambda u, r, m: tost_bootstrap(u, r, m, np.random.default_rng(0))):
        result = test([1.0], [1.0, 2.0], 0.5)
        assert result["equivalent"] is False and result["reason"] == "too few models"


def test_tost_welch_matches_two_one_sided_scipy_tests():
    rng = np.random.default_rng(6)
    u = rng.normal(0.03, 1.0, size=40)
    r = rng.normal(0.0, 2.0, size=60)
    margin = 0.5
    result = tost_welch(u, r, margin=margin, alpha=0.05)
    lower = stats.ttest_ind(u + margin, r, equal_var=False, alternative="greater")
    upper = stats.ttest_ind(u - margin, r, equal_var=False, alternative="less")
    assert result["p_lower"] == pytest.approx(lower.pvalue)
    assert result["p_upper"] == pytest.approx(upper.pvalue)
    assert result["df"] == pytest.approx(lower.df)
    assert result["p"] == pytest.approx(max(lower.pvalue, upper.pvalue))
    # The 1 − 2α interval lies inside (−m, m) exactly when both one-sided tests reject.
    inside = -margin < result["ci"][0] and result["ci"][1] < margin
    assert inside == result["equivalent"]
    se = math.sqrt(u.var(ddof=1) / 40 + r.var(ddof=1) / 60)
    df = result["df"]
    expected = (stats.t.ppf(0.95, df) + stats.t.ppf(0.9, df)) * se
    assert result["detectable_margin"] == pytest.approx(expected)


def test_tost_bootstrap_agrees_with_welch_on_large_normal_samples():
    rng = np.random.default_rng(7)
    for shift, margin in [(0.0, 0.15), (0.3, 0.15), (0.05, 0.15)]:
        u = rng.normal(shift, 1.0, size=2000)
        r = rng.normal(0.0, 1.0, size=2000)
        welch = tost_welch(u, r, margin)
        boot = tost_bootstrap(u, r, margin, rng, resamples=2000)
        assert boot["equivalent"] == welch["equivalent"]
        np.testing.assert_allclose(boot["ci"], welch["ci"], atol=0.01)
        assert boot["detectable_margin"] == pytest.approx(welch["detectable_margin"], rel=0.1)
        assert boot["difference"] == pytest.approx(welch["difference"])


def test_epsilon_identical_distributions_is_zero():
    rng = np.random.default_rng(8)
    u = rng.normal(size=(64, 500))
    r = rng.normal(size=(64, 500))
    result = epsilon_high_confidence(u, r, rng)
    assert result["eps"].shape == (500,)
    assert result["median"] == 0.0
    assert result["q90"] <= result["max_certifiable"]
    assert result["n_per_side_bounding"] == 32


def test_epsilon_perfectly_separated_reaches_max_certifiable_and_grows_with_n():
    rng = np.random.default_rng(9)
    previous = 0.0
    for n_models in (16, 32, 128):
        u = rng.normal(size=(n_models, 50)) + 20.0
        r = rng.normal(size=(n_models, 50))
        result = epsilon_high_confidence(u, r, rng, alpha=0.05, delta=1e-5)
        k = n_models - n_models // 2
        bound = clopper_pearson_upper(0, k, 0.025)
        assert bound == pytest.approx(1 - 0.025 ** (1 / k))
        assert result["max_certifiable"] == pytest.approx(math.log((1 - 1e-5 - bound) / bound))
        assert result["n_per_side_bounding"] == k
        np.testing.assert_allclose(result["eps"], result["max_certifiable"])
        assert result["max_certifiable"] > previous
        assert result["max_certifiable"] < math.log(k)
        previous = result["max_certifiable"]
    # The direction is found either way round.
    flipped = epsilon_high_confidence(r, u, rng)
    assert np.all(flipped["direction"] == -1)
    np.testing.assert_allclose(flipped["eps"], flipped["max_certifiable"])


def test_epsilon_too_few_models_certify_nothing():
    # With 4 models per side in the bounding half even perfect separation certifies nothing.
    rng = np.random.default_rng(11)
    result = epsilon_high_confidence(rng.normal(size=(8, 5)) + 20, rng.normal(size=(8, 5)), rng)
    assert result["max_certifiable"] == 0.0
    np.testing.assert_allclose(result["eps"], 0.0)


def test_epsilon_partial_separation_lies_between():
    rng = np.random.default_rng(10)
    u = rng.normal(size=(200, 100)) + 2.0
    r = rng.normal(size=(200, 100))
    result = epsilon_high_confidence(u, r, rng)
    assert 0 < result["median"] < result["max_certifiable"]
    constant = epsilon_high_confidence(np.ones((10, 4)), np.ones((10, 4)), rng)
    np.testing.assert_allclose(constant["eps"], 0.0)
