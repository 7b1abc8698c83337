from __future__ import annotations

from dataclasses import dataclass

from torch import nn
from torch.nn import functional as F

from audit.core.params import Epochs, LearningRate, Probability
from audit.core.registry import UNLEARNERS
from audit.nn.training import descend
from audit.core.contracts import Task
from unlearners.sgd import SGDUnlearner


@UNLEARNERS.register("neggrad_plus")
@dataclass
class NegGradPlus(SGDUnlearner):
    """NegGrad+ (Kurmanji et al., 2023): one loss α·CE(D_r) − (1 − α)·CE(D_f).

    Each step pairs a retain batch with a forget batch; an epoch is one pass over the retain
    set, the forget set cycling alongside.

    Defaults: the best of the grid epochs {2, 5, 10} ×
    lr {0.001, 0.01, 0.05, 0.1} × α {0.8, 0.9, 0.95, 0.99, 0.999}
    on the default digits example, by the mean Avg. Gap to retraining on held-out seeds
    (`benchmarks/tune_defaults.py`; 0.62 % there).
    CIFAR-10: α = 0.999, lr 0.01, 5 epochs (SCRUB paper's setting).
    """

    epochs: Epochs = 10
    lr: LearningRate = 0.05
    alpha: Probability = 0.95

    def unlearn(self, model: nn.Module, task: Task) -> nn.Module:
        model = self.copy(model)
        optimizer = self.optimizer(model)
        model.train()
        forget = self.endless_batches(task.forget, task)
        for _ in range(self.epochs):
            losses = (self.alpha * F.cross_entropy(model(x_r), y_r)
                      - (1 - self.alpha) * F.cross_entropy(model(x_f), y_f)
                      for (x_r, y_r), (x_f, y_f) in zip(self.batches(task.retain, task), forget))
            descend(losses, optimizer)
        return model
