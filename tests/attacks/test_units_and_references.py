"""Intervals and bounds over the units that are really independent, references matched in number,
and the two-sided offline LiRA score: each checked where the naive version goes wrong."""

import numpy as np
import pytest
from scipy.stats import norm

from attacks.mia import lira
from attacks.mia.roc import advantage, auc, auc_interval, epsilon_lower_bound, roc_curve
from attacks.mia.units import Units, _Game, auc_intervals, grouped_auc_intervals, one_cell_per_unit
from audit.data.shadows import keep_per_column

MODELS, FORGET, TEST, SHADOWS = 10, 144, 360, 16


def example_effect_game(rng, shift=0.0, example_sd=1.0, model_sd=0.3):
    """Scores with a strong per-example effect: every model sees the same examples."""
    forget = rng.normal(size=FORGET) * example_sd + shift
    test = rng.normal(size=TEST) * example_sd
    positives = forget[None] + model_sd * rng.normal(size=(MODELS, FORGET))
    negatives = test[None] + model_sd * rng.normal(size=(MODELS, TEST))
    scores = np.concatenate([positives.ravel(), negatives.ravel()])
    is_member = np.concatenate([np.ones(positives.size, bool), np.zeros(negatives.size, bool)])
    units = Units.grid(positives.shape, negatives.shape, shared_models=True, shared_examples=False)
    return scores, is_member, units


def test_units_of_a_grid_count_models_and_examples():
    units = Units.grid((3, 4), (3, 5), shared_models=True, shared_examples=False)
    is_member = np.r_[np.ones(12, bool), np.zeros(15, bool)]
    assert units.counts(is_member) == {"models": {"members": 3, "nonmembers": 3, "shared": 3},
                                       "examples": {"members": 4, "nonmembers": 5, "shared": 0}}
    paired = Units.grid((2, 4), (3, 4), shared_models=False, shared_examples=True)
    is_member = np.r_[np.ones(8, bool), np.zeros(12, bool)]
    assert paired.counts(is_member) == {"models": {"members": 2, "nonmembers": 3, "shared": 0},
                                        "examples": {"members": 4, "nonmembers": 4, "shared": 4}}


def test_with_independent_cells_the_interval_is_the_ordinary_bootstrap():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=3000)
    is_member = rng.random(3000) < 0.3
    scores[is_member] += 0.5
    cells = Units(np.zeros(3000, int), np.arange(3000))  # one model: only the cells vary
    ours = auc_intervals(scores, is_member, cells, np.random.default_rng(1))
    plain = auc_interval(scores, is_member, np.random.default_rng(2))
    assert np.allclose(ours["ci95"], plain, atol=0.006)
    assert ours["ci95_by_unit"]["models"]["se"] < 1e-12


def test_recurring_examples_widen_the_interval_and_it_covers_the_truth():
    """Examples recur in every model: resampling cells as independent is far too narrow. Over
    fresh draws of the examples the two-way interval covers the population AUC; the naive
    one does not."""
    truth = 0.5  # no shift: forget and test examples come from one distribution
    covered, naive_covered, ratios = 0, 0, []
    draws = 40
    for draw in range(draws):
        rng = np.random.default_rng(100 + draw)
        scores, is_member, units = example_effect_game(rng)
        two_way = auc_intervals(scores, is_member, units, np.random.default_rng(draw), resamples=300)
        naive = auc_interval(scores, is_member, np.random.default_rng(draw), resamples=300)
        covered += two_way["ci95"][0] <= truth <= two_way["ci95"][1]
        naive_covered += naive[0] <= truth <= naive[1]
        width = two_way["ci95"][1] - two_way["ci95"][0]
        ratios.append(width / (naive[1] - naive[0]))
        assert two_way["se"] >= 0.9 * two_way["ci95_by_unit"]["examples"]["se"]
    assert covered / draws >= 0.85
    assert naive_covered / draws <= 0.6
    assert np.median(ratios) > 2


def test_the_advantage_at_unit_weights_is_the_roc_curves():
    rng = np.random.default_rng(3)
    for shift in (0.0, 0.7):
        scores, is_member, units = example_effect_game(rng, shift=shift)
        scores = np.round(scores, 1)  # ties within and across the sides
        fpr, tpr, _ = roc_curve(scores, is_member)
        assert _Game(scores, is_member, units).advantage_at_unit_weights() == pytest.approx(advantage(fpr, tpr), abs=1e-12)


