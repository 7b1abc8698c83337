import json

import numpy as np
import pytest
import torch

from audit.tasks.generation.metrics import (
    class_accuracy,
    forgotten_class_probability,
    frechet_distance,
    judge_outputs,
    softmax,
    ua_generation,
)
from audit.nn.models import build_model


def _planted(n: int, hits: int, target: int, other: int) -> np.ndarray:
    predictions = np.full(n, other)
    predictions[np.random.default_rng(0).permutation(n)[:hits]] = target
    return predictions


def test_ua_generation_on_planted_predictions():
    result = ua_generation(_planted(100, 30, target=3, other=5), forgotten=3)
    assert result["value"] == pytest.approx(0.7)
    low, high = result["ci95"]
    assert 0.0 <= low < 0.7 < high <= 1.0
    assert result["n_samples"] == 100
    json.dumps(result)


def test_ua_generation_extremes():
    all_c = ua_generation(np.full(50, 2), forgotten=2)
    assert all_c["value"] == 0.0 and all_c["ci95"][0] == 0.0 and 0.0 < all_c["ci95"][1] < 0.1
    none_c = ua_generation(np.full(50, 7), forgotten=2)
    assert none_c["value"] == 1.0 and none_c["ci95"][1] == 1.0 and 0.9 < none_c["ci95"][0] < 1.0
    with pytest.raises(ValueError):
        ua_generation(np.array([], dtype=int), forgotten=2)


def test_class_accuracy_per_class_and_mean():
    # class 0: 8 of 10 right; class 1: 5 of 20; class 2: 0 of 5; class 3 (excluded) all right.
    predictions = np.concatenate([_planted(10, 8, 0, 9), _planted(20, 5, 1, 0), np.full(5, 1), np.full(4, 3)])
    conditioned = np.repeat([0, 1, 2, 3], [10, 20, 5, 4])
    result = class_accuracy(predictions, conditioned, classes=[0, 1, 2])
    assert set(result) == {"0", "1", "2", "mean"}
    assert result["0"]["value"] == pytest.approx(0.8) and result["0"]["n_samples"] == 10
    assert result["1"]["value"] == pytest.approx(0.25) and result["1"]["n_samples"] == 20
    assert result["2"]["value"] == 0.0 and result["2"]["ci95"][0] == 0.0
    for key in "012":
        low, high = result[key]["ci95"]
        assert 0.0 <= low <= result[key]["value"] <= high <= 1.0
    assert result["mean"]["value"] == pytest.approx((0.8 + 0.25 + 0.0) / 3)
    assert result["mean"]["n_classes"] == 3 and result["mean"]["n_samples"] == 35
    json.dumps(result)


def test_class_accuracy_class_without_samples():
    result = class_accuracy(np.array([4, 4]), np.array([4, 4]), classes=[4, 6])
    assert result["6"] == {"value": None, "ci95": None, "n_samples": 0}
    assert result["mean"]["value"] == 1.0 and result["mean"]["n_classes"] == 1


def test_softmax_rows_sum_to_one_and_survive_large_logits():
    logits = np.array([[1e4, 0.0, -1e4], [1e4, 1e4, 1e4], [-3.0, 0.5, 2.0]])
    p = softmax(logits)
    assert np.all(np.isfinite(p))
    assert np.allclose(p.sum(axis=1), 1.0)
    assert np.allclose(p[0], [1.0, 0.0, 0.0]) and np.allclose(p[1], 1 / 3)
    expected = np.exp(logits[2]) / np.exp(logits[2]).sum()
    assert np.allclose(p[2], expected)


def test_forgotten_class_probability_on_planted_probabilities():
    probabilities = np.array([[0.1, 0.9], [0.6, 0.4], [0.8, 0.2], [0.5, 0.5]])
    assert forgotten_class_probability(probabilities[:, 1]) == pytest.approx(0.5)
    assert isinstance(forgotten_class_probability(probabilities[:, 0]), float)
    logits = np.zeros((6, 4))
    assert forgotten_class_probability(softmax(logits)[:, 2]) == pytest.approx(0.25)
    with pytest.raises(ValueError):
        forgotten_class_probability(probabilities)
    with pytest.raises(ValueError):
        forgotten_class_probability(np.array([1.5]))


