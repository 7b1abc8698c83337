"""The SVC membership-inference attack behind SalUn's MIA-Efficacy.

One RBF SVC (C = 3, gamma = "auto") is fitted on one feature of the model's outputs for
members (label 1) and non-members (label 0); MIA-Efficacy is the fraction of the target
points (the forget set) that it predicts as non-members. The standard metrics table reports
it, so the computation lives with the metrics (`audit.tasks.classification.metrics`).
"""

from __future__ import annotations

from audit.core.registry import ATTACKS
from audit.tasks.classification.metrics import mia_efficacy, svc_mia_efficacy

ATTACKS.register("svc")(svc_mia_efficacy)

__all__ = ["mia_efficacy", "svc_mia_efficacy"]
