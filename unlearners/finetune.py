from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from audit.registry import UNLEARNERS
from audit.training import run_pass
from unlearners.base import Task
from unlearners.sgd import SGDUnlearner


@UNLEARNERS.register("finetune")
@dataclass
class FineTune(SGDUnlearner):
    """FT: cross-entropy on the retain set only, so the forget set fades by catastrophic forgetting.

    Defaults suit the default digits example; the SalUn paper's CIFAR-10 setting is 10 epochs, lr 0.01.
    """

    epochs: int = 10
    lr: float = 0.1

    def unlearn(self, model: nn.Module, task: Task) -> nn.Module:
        model = self.copy(model)
        optimizer = self.optimizer(model, self.lr)
        for _ in range(self.epochs):
            run_pass(model, task.retain, batch_size=self.batch_size_for(task),
                     generator=task.generator, optimizer=optimizer)
        return model
