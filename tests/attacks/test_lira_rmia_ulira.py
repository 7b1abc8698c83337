"""LiRA, RMIA, U-LiRA and the threshold attack: known answers on synthetic signals, and agreement
of every vectorised function with a straightforward per-example loop."""

import numpy as np
import pytest
from scipy.stats import norm, trim_mean
from sklearn.metrics import roc_auc_score

from attacks.mia import lira, rmia, threshold, ulira
from audit.stats import signals

SHADOWS, N, SHIFT = 64, 2000, 1.0


def halves(rng, models, n):
    """(models, n) membership, each example IN for exactly half of the models."""
    return np.argsort(rng.random((models, n)), axis=0) < models // 2


def auc(scores, is_member):
    return roc_auc_score(np.ravel(is_member), np.ravel(scores))


@pytest.fixture(scope="module")
def game():
    """phi = mu_x + SHIFT * IN + N(0, 1), with mu_x spread far wider than the noise."""
    rng = np.random.default_rng(0)
    mu_x = rng.normal(0, 5, N)
    in_mask = halves(rng, SHADOWS, N)
    phi = mu_x + SHIFT * in_mask + rng.normal(size=(SHADOWS, N))
    return mu_x, phi, in_mask


# --- straightforward per-example references ---------------------------------------------

def loop_fit(phi, mask, scale):
    mu, sd, squares, dof = [], [], 0.0, 0
    for i in range(phi.shape[1]):
        values = phi[mask[:, i], i]
        mu.append(np.median(values) if len(values) else np.nan)
        sd.append(np.std(values, ddof=1) if len(values) > 1 else np.nan)
        if len(values) > 1:
            squares += np.sum((values - values.mean()) ** 2)
            dof += len(values) - 1
    sd = np.array(sd) if scale == "per_example" else np.full(phi.shape[1], np.sqrt(squares / dof))
    return np.array(mu), np.maximum(sd, lira.SIGMA_FLOOR)


def loop_lira(target, phi, in_mask, scale, online):
    out = np.empty_like(target)
    mu_in, sd_in = loop_fit(phi, in_mask, scale)
    mu_out, sd_out = loop_fit(phi, ~in_mask, scale)
    for i in range(target.shape[-1]):
        if online:
            out[..., i] = (norm.logpdf(target[..., i], mu_in[i], sd_in[i])
                           - norm.logpdf(target[..., i], mu_out[i], sd_out[i]))
        else:
            out[..., i] = (target[..., i] - mu_out[i]) / sd_out[i]
    return out


def loop_reference_probability(p_ref, in_mask, offline, a, trim):
    out = []
    for i in range(p_ref.shape[1]):
        if not offline:
            out.append(trim_mean(p_ref[:, i], trim))
        else:
            p_out = trim_mean(p_ref[~in_mask[:, i], i], trim)
            out.append(0.5 * ((1 + a) * p_out + (1 - a)))
    return np.array(out)


def loop_rmia(p_x, ref_x, p_z, ref_z, gamma):
    out = np.empty_like(p_x)
    for i in range(p_x.shape[-1]):
        lr = (p_x[..., i, None] / ref_x[i]) / (p_z / ref_z)
        out[..., i] = np.mean(lr >= gamma, axis=-1)
    return out


# --- LiRA -------------------------------------------------------------------------------

def test_fit_gaussians_recovers_medians_and_stds(game):
    mu_x, phi, in_mask = game
    mu, sigma = lira.fit_gaussians(phi, ~in_mask, "per_example")
    assert mu.shape == sigma.shape == (N,)
    # 32 draws per example: the median is off by about 1.25 / sqrt(32) = 0.22, the std by 0.13
    assert np.sqrt(np.mean((mu - mu_x) ** 2)) < 0.3
    assert abs(np.mean(sigma) - 1) < 0.03 and np.std(sigma) < 0.2
    mu_in, _ = lira.fit_gaussians(phi, in_mask, "per_example")
    assert abs(np.mean(mu_in - mu) - SHIFT) < 0.03
    _, pooled = lira.fit_gaussians(phi, ~in_mask, "pooled")
    assert np.all(pooled == pooled[0]) and abs(pooled[0] - 1) < 0.02


