"""`example_logit_margin`: a population membership-inference attack on the logit margin."""

from __future__ import annotations

import numpy as np

from audit.api import MembershipAttack, ShadowLogits


class LogitMargin(MembershipAttack):
    """The top logit minus the runner-up: a model is more sure of the examples it trained on."""

    version = "1"
    needs_shadows = False

    def scores(self, logits: np.ndarray, labels: np.ndarray, shadows: ShadowLogits | None) -> np.ndarray:
        """(models, examples, classes) -> (models, examples); the labels are not needed."""
        top_two = np.sort(logits, axis=-1)[..., -2:]
        return top_two[..., 1] - top_two[..., 0]
