"""Settings and loop shared by the methods that fine-tune with SGD (FT, RL, GA, ...)."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from audit.data import Subset
from audit.training import LossFn, make_optimizer, run_pass
from unlearners.base import Task, Unlearner


@dataclass
class SGDUnlearner(Unlearner):
    """Subclasses are dataclasses too and redeclare `epochs` and `lr` with their own defaults."""

    epochs: int = 5
    lr: float = 0.01
    batch_size: int | None = None  # None: the original recipe's batch size
    momentum: float = 0.9
    weight_decay: float = 5e-4

    def train(self, model: nn.Module, task: Task, *passes: tuple[Subset, LossFn]) -> nn.Module:
        """A copy of `model` after `epochs` rounds of the given passes, in order, one SGD optimiser."""
        model = self.copy(model)
        optimizer = make_optimizer(model.parameters(), "sgd", self.lr, self.momentum, self.weight_decay)
        for _ in range(self.epochs):
            for data, loss_fn in passes:
                run_pass(model, data, batch_size=self.batch_size or task.recipe.batch_size,
                         generator=task.generator, optimizer=optimizer, loss_fn=loss_fn,
                         augment=task.augment)
        return model

