"""The SalUn family's classification metrics, computed from a model's observations.

UA = 1 - acc(D_f), RA = acc(D_r), TA = acc(T) (the forgotten classes removed from T in
class-wise forgetting), MIA = MIA-Efficacy of the SVC attack (members: the first |T|
points of D_r in pool order; non-members: T; targets: D_f), Avg. Gap = mean of the four
absolute differences to a retrained model. The SVC is one RBF SVC (C = 3, gamma = "auto")
fitted on one feature of the outputs for members (label 1) and non-members (label 0);
MIA-Efficacy is the fraction of the targets it predicts as non-members.
"""

from __future__ import annotations

import numpy as np
from sklearn.svm import SVC

from audit.data.datasets import AuditData
from audit.stats.signals import feature

METRICS = ("UA", "RA", "TA", "MIA")


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float((np.argmax(logits, axis=1) == labels).mean())


def classification_metrics(observation: dict[str, np.ndarray], data: AuditData, mia_feature: str) -> dict[str, float]:
    pool, test = observation["pool_logits"], observation["test_logits"]
    y_pool, y_test = data.pool.y.numpy(), data.test.y.numpy()
    test_mask = data.eval_test_mask
    return {
        "UA": 1.0 - accuracy(pool[data.forget], y_pool[data.forget]),
        "RA": accuracy(pool[data.retain], y_pool[data.retain]),
        "TA": accuracy(test[test_mask], y_test[test_mask]),
        "MIA": mia_efficacy_of(observation, data, mia_feature),
    }


def mia_efficacy_of(observation: dict[str, np.ndarray], data: AuditData, feature: str) -> float:
    """SalUn's MIA-Efficacy of one model: the SVC fitted on the first |T| retain points (members)
    against the test set T (non-members), applied to the forget set."""
    pool, test = observation["pool_logits"], observation["test_logits"]
    y_pool, y_test = data.pool.y.numpy(), data.test.y.numpy()
    test_mask = data.eval_test_mask
    members = data.retain[: int(test_mask.sum())]
    return mia_efficacy(
        feature,
        member=(pool[members], y_pool[members]),
        nonmember=(test[test_mask], y_test[test_mask]),
        target=(pool[data.forget], y_pool[data.forget]),
    )


def svc_mia_efficacy(
    member_features: np.ndarray, nonmember_features: np.ndarray, target_features: np.ndarray
) -> float:
    """SVC population attack (SalUn's MIA-Efficacy): fraction of targets predicted non-member."""
    x = np.concatenate([member_features, nonmember_features]).reshape(
        len(member_features) + len(nonmember_features), -1
    )
    y = np.concatenate([np.ones(len(member_features)), np.zeros(len(nonmember_features))])
    classifier = SVC(C=3, gamma="auto", kernel="rbf")
    classifier.fit(x, y)
    predicted = classifier.predict(np.asarray(target_features).reshape(len(target_features), -1))
    return float(1.0 - predicted.mean())


def mia_efficacy(
    feature_name: str,
    member: tuple[np.ndarray, np.ndarray],
    nonmember: tuple[np.ndarray, np.ndarray],
    target: tuple[np.ndarray, np.ndarray],
) -> float:
    """MIA-Efficacy from (logits, labels) pairs of members, non-members and targets."""
    return svc_mia_efficacy(
        feature(feature_name, *member), feature(feature_name, *nonmember), feature(feature_name, *target)
    )


def avg_gap(metrics: dict[str, float], reference: dict[str, float]) -> float:
    """Mean over UA, RA, TA and MIA of |metric - reference metric|."""
    return float(np.mean([abs(metrics[name] - reference[name]) for name in METRICS]))
