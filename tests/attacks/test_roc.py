"""ROC statistics of membership scores against populations with known answers."""

import json
import math

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score
from sklearn.metrics import roc_curve as sklearn_roc_curve

from attacks.mia.roc import (
    advantage,
    attack_summary,
    auc,
    auc_interval,
    balanced_accuracy,
    epsilon_lower_bound,
    histogram,
    roc_curve,
    roc_plot_data,
    tpr_at_fpr,
)
from audit.stats.basics import clopper_pearson, clopper_pearson_upper

D = 1.5
N = 20_000


def labels(members: int, nonmembers: int) -> np.ndarray:
    return np.concatenate([np.ones(members, bool), np.zeros(nonmembers, bool)])


def auc_standard_error(a: float, p: int, n: int) -> float:
    """Hanley & McNeil's standard error of the Mann-Whitney AUC."""
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    return math.sqrt((a * (1 - a) + (p - 1) * (q1 - a * a) + (n - 1) * (q2 - a * a)) / (p * n))


@pytest.fixture(scope="module")
def gaussians():
    rng = np.random.default_rng(20240601)
    scores = np.concatenate([rng.normal(D, 1, N), rng.normal(0, 1, N)])
    return scores, labels(N, N)


@pytest.fixture(scope="module")
def identical():
    rng = np.random.default_rng(7)
    return rng.normal(0, 1, 2 * N), labels(N, N)


@pytest.mark.parametrize("k, n", [(0, 10), (3, 10), (10, 10), (17, 1000)])
def test_clopper_pearson_matches_scipy(k, n):
    expected = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    low, high = clopper_pearson(k, n)
    assert isinstance(low, float) and isinstance(high, float)
    assert low == pytest.approx(expected.low, abs=1e-9)
    assert high == pytest.approx(expected.high, abs=1e-9)
    # the one-sided upper bound at alpha is the two-sided upper end at 2 alpha
    assert clopper_pearson_upper(k, n, 0.025) == pytest.approx(expected.high, abs=1e-9)


def test_clopper_pearson_is_vectorised_and_exact_at_the_ends():
    k = np.array([0, 3, 10, 17])
    n = np.array([10, 10, 10, 1000])
    low, high = clopper_pearson(k, n)
    for i in range(len(k)):
        assert (low[i], high[i]) == pytest.approx(clopper_pearson(int(k[i]), int(n[i])))
    assert low[0] == 0 and high[2] == 1
    upper = clopper_pearson_upper(np.arange(11), 10, 0.05)
    assert upper[-1] == 1 and np.all(np.diff(upper) > 0)
    assert upper[0] == pytest.approx(1 - 0.05 ** (1 / 10))  # k = 0 has a closed form
    with pytest.raises(ValueError):
        clopper_pearson(11, 10)


def test_separated_gaussians_give_the_analytic_auc_and_low_fpr_tprs(gaussians):
    scores, is_member = gaussians
    expected = stats.norm.cdf(D / math.sqrt(2))
    se = auc_standard_error(expected, N, N)
    value = auc(scores, is_member)
    assert abs(value - expected) < 4 * se
    low, high = auc_interval(scores, is_member, np.random.default_rng(1), resamples=1000)
    assert low < expected < high
    assert 2 * se < high - low < 6 * se  # a 95 % interval is about 4 standard errors wide

    fpr, tpr, _ = roc_curve(scores, is_member)
    for target in (0.01, 0.001):
        z = stats.norm.ppf(1 - target)
        true_tpr = 1 - stats.norm.cdf(z - D)
        # binomial error of the TPR plus that of the threshold (the FPR quantile), carried to
        # the TPR by the slope of the ROC, the likelihood ratio at the threshold
        slope = math.exp(D * z - D * D / 2)
        se_tpr = math.sqrt(true_tpr * (1 - true_tpr) / N + slope**2 * target * (1 - target) / N)
        result = tpr_at_fpr(fpr, tpr, target, negatives=N)
        assert abs(result["tpr"] - true_tpr) < 4 * se_tpr + slope / N
        assert result["fpr_achieved"] <= target
        assert result["false_positives_allowed"] == math.floor(target * N)
        assert not result["at_zero_false_positives"]


def test_identical_populations_show_nothing(identical):
    scores, is_member = identical
    assert abs(auc(scores, is_member) - 0.5) < 4 * auc_standard_error(0.5, N, N)
    fpr, tpr, _ = roc_curve(scores, is_member)
    # the advantage is the two-sample Kolmogorov-Smirnov statistic: 99.9 % quantile 1.95 sqrt(2/N)
    assert advantage(fpr, tpr) < 1.95 * math.sqrt(2 / N)
    assert balanced_accuracy(fpr, tpr) == pytest.approx((1 + advantage(fpr, tpr)) / 2)
    bound = epsilon_lower_bound(scores, is_member, np.random.default_rng(3))
    assert bound["value"] == 0.0 and math.isfinite(bound["threshold"])
    json.dumps(attack_summary(scores, is_member, np.random.default_rng(4), resamples=10), allow_nan=False)
    assert bound["n_members"] == N // 2 and bound["n_nonmembers"] == N // 2


