import numpy as np
import pytest
import torch
from scipy import stats

from audit.core.contracts import Subset
from audit.data.datasets import AuditData
from audit.tasks.classification.metrics import avg_gap, classification_metrics
from audit.stats.basics import summarize


def tiny_data(pool_labels, test_labels, forget, classes=()):
    return AuditData(
        dataset="tiny", num_classes=3,
        pool=Subset(torch.zeros(len(pool_labels), 1, 1, 1), torch.tensor(pool_labels)),
        test=Subset(torch.zeros(len(test_labels), 1, 1, 1), torch.tensor(test_labels)),
        pool_index=np.arange(len(pool_labels)), test_index=np.arange(len(test_labels)),
        forget=np.array(forget), forget_classes=classes, content_digest="x",
        channel_mean=np.zeros(1), channel_std=np.ones(1),
    )


def logits_predicting(predictions, confidence=4.0):
    z = np.zeros((len(predictions), 3))
    z[np.arange(len(predictions)), predictions] = confidence
    return z


def test_ua_ra_ta_count_the_right_points():
    pool_labels = [0, 1, 2, 0, 1, 2, 0, 1]
    data = tiny_data(pool_labels, [0, 1, 2, 2], forget=[0, 1])
    pool_pred = [0, 2, 2, 0, 1, 2, 1, 1]  # forget: 1 of 2 right; retain: 5 of 6 right
    test_pred = [0, 1, 0, 2]
    metrics = classification_metrics(
        {"pool_logits": logits_predicting(pool_pred), "test_logits": logits_predicting(test_pred)}, data, "confidence"
    )
    assert metrics["UA"] == pytest.approx(0.5)
    assert metrics["RA"] == pytest.approx(5 / 6)
    assert metrics["TA"] == pytest.approx(0.75)
    assert 0 <= metrics["MIA"] <= 1


def test_class_wise_test_accuracy_leaves_out_the_forgotten_class():
    data = tiny_data([0, 1, 2, 2], [0, 1, 2, 2], forget=[2, 3], classes=(2,))
    metrics = classification_metrics(
        {"pool_logits": logits_predicting([0, 1, 0, 0]), "test_logits": logits_predicting([0, 1, 0, 0])}, data, "confidence"
    )
    assert metrics["TA"] == 1.0 and metrics["UA"] == 1.0


def test_avg_gap_is_the_mean_absolute_difference():
    a = {"UA": 0.1, "RA": 0.9, "TA": 0.8, "MIA": 0.3}
    b = {"UA": 0.2, "RA": 1.0, "TA": 0.8, "MIA": 0.1}
    assert avg_gap(a, b) == pytest.approx((0.1 + 0.1 + 0 + 0.2) / 4)


def test_summary_interval_is_the_student_t_interval_of_the_mean():
    values = [0.1, 0.3, 0.2, 0.6]
    summary = summarize(values)
    low, high = stats.t.interval(0.95, 3, loc=np.mean(values), scale=stats.sem(values))
    assert summary["ci95"] == pytest.approx([low, high])
    assert summary["std"] == pytest.approx(np.std(values, ddof=1))
    assert summary["n"] == 4 and summary["per_seed"] == values
    clipped = summarize([0.0, 0.0, 0.01], bounds=(0.0, 1.0))
    assert clipped["ci95"][0] == 0.0 and clipped["ci95"][1] < 0.03
    single = summarize([0.5])
    assert single["std"] is None and single["ci95"] is None and single["mean"] == 0.5
