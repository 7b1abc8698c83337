from __future__ import annotations

from dataclasses import dataclass

from torch import nn
from torch.nn import functional as F

from audit.core.params import Epochs, LearningRate
from audit.core.registry import UNLEARNERS
from audit.core.contracts import Task
from unlearners.sgd import SGDUnlearner


@UNLEARNERS.register("finetune")
@dataclass
class FineTune(SGDUnlearner):
    """FT: cross-entropy on the retain set only, so the forget set fades by catastrophic forgetting.

    Defaults: the best of the grid epochs {5, 10, 20} × lr {0.05, 0.1, 0.2, 0.4}
    on the default digits example, by the mean Avg. Gap to retraining on held-out seeds
    (`benchmarks/tune_defaults.py`; 1.02 % there).
    CIFAR-10: 10 epochs, lr 0.01 (SalUn paper).
    """

    epochs: Epochs = 20
    lr: LearningRate = 0.2

    def unlearn(self, model: nn.Module, task: Task) -> nn.Module:
        return self.train(model, task, (task.retain, F.cross_entropy))