def test_the_advantage_interval_covers_the_truth_even_where_it_is_zero():
    """The advantage is a maximum over thresholds: the sample's sits above the truth, and the
    resampled ones above the sample's. The basic interval covers a true 0 and a true 0.19 alike."""
    draws = 25
    for shift in (0.0, 0.5):
        truth = 2 * norm.cdf(shift / 2 / np.sqrt(1 + 0.3 ** 2)) - 1  # two normals, the example and model spread
        covered = 0
        for draw in range(draws):
            scores, is_member, units = example_effect_game(np.random.default_rng(300 + draw), shift=shift)
            low, high = auc_intervals(scores, is_member, units, np.random.default_rng(draw), resamples=300)[
                "advantage"]["ci95"]
            covered += low <= truth <= high
        assert covered / draws >= 0.85, shift


def test_each_class_interval_in_one_pass_is_that_class_own_two_way_bootstrap():
    """One resampling pass gives each class of the forget set its interval against every
    non-member: the same interval, up to bootstrap noise, as resampling that class's game alone."""
    rng = np.random.default_rng(5)
    scores, is_member, units = example_effect_game(rng)
    classes = np.arange(FORGET) % 4
    member_cells = np.flatnonzero(is_member)
    scores[member_cells] += 0.6 * classes[units.examples[member_cells]]  # class 3 far above the test set
    groups = np.where(is_member, classes[units.examples % FORGET], -1)
    grouped = grouped_auc_intervals(scores, is_member, units, groups, np.random.default_rng(1), resamples=2000,
                                    within_groups=False)
    assert set(grouped) == {0, 1, 2, 3}
    for c, entry in grouped.items():
        cells = (groups == c) | ~is_member
        alone = auc_intervals(scores[cells], is_member[cells], Units(units.models[cells], units.examples[cells]),
                              np.random.default_rng(2), resamples=2000)
        assert np.allclose(entry["ci95"], alone["ci95"], atol=0.015), c
        assert abs(entry["se"] / alone["se"] - 1) < 0.15, c
        assert entry["ci95"][0] <= auc(scores[cells], is_member[cells]) <= entry["ci95"][1]
    assert grouped[0]["ci95"][0] < 0.5 < grouped[0]["ci95"][1] and grouped[3]["ci95"][0] > 0.75
    # a class of 36 examples is far less certain than the whole forget set of 144
    whole = auc_intervals(scores, is_member, units, np.random.default_rng(3), resamples=500)
    assert grouped[0]["se"] > 1.5 * whole["se"]


def _paired_class_game(rng, shifted_class=2, shift=2.0):
    """U-LiRA's shape: 4 unlearned against 6 retrained models on the same forget examples, a strong
    per-example effect on both sides, one class of 3 scored higher by the unlearned models."""
    effect = rng.normal(size=FORGET)
    classes = np.arange(FORGET) % 3
    positives = effect[None] + shift * (classes == shifted_class) + 0.3 * rng.normal(size=(4, FORGET))
    negatives = effect[None] + 0.3 * rng.normal(size=(6, FORGET))
    scores = np.concatenate([positives.ravel(), negatives.ravel()])
    is_member = np.r_[np.ones(positives.size, bool), np.zeros(negatives.size, bool)]
    units = Units.grid(positives.shape, negatives.shape, shared_models=False, shared_examples=True)
    return scores, is_member, units, classes[units.examples]


def test_within_classes_each_class_plays_its_own_game_on_shared_examples():
    covered, draws = 0, 20
    for draw in range(draws):
        scores, is_member, units, groups = _paired_class_game(np.random.default_rng(200 + draw))
        grouped = grouped_auc_intervals(scores, is_member, units, groups, np.random.default_rng(draw), resamples=300,
                                        within_groups=True)
        covered += sum(grouped[c]["ci95"][0] <= 0.5 <= grouped[c]["ci95"][1] for c in (0, 1))
        assert grouped[2]["ci95"][0] > 0.75, draw  # Φ(2 / √2) = 0.92 across examples
    assert covered / (2 * draws) >= 0.85
    cells = groups == 2
    alone = auc_intervals(scores[cells], is_member[cells], Units(units.models[cells], units.examples[cells]),
                          np.random.default_rng(2), resamples=1000)
    grouped = grouped_auc_intervals(scores, is_member, units, groups, np.random.default_rng(1), resamples=1000,
                                    within_groups=True)
    assert abs(grouped[2]["se"] / alone["se"] - 1) < 0.15


def test_one_cell_per_unit_and_side():
    rng = np.random.default_rng(0)
    units = np.repeat(np.arange(6), 4)
    is_member = np.tile([True, False], 12)
    picked = one_cell_per_unit(units, is_member, rng)
    assert len(picked) == 12
    for side in (True, False):
        chosen = picked[is_member[picked] == side]
        assert sorted(units[chosen]) == list(range(6))


