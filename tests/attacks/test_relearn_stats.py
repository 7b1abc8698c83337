"""Statistics of relearning attacks: recovery curves, the 'above' tests and relearn time."""

import json

import numpy as np
import pytest

from attacks.relearn_stats import gap_areas, recovery_curves, relearn_time

STEPS = [0, 50, 100, 200]


def _separated(seed: int = 0, n: int = 8):
    rng = np.random.default_rng(seed)
    retrained = np.clip(rng.normal(0.0, 0.01, size=(n, 4)), 0, 1)
    rise = np.array([0.0, 0.3, 0.5, 0.6])
    unlearned = np.clip(rise + rng.normal(0.0, 0.02, size=(n, 4)), 0, 1)
    return unlearned, retrained


def test_identical_curves_show_no_recovery_and_are_not_above():
    rng = np.random.default_rng(1)
    curves = np.clip(np.linspace(0.1, 0.4, 4) + rng.normal(0, 0.05, size=(6, 4)), 0, 1)
    out = recovery_curves(curves, curves.copy(), STEPS)
    assert out["recovery"]["value"] == 0.0
    low, high = out["recovery"]["ci95"]
    assert low <= 0.0 <= high
    assert out["gain"]["value"] == 0.0
    assert out["above"]["above"] is False
    assert out["above"]["p_t"] is None or out["above"]["p_t"] >= 0.5
    assert out["above"]["p_wilcoxon"] is None  # all gaps are 0
    json.dumps(out)


def test_unlearned_clearly_above_retrained():
    u, r = _separated()
    out = recovery_curves(u, r, STEPS)
    rec = out["recovery"]
    assert rec["value"] == pytest.approx(0.6, abs=0.05)
    assert rec["ci95"][0] > 0
    assert rec["n"] == 8 and rec["budget"] == 200
    assert out["above"]["above"] is True
    assert out["above"]["p_t"] < 0.01
    assert out["above"]["p_wilcoxon"] == pytest.approx(1 / 2**8)  # exact: all 8 gaps positive
    assert "8 seeds" in out["above"]["why"]
    assert len(out["unlearned"]) == len(out["difference"]) == 4
    assert out["difference"][-1]["mean"] == pytest.approx(rec["value"])
    json.dumps(out)


def test_gap_area_matches_hand_trapezoid():
    steps = [0, 10, 40]  # uneven
    u = np.array([[0.0, 0.2, 0.5], [0.1, 0.1, 0.4]])
    r = np.array([[0.0, 0.0, 0.1], [0.1, 0.2, 0.2]])
    # seed 0 gap: 0, 0.2, 0.4 -> (0+0.2)/2*10 + (0.2+0.4)/2*30 = 1 + 9 = 10, / 40 = 0.25
    # seed 1 gap: 0, -0.1, 0.2 -> (-0.1)/2*10 + (0.1)/2*30 = -0.5 + 1.5 = 1, / 40 = 0.025
    assert gap_areas(u, r, steps) == pytest.approx([0.25, 0.025])
    out = recovery_curves(u, r, steps)
    assert out["above"]["mean_gap"]["per_seed"] == pytest.approx([0.25, 0.025])
    assert out["above"]["mean_gap"]["mean"] == pytest.approx(0.1375)


def test_gain_is_zero_when_unlearned_starts_higher_and_does_not_rise():
    rng = np.random.default_rng(2)
    r = np.clip(np.full((6, 4), 0.1) + rng.normal(0, 0.01, size=(6, 1)), 0, 1)
    offset = 0.3 + rng.normal(0, 0.02, size=(6, 1))
    u = r + offset  # starts about 0.3 higher, parallel to the retrained curve
    out = recovery_curves(u, r, STEPS)
    assert out["gain"]["value"] == pytest.approx(0.0, abs=1e-12)
    assert out["recovery"]["value"] == pytest.approx(float(offset.mean()))
    assert out["recovery"]["value"] > 0.25 and out["recovery"]["ci95"][0] > 0


def test_constant_gap_has_no_t_test_but_a_wilcoxon():
    r = np.zeros((5, 3))
    out = recovery_curves(r + 0.2, r, [0, 1, 2])
    assert out["above"]["p_t"] is None and out["above"]["above"] is False
    assert out["above"]["p_wilcoxon"] == pytest.approx(1 / 2**5)
    assert "same on all 5 seeds" in out["above"]["why"]


def test_one_seed_cannot_test():
    u, r = _separated(n=1)
    out = recovery_curves(u, r, STEPS)
    assert out["recovery"]["ci95"] is None and out["above"]["p_t"] is None
    assert out["above"]["above"] is False and "One seed" in out["above"]["why"]
    json.dumps(out)


def test_numpy_steps_are_returned_as_plain_numbers():
    u, r = _separated()
    out = recovery_curves(u, r, np.array(STEPS))
    assert out["steps"] == STEPS and all(type(s) is int for s in out["steps"])
    json.dumps(out)


@pytest.mark.parametrize(
    "u_shape, r_shape, steps",
    [
        ((4, 3), (4, 4), [0, 1, 2]),  # shapes differ
        ((4, 1), (4, 1), [0]),  # one checkpoint
        ((4, 3), (4, 3), [0, 2, 1]),  # not increasing
        ((4, 3), (4, 3), [0, 1]),  # wrong number of steps
        ((12,), (12,), [0, 1, 2]),  # not 2-D
    ],
)
def test_invalid_curves_raise(u_shape, r_shape, steps):
    with pytest.raises(ValueError):
        recovery_curves(np.zeros(u_shape), np.zeros(r_shape), steps)


def test_non_finite_accuracy_raises():
    u = np.zeros((3, 3))
    u[1, 1] = np.nan
    with pytest.raises(ValueError):
        recovery_curves(u, np.zeros((3, 3)), [0, 1, 2])


def test_unlearned_relearns_faster_than_retrained():
    out = relearn_time([3, 4, 5, 4], [None, None, 40, 35], max_steps=50)
    assert out["faster"]["faster"] is True and out["faster"]["p"] < 0.05
    assert out["unlearned"]["censored"] == 0 and out["retrained"]["censored"] == 2
    assert out["retrained"]["per_seed"] == [51.0, 51.0, 40.0, 35.0]
    assert out["median_ratio"] == pytest.approx(4.0 / 45.5)
    json.dumps(out)


def test_equal_samples_are_not_faster():
    out = relearn_time([10, 12, None, 8], [10, 12, None, 8], max_steps=20)
    assert out["faster"]["faster"] is False and out["faster"]["p"] >= 0.5
    assert out["median_ratio"] == pytest.approx(1.0)
    json.dumps(out)


def test_zero_median_ratio_is_none():
    assert relearn_time([0, 0, 1], [0, 0, 0], max_steps=5)["median_ratio"] is None


@pytest.mark.parametrize(
    "u, r, max_steps",
    [([], [1], 10), ([1], [], 10), ([11], [1], 10), ([-1], [1], 10), ([1.5], [1], 10), ([1], [1], 0)],
)
def test_invalid_relearn_times_raise(u, r, max_steps):
    with pytest.raises(ValueError):
        relearn_time(u, r, max_steps)
