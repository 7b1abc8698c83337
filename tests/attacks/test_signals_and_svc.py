import numpy as np
import pytest

from audit.stats import signals
from attacks.mia.svc import svc_mia_efficacy

RNG = np.random.default_rng(0)
LOGITS = RNG.normal(size=(50, 4)) * 3
LABELS = RNG.integers(0, 4, 50)


def softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_signals_match_their_definitions():
    p = softmax(LOGITS)
    rows = np.arange(50)
    p_y = p[rows, LABELS]
    assert np.allclose(signals.confidence(LOGITS, LABELS), p_y)
    assert np.allclose(signals.loss(LOGITS, LABELS), -np.log(p_y))
    assert np.allclose(signals.entropy(LOGITS), -(p * np.log(p)).sum(1))
    assert np.allclose(signals.logit_scaled_confidence(LOGITS, LABELS), np.log(p_y) - np.log(1 - p_y))
    expected = -(1 - p_y) * np.log(p_y)
    for c in range(4):
        other = LABELS != c
        expected[other] -= p[other, c] * np.log(1 - p[other, c])
    assert np.allclose(signals.modified_entropy(LOGITS, LABELS), expected)
    assert np.array_equal(signals.correctness(LOGITS, LABELS), (p.argmax(1) == LABELS).astype(float))


def test_signals_stay_finite_for_extreme_logits():
    logits = np.array([[200.0, -200.0, 0.0], [-200.0, 200.0, 0.0]])
    labels = np.array([0, 0])
    phi = signals.logit_scaled_confidence(logits, labels)
    assert np.allclose(phi, [200.0, -400.0])
    assert np.all(np.isfinite(signals.modified_entropy(logits, labels)))


@pytest.mark.parametrize(("target_mean", "expected"), [(0.99, 0.0), (0.5, 1.0)])
def test_svc_attack_predicts_members_by_their_confidence(target_mean, expected):
    members = np.clip(RNG.normal(0.99, 0.005, 200), 0, 1)
    nonmembers = np.clip(RNG.normal(0.5, 0.05, 200), 0, 1)
    targets = np.clip(RNG.normal(target_mean, 0.005, 100), 0, 1)
    assert abs(svc_mia_efficacy(members[:, None], nonmembers[:, None], targets[:, None]) - expected) < 0.05


def test_salun_codes_modified_entropy_is_its_own_formula_not_song_and_mittals():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, 4)) * 3
    labels = np.array([0, 1, 2, 3, 0, 1])
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    # every class occurs among the labels: (1 - p) weighs log p in every column
    expected = -((1 - p) * np.log(p)).sum(axis=1)
    np.testing.assert_allclose(signals.modified_entropy_salun_code(logits, labels), expected, rtol=1e-12)
    assert not np.allclose(expected, signals.modified_entropy(logits, labels))
    # whole-column indexing: only the columns of labels present in the set are swapped, in every row
    only_zero = np.zeros(6, dtype=int)
    weights = p.copy()
    weights[:, 0] = 1 - p[:, 0]
    np.testing.assert_allclose(signals.modified_entropy_salun_code(logits, only_zero),
                               -(weights * np.log(p)).sum(axis=1), rtol=1e-12)
