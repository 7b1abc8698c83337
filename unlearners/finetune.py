from __future__ import annotations

from dataclasses import dataclass

from torch import nn
from torch.nn import functional as F

from audit.registry import UNLEARNERS
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
        return self.train(model, task, (task.retain, F.cross_entropy))
