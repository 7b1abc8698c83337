"""Athena-style backdoor verification of deletion: trigger, threshold, test and queries."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import binom

from attacks.backdoor import athena_test, detection_threshold, plant_trigger, queries


def _images(n=6, c=3, h=8, w=8, seed=0):
    return torch.randn(n, c, h, w, generator=torch.Generator().manual_seed(seed))


def test_plant_trigger_sets_only_the_corner_patch_to_the_max():
    x = _images()
    before = x.clone()
    out = plant_trigger(x, size=2)
    assert torch.equal(x, before)  # input untouched
    changed = out != x
    assert int(changed.sum()) == 2 * 2 * 3 * 6  # randn never equals the max in the corner
    assert changed[..., 6:, 6:].all() and not changed[..., :6, :].any() and not changed[..., :, :6].any()
    assert torch.all(out[..., 6:, 6:] == x.max())
    assert torch.all(plant_trigger(x, size=3, value=-5.0)[..., 5:, 5:] == -5.0)


@pytest.mark.parametrize("size", [0, -1, 9])
def test_plant_trigger_rejects_bad_size(size):
    with pytest.raises(ValueError, match="size"):
        plant_trigger(_images(), size=size)


def _brute_threshold(n, q, alpha):
    for t in range(n + 2):
        if sum(binom.pmf(k, n, q) for k in range(t, n + 1)) <= alpha + 1e-12:
            return t
    raise AssertionError("unreachable")


@pytest.mark.parametrize(
    "n,q,alpha", [(100, 0.05, 0.05), (200, 0.02, 0.01), (20, 0.3, 0.1), (50, 0.0, 0.05), (3, 0.5, 0.05)]
)
def test_detection_threshold_matches_brute_force(n, q, alpha):
    assert detection_threshold(n, q, alpha) == _brute_threshold(n, q, alpha)


def test_detection_threshold_edge_cases():
    assert detection_threshold(50, 0.0, 0.05) == 1  # one hit is impossible without the backdoor
    assert detection_threshold(3, 0.5, 0.05) == 4  # even 3 of 3 has chance 0.125: never reject
    assert detection_threshold(1, 0.5, 0.5) == 1  # P[X >= 1] = 0.5 exactly: "<= alpha" admits it


def test_backdoored_model_is_not_deleted():
    r = athena_test(88, 100, q=0.05, p=0.9)
    assert r["decision"] == "not deleted" and r["rejected"]
    assert r["power"] > 0.99
    assert r["p_value"] == pytest.approx(binom.sf(87, 100, 0.05))
    assert str(r["threshold"]) in r["why"] and "88 of 100" in r["why"]


def test_clean_model_is_deleted():
    r = athena_test(4, 100, q=0.05, p=0.9)
    assert r["decision"] == "deleted" and not r["rejected"]
    assert r["p_value"] == pytest.approx(binom.sf(3, 100, 0.05))
    assert r["power"] == pytest.approx(binom.sf(r["threshold"] - 1, 100, 0.9))


def test_tiny_n_is_undecided():
    r = athena_test(1, 3, q=0.3, p=0.9)
    assert r["threshold"] == 3 and r["power"] == pytest.approx(0.9**3)
    assert r["power"] < 0.8 and r["decision"] == "undecided"


def test_no_power_when_backdoor_rate_not_above_base_rate():
    r = athena_test(1, 100, q=0.3, p=0.2)
    assert r["decision"] == "undecided" and "no power" in r["why"]


def test_never_reject_has_zero_power():
    r = athena_test(3, 3, q=0.5, p=0.99)
    assert r["threshold"] == 4 and r["power"] == 0.0 and r["decision"] == "undecided"


@pytest.mark.parametrize(
    "kwargs,name",
    [
        (dict(successes=-1, n=10, q=0.1, p=0.9), "successes"),
        (dict(successes=11, n=10, q=0.1, p=0.9), "successes"),
        (dict(successes=0, n=0, q=0.1, p=0.9), "n"),
        (dict(successes=1, n=10, q=1.0, p=0.9), "q"),
        (dict(successes=1, n=10, q=-0.1, p=0.9), "q"),
        (dict(successes=1, n=10, q=0.1, p=0.0), "p"),
        (dict(successes=1, n=10, q=0.1, p=1.5), "p"),
        (dict(successes=1, n=10, q=0.1, p=0.9, alpha=0.0), "alpha"),
        (dict(successes=1, n=10, q=0.1, p=0.9, alpha=1.0), "alpha"),
    ],
)
def test_invalid_inputs_raise_naming_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        athena_test(**kwargs)


def test_monte_carlo_false_alarm_rate_and_power():
    rng = np.random.default_rng(0)
    n, q, alpha = 100, 0.05, 0.05
    null = rng.binomial(n, q, size=2000)
    assert np.mean([athena_test(int(k), n, q, 0.3, alpha)["rejected"] for k in null]) <= alpha + 0.01
    power = athena_test(0, n, q, 0.3, alpha)["power"]
    alt = rng.binomial(n, 0.3, size=2000)
    assert abs(np.mean(alt >= detection_threshold(n, q, alpha)) - power) <= 0.03


def _labelled_test_set(m=40, target=2):
    x = torch.randn(m, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    x[:, :, 0, 0] = torch.arange(m, dtype=torch.float32)[:, None]  # the row index, untouched by the trigger
    y = torch.arange(m) % 4
    return x, y, target


def _rows(out):
    return out[:, 0, 0, 0].long()


def test_queries_avoid_target_and_are_triggered():
    x, y, target = _labelled_test_set()
    out = queries(x, y, target, n=12, generator=torch.Generator().manual_seed(0))
    assert out.shape == (12, 3, 8, 8)
    rows = _rows(out)
    assert len(set(rows.tolist())) == 12  # without replacement
    assert torch.all(y[rows] != target)
    assert torch.all(out[..., 6:, 6:] == x.max())


def test_queries_deterministic_per_seed_and_capped():
    x, y, target = _labelled_test_set()
    a = queries(x, y, target, n=12, generator=torch.Generator().manual_seed(0))
    b = queries(x, y, target, n=12, generator=torch.Generator().manual_seed(0))
    c = queries(x, y, target, n=12, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and not torch.equal(_rows(a), _rows(c))
    everything = queries(x, y, target, n=1000, generator=torch.Generator().manual_seed(0))
    assert sorted(_rows(everything).tolist()) == [i for i in range(40) if i % 4 != target]
