from __future__ import annotations

from torch import nn

from audit.core.registry import UNLEARNERS
from audit.nn.training import fit
from audit.core.contracts import Task, Unlearner


@UNLEARNERS.register("retrain")
class Retrain(Unlearner):
    """Control and gold standard: trains from a fresh init on the retain set with the original recipe.

    Its seed is independent of the reference retrain population, so it measures how far
    two retrained models lie apart; an audit must PASS it.
    """

    def unlearn(self, model: nn.Module, task: Task) -> nn.Module:
        fresh = task.build_model(task.generator)
        fit(fresh, task.retain, task.recipe, task.generator, task.augment)
        return fresh