def test_frechet_distance_of_identical_samples_is_close_to_zero():
    x = np.random.default_rng(0).normal(0.0, 3.0, size=(4000, 16))
    result = frechet_distance(x, x)
    assert 0.0 <= result["value"] < 1e-6 * np.trace(np.cov(x, rowvar=False))
    assert result["n_real"] == result["n_generated"] == 4000 and result["dimensions"] == 16
    assert result["features"] == "judge penultimate layer" and result["regularised"] is False
    json.dumps(result)


def test_frechet_distance_of_shifted_identity_gaussians_is_squared_mean_difference():
    n, d = 20000, np.array([1.0, -2.0, 0.5])
    rng = np.random.default_rng(1)
    result = frechet_distance(rng.normal(size=(n, 3)), rng.normal(size=(n, 3)) + d)
    # sd of the estimate is about 2·||d||·sqrt(2/n) (the mean-difference cross term).
    tolerance = 5 * 2 * np.linalg.norm(d) * np.sqrt(2 / n) + 0.02
    assert result["value"] == pytest.approx(float(d @ d), abs=tolerance)


def _whitened(rng: np.random.Generator, n: int, dims: int) -> np.ndarray:
    """A sample with mean exactly 0 and covariance exactly I."""
    z = rng.normal(size=(n, dims))
    z -= z.mean(axis=0)
    return z @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False))).T


def test_frechet_distance_with_diagonal_covariances_matches_closed_form():
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 0.25])
    closed_form = float(np.sum((np.sqrt(a) - np.sqrt(b)) ** 2))  # 1 + 1 + 6.25
    rng = np.random.default_rng(2)
    exact = frechet_distance(_whitened(rng, 500, 3) * np.sqrt(a), _whitened(rng, 700, 3) * np.sqrt(b))
    assert exact["value"] == pytest.approx(closed_form, rel=1e-8)
    n = 20000
    sampled = frechet_distance(rng.normal(size=(n, 3)) * np.sqrt(a), rng.normal(size=(n, 3)) * np.sqrt(b))
    # Delta method: dFD/da_i = 1 − sqrt(b_i/a_i), var(â_i) = 2·a_i²/n (and symmetrically for b).
    sd = np.sqrt(np.sum((1 - np.sqrt(b / a)) ** 2 * 2 * a**2 + (1 - np.sqrt(a / b)) ** 2 * 2 * b**2) / n)
    assert sampled["value"] == pytest.approx(closed_form, abs=5 * sd)


def test_frechet_distance_rejects_bad_shapes():
    x = np.zeros((5, 3))
    with pytest.raises(ValueError):
        frechet_distance(x[:1], x)
    with pytest.raises(ValueError):
        frechet_distance(x, x[:1])
    with pytest.raises(ValueError):
        frechet_distance(x, np.zeros((5, 4)))


def test_frechet_distance_regularises_only_when_the_root_is_not_finite(monkeypatch):
    from audit.tasks.generation import metrics as generation_metrics

    calls = []
    real_sqrtm = generation_metrics.linalg.sqrtm

    def flaky(matrix):
        calls.append(matrix)
        return np.full_like(matrix, np.nan) if len(calls) == 1 else real_sqrtm(matrix)

    monkeypatch.setattr(generation_metrics.linalg, "sqrtm", flaky)
    x = np.random.default_rng(3).normal(size=(50, 2))
    result = frechet_distance(x, x)
    assert result["regularised"] is True and len(calls) == 2
    assert np.isfinite(result["value"]) and result["value"] >= 0.0


@pytest.mark.parametrize("training", [True, False])
def test_judge_outputs_match_the_model_and_restore_its_mode(training):
    model = build_model("mlp", {"hidden": [16]}, (1, 8, 8), 10, torch.Generator().manual_seed(0), torch.device("cpu"))
    model.train(training)
    x = torch.randn(21, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    logits, features = judge_outputs(model, x, batch_size=8)
    assert model.training is training and all(m.training is training for m in model.modules())
    assert isinstance(logits, np.ndarray) and isinstance(features, np.ndarray)
    assert logits.shape == (21, 10) and features.shape == (21, 16)
    with torch.no_grad():
        model.eval()
        assert np.allclose(logits, model(x).numpy(), atol=1e-6)
        assert np.allclose(features, model.features(x).numpy(), atol=1e-6)


def test_judge_outputs_restore_mixed_modes():
    model = build_model("mlp", {"hidden": [16]}, (1, 8, 8), 10, torch.Generator().manual_seed(0), torch.device("cpu"))
    model.train()
    model.head.eval()
    judge_outputs(model, torch.zeros(3, 1, 8, 8))
    assert model.training and model.body.training and not model.head.training
