"""Settings and loop shared by the methods that fine-tune with SGD (FT, RL, GA, SalUn, ...)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn

from audit.core.contracts import Subset
from audit.core.params import BatchSize, Epochs, LearningRate, Momentum, WeightDecay
from audit.nn.training import LossFn, batches, endless_batches, make_optimizer, run_pass
from audit.core.contracts import Task, Unlearner


@dataclass
class SGDUnlearner(Unlearner):
    """Subclasses are dataclasses too and redeclare `epochs` and `lr` with their own defaults."""

    epochs: Epochs = 5
    lr: LearningRate = 0.01
    batch_size: BatchSize | None = None  # None: the original recipe's batch size
    momentum: Momentum = 0.9
    weight_decay: WeightDecay = 5e-4

    def optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        return make_optimizer(model.parameters(), "sgd", self.lr, self.momentum, self.weight_decay)

    def batch_size_for(self, task: Task) -> int:
        return self.batch_size or task.recipe.batch_size

    def batches(self, data: Subset, task: Task) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One shuffled, augmented pass over `data` in this method's batch size."""
        return batches(data, self.batch_size_for(task), task.generator, task.augment)

    def endless_batches(self, data: Subset, task: Task) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return endless_batches(data, self.batch_size_for(task), task.generator, task.augment)

    def run_epochs(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        task: Task,
        *passes: tuple[Subset, LossFn],
        after_step: Callable[[], None] | None = None,
        before_epoch: Callable[[int], None] | None = None,
    ) -> None:
        """`epochs` rounds of the given passes, in order, training `model` in place."""
        for epoch in range(self.epochs):
            if before_epoch is not None:
                before_epoch(epoch)
            for data, loss_fn in passes:
                run_pass(model, data, batch_size=self.batch_size_for(task), generator=task.generator,
                         optimizer=optimizer, loss_fn=loss_fn, after_step=after_step, augment=task.augment)

    def train(self, model: nn.Module, task: Task, *passes: tuple[Subset, LossFn]) -> nn.Module:
        """A copy of `model` after `epochs` rounds of the given passes, in order, one SGD optimiser."""
        model = self.copy(model)
        self.run_epochs(model, self.optimizer(model), task, *passes)
        return model
