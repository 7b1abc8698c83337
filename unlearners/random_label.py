from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from audit.core.params import Epochs, LearningRate
from audit.core.registry import UNLEARNERS
from audit.core.contracts import Task
from unlearners.sgd import SGDUnlearner


def random_label_loss(num_classes: int, generator: torch.Generator):
    """Cross-entropy against labels drawn uniformly over all classes afresh for each batch."""

    def loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        labels = torch.randint(num_classes, y.shape, generator=generator).to(y.device)
        return F.cross_entropy(logits, labels)

    return loss


@UNLEARNERS.register("random_label")
@dataclass
class RandomLabel(SGDUnlearner):
    """RL: each epoch a pass over the forget set with random labels, then a pass over the retain set.

    Labels are uniform over all classes, drawn afresh for each batch (they may equal the
    true label); the two passes are applied one after the other, not summed.

    Defaults: the best of the grid epochs {1, 2, 3, 5} × lr {0.001, 0.002, 0.005, 0.01, 0.02}
    on the default digits example, by the mean Avg. Gap to retraining on held-out seeds
    (`benchmarks/tune_defaults.py`; 0.81 % there).
    CIFAR-10: 10 epochs, lr ≈ 0.013 (SalUn paper).
    """

    epochs: Epochs = 5
    lr: LearningRate = 0.001

    def unlearn(self, model: nn.Module, task: Task) -> nn.Module:
        forget_loss = random_label_loss(task.num_classes, task.generator)
        return self.train(model, task, (task.forget, forget_loss), (task.retain, F.cross_entropy))