def test_the_epsilon_bound_counts_examples_not_cells():
    rng = np.random.default_rng(1)
    scores, is_member, units = example_effect_game(rng, shift=3.0, example_sd=0.5)
    cells = epsilon_lower_bound(scores, is_member, np.random.default_rng(0))
    examples = epsilon_lower_bound(scores, is_member, np.random.default_rng(0), units=units.examples)
    assert cells["n_members"] + cells["n_nonmembers"] > 2000
    assert examples["n_members"] + examples["n_nonmembers"] <= (FORGET + TEST + 1) // 2 + 1
    assert "examples are the independent trials" in examples["trials"]
    # fewer trials certify less, however separable the scores
    assert 0 < examples["value"] < cells["value"]


def offline_null_bounds(matched: bool, draws: int = 40) -> float:
    """Share of null draws (forget points never trained, like test points) where offline LiRA's
    ε bound is positive: forget points fitted on the SHADOWS / 2 OUT shadows they have, test
    points on all SHADOWS or, matched, on half of them. The targets trained on more data than
    the shadows, so their φ sits above the shadows' OUT fits, as a retrain's does."""
    positive = 0
    for draw in range(draws):
        rng = np.random.default_rng(draw)
        mu, sd = rng.normal(0, 3, FORGET + TEST), rng.uniform(0.3, 2, FORGET + TEST)
        shadows = mu + sd * rng.normal(size=(SHADOWS, FORGET + TEST))
        targets = mu + 2 * sd + sd * rng.normal(size=(MODELS, FORGET + TEST))
        out = np.ones_like(shadows, dtype=bool)
        out[:, :FORGET] = np.argsort(rng.random((SHADOWS, FORGET)), axis=0) < SHADOWS // 2
        if matched:
            out[:, FORGET:] = np.argsort(rng.random((SHADOWS, TEST)), axis=0) < SHADOWS // 2
        scores = lira.offline_scores(targets, shadows, ~out, "per_example", out)
        is_member = np.zeros_like(scores, dtype=bool)
        is_member[:, :FORGET] = True
        # counted per cell, so the low-FPR tail shows: heavier tails of the smaller fit leak there
        bound = epsilon_lower_bound(scores.ravel(), is_member.ravel(), np.random.default_rng(draw))
        positive += bound["value"] > 0
    return positive / draws


def test_matched_references_remove_the_false_leakage_of_offline_lira():
    unmatched, matched = offline_null_bounds(False), offline_null_bounds(True)
    assert unmatched >= 0.5
    assert matched <= 0.1


def test_keep_per_column_keeps_exactly_that_many_of_the_mask():
    rng = np.random.default_rng(0)
    mask = rng.random((16, 50)) < 0.6
    mask[:9, :] = True
    kept = keep_per_column(mask, 9, rng)
    assert (kept.sum(axis=0) == 9).all() and not (kept & ~mask).any()


def test_the_shadow_game_matches_reference_counts_for_members_and_non_members():
    rng = np.random.default_rng(0)
    in_mask = np.argsort(rng.random((8, 40)), axis=0) < 4
    phi = rng.normal(size=(8, 40))
    seen = []

    def record(target, reference, inside, outside):
        seen.append((inside.sum(axis=0), outside.sum(axis=0)))
        return lira.online_scores(target, reference, inside, "per_example", outside)

    lira.shadow_game(phi, in_mask, record, np.random.default_rng(1))
    for inside, outside in seen:  # leaving one shadow out leaves 3 or 4 of each; all keep 3
        assert (inside == 3).all() and (outside == 3).all()
    seen.clear()
    lira.shadow_game(phi, in_mask, record)
    assert any(len(np.unique(inside)) > 1 for inside, _ in seen)


def test_two_sided_offline_lira_flags_both_tails():
    rng = np.random.default_rng(0)
    phi = rng.normal(size=(40, 3)) + np.array([0.0, 5.0, -2.0])
    out = np.ones_like(phi, dtype=bool)
    target = np.array([[0.0, 5.0 + 4.0, -2.0 - 4.0]])  # typical, far above, far below
    one_sided = lira.offline_scores(target, phi, ~out, "per_example", out)
    two_sided = lira.offline_two_sided_scores(target, phi, ~out, "per_example", out)
    assert one_sided[0, 2] < one_sided[0, 0] < one_sided[0, 1]
    assert two_sided[0, 0] < min(two_sided[0, 1], two_sided[0, 2])
    mu, sigma = lira.fit_gaussians(phi, out)
    np.testing.assert_allclose(two_sided[0], -norm.logpdf(target[0], mu, sigma))
    # over-forgotten members read as "no leakage" one-sided and as leakage two-sided
    assert auc(np.r_[one_sided[0, 2:], one_sided[0, :1]], np.r_[True, False]) == 0.0
    assert auc(np.r_[two_sided[0, 2:], two_sided[0, :1]], np.r_[True, False]) == 1.0
