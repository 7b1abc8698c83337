from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from audit.core.params import Epochs, LearningRate
from audit.core.registry import UNLEARNERS
from audit.core.contracts import Tags, Task
from unlearners.sgd import SGDUnlearner


def negative_cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return -F.cross_entropy(logits, y)


@UNLEARNERS.register("grad_ascent")
@dataclass
class GradientAscent(SGDUnlearner):
    """GA: maximises the cross-entropy on the forget set (loss = -CE), without retain data.

    Needs a small learning rate and few epochs, or it destroys the model.

    Defaults: the best of the grid epochs {2, 5, 10, 20} ×
    lr {1e-4, 5e-4, 0.001, 0.002, 0.005, 0.01, 0.02}
    on the default digits example, by the mean Avg. Gap to retraining on held-out seeds
    (`benchmarks/tune_defaults.py`; 1.17 % there).
    CIFAR-10: lr ≈ 1e-4 to 1e-3, few epochs (SalUn paper).
    """

    tags: ClassVar[Tags] = Tags(needs_retain=False)

    epochs: Epochs = 10
    lr: LearningRate = 0.01

    def unlearn(self, model: nn.Module, task: Task) -> nn.Module:
        return self.train(model, task, (task.forget, negative_cross_entropy))
