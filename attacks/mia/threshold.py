"""The population threshold attack: one signal, one global threshold for every example.

A score is sign x signal, the sign chosen so that higher means more likely member (members
have lower loss and entropy, higher confidence). Any threshold on the score is the attack;
the ROC sweeps all of them.
"""

from __future__ import annotations

import numpy as np

from audit.stats import signals
from audit.core.registry import ATTACKS

VERSION = "1"

SIGNS = {"loss": -1, "confidence": +1, "logit_scaled_confidence": +1, "entropy": -1, "modified_entropy": -1}


@ATTACKS.register("threshold")
def threshold_scores(signal: str, logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Population threshold attack on one signal: sign × signal, so higher means more likely member.

    logits (n, C), labels (n,) -> (n,)."""
    if signal not in SIGNS:
        raise ValueError(f"signal must be one of {sorted(SIGNS)}, not {signal!r}")
    return SIGNS[signal] * getattr(signals, signal)(logits, labels)
