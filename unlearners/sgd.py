"""Settings shared by the methods that fine-tune with SGD (FT, RL, GA, ...)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from audit.training import make_optimizer
from unlearners.base import Task, Unlearner


@dataclass
class SGDUnlearner(Unlearner):
    """Subclasses are dataclasses too and add at least `epochs` and `lr` with their own defaults."""

    batch_size: int | None = None  # None: the original recipe's batch size
    momentum: float = 0.9
    weight_decay: float = 5e-4

    def optimizer(self, model: nn.Module, lr: float) -> torch.optim.Optimizer:
        return make_optimizer(model.parameters(), "sgd", lr, self.momentum, self.weight_decay)

    def batch_size_for(self, task: Task) -> int:
        return self.batch_size or task.recipe.batch_size
