"""Retrain equivalence compares each method's model with the retrain of the same seed."""

from __future__ import annotations

import numpy as np
import pytest

from audit.stats.equivalence import method_equivalence
from audit.tasks.classification.results import paired_by_seed


class Usable:
    """The part of StoredObservations that says which models have a usable observation."""

    def __init__(self, failed: set[str]):
        self.failed = failed

    def usable(self, keys):
        return [key for key in keys if key not in self.failed]


RETRAINS = ["r0", "r1", "r2", "r3"]
METHOD = ["u0", "u1", "u2", "u3"]


def test_a_seed_that_diverged_drops_its_own_retrain_not_the_last():
    assert paired_by_seed(Usable({"u1"}), METHOD, RETRAINS) == (["u0", "u2", "u3"], ["r0", "r2", "r3"])


def test_a_failed_retrain_drops_the_method_model_of_its_seed():
    assert paired_by_seed(Usable({"r2"}), METHOD, RETRAINS) == (["u0", "u1", "u3"], ["r0", "r1", "r3"])


def test_an_outside_checkpoint_is_compared_with_every_usable_retrain():
    assert paired_by_seed(Usable({"r0"}), ["subject"], RETRAINS) == (["subject"], ["r1", "r2", "r3"])


def test_unpaired_populations_are_refused_rather_than_truncated():
    phi = np.zeros((3, 5))
    with pytest.raises(ValueError, match="pair them by seed"):
        method_equivalence(phi, np.zeros((4, 5)), {}, {}, None)