def test_perfect_separation():
    def separated(n):
        # a gap as wide as either population: a threshold chosen on half of the scores
        # separates the other half too
        return np.concatenate([np.arange(n) + 2 * n, np.arange(n)]), labels(n, n)

    scores, is_member = separated(2000)
    assert auc(scores, is_member) == 1.0
    fpr, tpr, _ = roc_curve(scores, is_member)
    assert tpr_at_fpr(fpr, tpr, 0.001, negatives=2000)["tpr"] == 1.0
    assert advantage(fpr, tpr) == 1.0 and balanced_accuracy(fpr, tpr) == 1.0
    bounds = [epsilon_lower_bound(*separated(n), np.random.default_rng(0))["value"] for n in (100, 1000, 10_000)]
    assert all(math.isfinite(b) and b > 0 for b in bounds)
    assert bounds[0] < bounds[1] < bounds[2]
    # zero errors on the bounding half: the bound is ln((1 - delta - u) / u), u = 1 - (alpha/2)^(1/n)
    u = 1 - 0.025 ** (1 / 5000)
    assert bounds[2] == pytest.approx(math.log((1 - 1e-5 - u) / u))


def test_few_nonmembers_are_flagged_at_low_fpr():
    rng = np.random.default_rng(5)
    scores, is_member = np.concatenate([rng.normal(1, 1, 500), rng.normal(0, 1, 500)]), labels(500, 500)
    fpr, tpr, _ = roc_curve(scores, is_member)
    result = tpr_at_fpr(fpr, tpr, 0.001, negatives=500)
    assert result["false_positives_allowed"] == 0 and result["at_zero_false_positives"]
    assert result["fpr_achieved"] == 0.0
    # the TPR at zero false positives: members above the highest non-member
    assert result["tpr"] == np.mean(scores[:500] > scores[500:].max())


def test_ties_move_together():
    scores, is_member = np.zeros(10), labels(4, 6)
    assert auc(scores, is_member) == 0.5
    fpr, tpr, thresholds = roc_curve(scores, is_member)
    assert fpr.tolist() == [0.0, 1.0] and tpr.tolist() == [0.0, 1.0]
    assert thresholds[1] == 0.0

    rng = np.random.default_rng(11)
    scores = rng.integers(0, 5, 300).astype(float)
    is_member = rng.random(300) < 0.4
    fpr, tpr, thresholds = roc_curve(scores, is_member)
    expected_fpr, expected_tpr, expected_thresholds = sklearn_roc_curve(is_member, scores, drop_intermediate=False)
    np.testing.assert_allclose(fpr, expected_fpr)
    np.testing.assert_allclose(tpr, expected_tpr)
    np.testing.assert_array_equal(thresholds[1:], expected_thresholds[1:])
    assert len(fpr) == len(np.unique(scores)) + 1
    assert auc(scores, is_member) == pytest.approx(roc_auc_score(is_member, scores), abs=1e-12)


def test_histogram_and_plot_data():
    scores, is_member = np.array([0.0, 1, 2, 3, 4, 5]), np.array([0, 0, 1, 0, 1, 1], bool)
    h = histogram(scores, is_member, bins=5)
    assert h["edges"] == pytest.approx([0, 1, 2, 3, 4, 5])
    assert h["members"] == [0, 0, 1, 0, 2] and h["nonmembers"] == [1, 1, 0, 1, 0]
    fpr, tpr, _ = roc_curve(scores, is_member)
    plot = roc_plot_data(fpr, tpr, points=11, negatives=3)
    assert len(plot["linear"]["fpr"]) == 11 and plot["linear"]["tpr"][0] == pytest.approx(2 / 3)
    assert plot["linear"]["tpr"][-1] == 1.0
    assert plot["log"]["fpr"][0] == pytest.approx(1 / 3) and plot["log"]["fpr"][-1] == pytest.approx(1.0)
    assert all(type(x) is float for x in plot["log"]["tpr"])


def test_attack_summary_is_json_and_counts(gaussians):
    scores, is_member = gaussians
    keep = np.r_[0:3000, N:N + 5000]
    summary = attack_summary(scores[keep], is_member[keep], np.random.default_rng(0), resamples=200)
    text = json.dumps(summary, allow_nan=False)
    assert json.loads(text) == summary
    assert summary["n_members"] == 3000 and summary["n_nonmembers"] == 5000
    assert summary["auc"]["resamples"] == 200 and len(summary["auc"]["ci95"]) == 2
    assert [t["fpr"] for t in summary["tpr_at_fpr"]] == [0.001, 0.01]
    assert all(t["negatives"] == 5000 for t in summary["tpr_at_fpr"])
    bound = summary["epsilon_lower_bound"]
    assert bound["n_members"] == 1500 and bound["n_nonmembers"] == 2500 and bound["value"] > 0
    assert sum(summary["histogram"]["members"]) == 3000
    assert len(summary["roc"]["log"]["fpr"]) == 100
    # the ε split does not depend on how many resamples the bootstrap drew
    again = attack_summary(scores[keep], is_member[keep], np.random.default_rng(0), resamples=0)
    assert again["auc"]["ci95"] is None and again["epsilon_lower_bound"] == bound


def test_non_finite_scores_are_refused():
    scores = np.array([0.1, np.nan, 0.3, np.inf, 0.2])
    with pytest.raises(ValueError, match="2 of 5"):
        attack_summary(scores, np.array([1, 1, 0, 0, 0], bool), np.random.default_rng(0))
