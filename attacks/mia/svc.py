"""The SVC membership-inference attack behind SalUn's MIA-Efficacy.

One RBF SVC (C = 3, gamma = "auto") is fitted on one feature of the model's outputs for
members (label 1) and non-members (label 0); MIA-Efficacy is the fraction of the target
points (the forget set) that it predicts as non-members.
"""

from __future__ import annotations

import numpy as np
from sklearn.svm import SVC

from audit.stats.signals import feature
from audit.core.registry import ATTACKS


@ATTACKS.register("svc")
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