def test_fit_gaussians_matches_a_loop_and_handles_empty_examples():
    rng = np.random.default_rng(1)
    phi = rng.normal(size=(7, 40)) * rng.uniform(0.5, 3, 40)
    mask = rng.random((7, 40)) < 0.5
    mask[:, 0] = False  # no model: NaN location and scale
    mask[:, 1] = False
    mask[3, 1] = True  # one model: a location, no per-example scale
    mask[:, 2] = True
    phi[:, 2] = 4.0  # identical models: the scale is floored
    for scale in lira.SCALES:
        mu, sigma = lira.fit_gaussians(phi, mask, scale)
        expected_mu, expected_sigma = loop_fit(phi, mask, scale)
        np.testing.assert_allclose(mu, expected_mu, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(sigma, expected_sigma, rtol=1e-12, atol=1e-12)
    mu, sigma = lira.fit_gaussians(phi, mask, "per_example")
    assert np.isnan(mu[0]) and np.isnan(sigma[0]) and mu[1] == phi[3, 1] and np.isnan(sigma[1])
    assert mu[2] == 4.0 and sigma[2] == lira.SIGMA_FLOOR
    with pytest.raises(ValueError):
        lira.fit_gaussians(phi, mask, "global")


def test_pooled_and_per_example_scales_differ_when_variances_differ():
    rng = np.random.default_rng(2)
    spread = rng.uniform(0.3, 3.0, 500)
    phi = rng.normal(size=(64, 500)) * spread
    mask = rng.random((64, 500)) < 0.5
    _, per_example = lira.fit_gaussians(phi, mask, "per_example")
    _, pooled = lira.fit_gaussians(phi, mask, "pooled")
    assert np.corrcoef(per_example, spread)[0, 1] > 0.95
    dof = mask.sum(0) - 1
    # the pooled variance is the dof-weighted mean of the per-example variances
    assert np.isclose(pooled[0] ** 2, np.sum(dof * per_example**2) / dof.sum())
    assert np.isclose(pooled[0], np.sqrt(np.mean(spread**2)), rtol=0.05)
    assert np.ptp(pooled) == 0 and np.ptp(per_example) > 1


def test_online_lira_reaches_the_analytic_auc_and_beats_a_global_threshold(game):
    _, phi, in_mask = game
    analytic = norm.cdf(SHIFT / np.sqrt(2))  # IN ~ N(mu_x + d, 1) vs OUT ~ N(mu_x, 1)
    results = {}
    for scale in lira.SCALES:
        for name, fn in (("online", lira.online_scores), ("offline", lira.offline_scores)):
            scores, is_member = lira.shadow_game(phi, in_mask, lambda t, p, i, o, fn=fn, s=scale: fn(t, p, i, s, o))
            assert scores.shape == is_member.shape == (SHADOWS, N)
            np.testing.assert_array_equal(is_member, in_mask)
            results[name, scale] = auc(scores, is_member)
    global_threshold = auc(phi, in_mask)
    for key, value in results.items():
        assert abs(value - analytic) < 0.02, (key, value, analytic)
        assert value > global_threshold + 0.15, (key, value, global_threshold)
    # equal IN and OUT variances: the one-sided test loses next to nothing
    assert abs(results["offline", "per_example"] - results["online", "per_example"]) < 0.02


def test_lira_scores_match_a_per_example_loop():
    rng = np.random.default_rng(3)
    phi = rng.normal(size=(10, 25)) + rng.normal(0, 3, 25)
    in_mask = halves(rng, 10, 25)
    target = rng.normal(size=(3, 25))
    for scale in lira.SCALES:
        np.testing.assert_allclose(lira.online_scores(target, phi, in_mask, scale),
                                   loop_lira(target, phi, in_mask, scale, True), rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(lira.offline_scores(target, phi, in_mask, scale),
                                   loop_lira(target, phi, in_mask, scale, False), rtol=1e-10, atol=1e-10)
    assert lira.online_scores(target[0], phi, in_mask).shape == (25,)


def test_shadow_game_is_leave_one_out():
    rng = np.random.default_rng(4)
    phi, in_mask = rng.normal(size=(6, 30)), halves(rng, 6, 30)
    scores, is_member = lira.shadow_game(phi, in_mask, lambda t, p, i, o: lira.online_scores(t, p, i, "pooled", o))
    for s in range(6):
        others = np.delete(np.arange(6), s)
        expected = loop_lira(phi[s], phi[others], in_mask[others], "pooled", True)
        np.testing.assert_allclose(scores[s], expected, rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(is_member, in_mask)


# --- RMIA -------------------------------------------------------------------------------

def test_reference_probability_matches_trimmed_means():
    rng = np.random.default_rng(5)
    p_ref = rng.uniform(size=(20, 50))
    in_mask = rng.random((20, 50)) < 0.5
    in_mask[0] = False  # at least one OUT reference per example
    for trim in (0.0, 0.1, 0.25):
        np.testing.assert_allclose(rmia.reference_probability(p_ref, in_mask, False, 0.3, trim),
                                   loop_reference_probability(p_ref, in_mask, False, 0.3, trim), rtol=1e-12)
        for a in (0.0, 0.4, 1.0):
            np.testing.assert_allclose(rmia.reference_probability(p_ref, in_mask, True, a, trim),
                                       loop_reference_probability(p_ref, in_mask, True, a, trim), rtol=1e-12)
    all_out = rmia.reference_probability(p_ref, None, True, 1.0)
    np.testing.assert_allclose(all_out, trim_mean(p_ref, 0.1, axis=0))


def test_rmia_scores_match_a_pairwise_loop():
    rng = np.random.default_rng(6)
    p_x, p_z = rng.uniform(0.01, 1, size=(4, 60)), rng.uniform(0.01, 1, size=(4, 45))
    ref_x, ref_z = rng.uniform(0.1, 1, 60), rng.uniform(0.1, 1, 45)
    for gamma in (1.0, 2.0, 0.7):
        np.testing.assert_allclose(rmia.scores(p_x, ref_x, p_z, ref_z, gamma),
                                   loop_rmia(p_x, ref_x, p_z, ref_z, gamma), atol=1e-12)
    np.testing.assert_allclose(rmia.scores(p_x[0], ref_x, p_z[0], ref_z), loop_rmia(p_x[0], ref_x, p_z[0], ref_z, 2.0))
    # exact ties count (LR >= gamma): powers of two divide exactly
    ties = rmia.scores(np.array([1.0, 0.5, 0.25]), np.ones(3), np.array([0.5, 0.25, 0.125]), np.ones(3), 2.0)
    np.testing.assert_allclose(ties, [3 / 3, 2 / 3, 1 / 3])


def test_rmia_scores_lie_in_the_unit_interval_and_grow_with_the_target_probability():
    rng = np.random.default_rng(7)
    p_z, ref_z = rng.uniform(size=500), rng.uniform(0.2, 1, 500)
    ref_x = np.full(200, 0.5)
    p_x = np.linspace(0, 1, 200)
    s = rmia.scores(p_x, ref_x, p_z, ref_z)
    assert s.shape == (200,) and np.all((0 <= s) & (s <= 1))
    assert np.all(np.diff(s) >= 0) and s[0] == 0 and s[-1] > s[100] > 0


def test_rmia_cannot_tell_members_when_the_target_behaves_like_the_references():
    rng = np.random.default_rng(8)
    n, m = 4000, 1000
    is_member = rng.random(n) < 0.5
    p_ref = rng.beta(2, 2, size=(16, n + m))
    p_x = rmia.reference_probability(p_ref, None, False, 0.0)
    # the target equals the reference average: every LR is 1
    for gamma, expected in ((2.0, 0.0), (1.0, 1.0)):
        s = rmia.scores(p_x[:n], p_x[:n], p_x[n:], p_x[n:], gamma)
        np.testing.assert_array_equal(s, expected)
        assert auc(s, is_member) == 0.5
    # the target is one more model from the same distribution for members and non-members
    target = rng.beta(2, 2, size=n + m)
    s = rmia.scores(target[:n], p_x[:n], target[n:], p_x[n:], 1.0)
    assert abs(auc(s, is_member) - 0.5) < 0.04


def test_rmia_separates_members_and_tune_a_picks_the_best_grid_point():
    rng = np.random.default_rng(9)
    refs, n = 17, 3000
    difficulty = rng.normal(0, 2, n)
    in_mask = halves(rng, refs, n)
    p = 1 / (1 + np.exp(-(difficulty + 1.5 * in_mask + rng.normal(0, 0.5, (refs, n)))))
    a = rmia.tune_a(p[0], in_mask[0], p[1:], in_mask[1:])
    assert a in rmia.A_GRID and 0 < a < 1  # neither end of the grid wins here
    population = np.zeros(n, bool)
    population[np.flatnonzero(~in_mask[0])[::2]] = True
    aucs = {}
    for candidate in rmia.A_GRID:
        p_x = rmia.reference_probability(p[1:], in_mask[1:], True, candidate)
        s = rmia.scores(p[0][~population], p_x[~population], p[0][population], p_x[population])
        aucs[candidate] = auc(s, in_mask[0][~population])
    assert aucs[a] == max(aucs.values()) and aucs[a] > 0.75


# --- U-LiRA -----------------------------------------------------------------------------

def ulira_game(unlearned_shift, seed):
    """Shadows and targets: x trained then unlearned gives mu_x + shift + noise, never trained mu_x + noise."""
    rng = np.random.default_rng(seed)
    mu_x = rng.normal(0, 5, N)
    trained = halves(rng, SHADOWS, N)
    forgot = trained & (rng.random((SHADOWS, N)) < 0.5)
    shadow_phi = mu_x + unlearned_shift * forgot + 3.0 * (trained & ~forgot) + rng.normal(size=(SHADOWS, N))
    unlearned = mu_x + unlearned_shift + rng.normal(size=(8, N))
    never = mu_x + rng.normal(size=(8, N))
    return shadow_phi, forgot, ~trained, unlearned, never


@pytest.mark.parametrize("shift, low, high", [(0.0, 0.47, 0.53), (1.0, 0.72, 0.8)])
def test_ulira_auc(shift, low, high):
    shadow_phi, forgot, never_mask, unlearned, never = ulira_game(shift, 10)
    positives = ulira.scores(unlearned, shadow_phi, forgot, never_mask)
    negatives = ulira.scores(never, shadow_phi, forgot, never_mask)
    assert positives.shape == negatives.shape == (8, N)
    value = auc(np.concatenate([positives, negatives]),
                np.concatenate([np.ones_like(positives, bool), np.zeros_like(negatives, bool)]))
    assert low < value < high, value


def test_ulira_matches_a_per_example_loop():
    rng = np.random.default_rng(11)
    shadow_phi = rng.normal(size=(12, 20)) + rng.normal(0, 3, 20)
    trained = halves(rng, 12, 20)
    forgot = trained & (np.arange(12)[:, None] % 3 != 0)
    target = rng.normal(size=(5, 20))
    for scale in lira.SCALES:
        mu_u, sd_u = loop_fit(shadow_phi, forgot, scale)
        mu_n, sd_n = loop_fit(shadow_phi, ~trained, scale)
        expected = np.stack([[norm.logpdf(target[t, i], mu_u[i], sd_u[i]) - norm.logpdf(target[t, i], mu_n[i], sd_n[i])
                              for i in range(20)] for t in range(5)])
        np.testing.assert_allclose(ulira.scores(target, shadow_phi, forgot, ~trained, scale), expected, rtol=1e-10,
                                   atol=1e-10)
    with pytest.raises(ValueError):
        ulira.scores(target, shadow_phi, trained, trained)


# --- threshold --------------------------------------------------------------------------

def test_threshold_scores_are_signed_signals_higher_for_confident_examples():
    rng = np.random.default_rng(12)
    logits, labels = rng.normal(size=(30, 5)), rng.integers(0, 5, 30)
    confident = logits.copy()
    confident[np.arange(30), labels] += 5  # what a model does on its training points
    for name, sign in threshold.SIGNS.items():
        s = threshold.threshold_scores(name, logits, labels)
        np.testing.assert_allclose(s, sign * getattr(signals, name)(logits, labels))
        assert np.mean(threshold.threshold_scores(name, confident, labels) > s) > 0.9, name
    with pytest.raises(ValueError):
        threshold.threshold_scores("correctness", logits, labels)
