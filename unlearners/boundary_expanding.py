from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from audit.core.contracts import Subset
from audit.core.errors import SalunInputError
from audit.core.params import Epochs, LearningRate
from audit.core.registry import UNLEARNERS
from audit.core.contracts import Tags, Task
from unlearners.sgd import SGDUnlearner


def output_layer(model: nn.Module) -> nn.Linear:
    head = getattr(model, "head", None)
    if not isinstance(head, nn.Linear):
        raise SalunInputError(
            f"boundary_expanding: the model {type(model).__name__} needs its output layer as an "
            "nn.Linear attribute named `head` (as salun's Classifier models have)")
    return head


def widened(head: nn.Linear, generator: torch.Generator) -> nn.Linear:
    """`head` with one more output, its weights drawn like nn.Linear's default initialisation."""
    wide = nn.Linear(head.in_features, head.out_features + 1, device=head.weight.device, dtype=head.weight.dtype)
    bound = 1 / math.sqrt(head.in_features)
    with torch.no_grad():
        wide.weight[:-1] = head.weight
        wide.bias[:-1] = head.bias
        extra = torch.rand(head.in_features + 1, generator=generator) * 2 * bound - bound
        wide.weight[-1] = extra[:-1].to(wide.weight)
        wide.bias[-1] = extra[-1].to(wide.bias)
    return wide


def narrowed(head: nn.Linear, outputs: int) -> nn.Linear:
    """`head` with only its first `outputs` outputs."""
    narrow = nn.Linear(head.in_features, outputs, device=head.weight.device, dtype=head.weight.dtype)
    with torch.no_grad():
        narrow.weight.copy_(head.weight[:outputs])
        narrow.bias.copy_(head.bias[:outputs])
    return narrow


@UNLEARNERS.register("boundary_expanding")
@dataclass
class BoundaryExpanding(SGDUnlearner):
    """Boundary Expanding (Chen et al., CVPR 2023): train the forget set into an extra output, then remove it.

    A (K+1)-th "shadow" output is added, the whole model is trained to send the forget set
    to it, and the output is removed again.

    Defaults: the best of the grid epochs {1, 2, 5, 10} × lr {1e-5, 1e-4, 5e-4, 1e-3, 5e-3}
    on the default digits example, by the mean Avg. Gap to retraining on held-out seeds
    (`benchmarks/tune_defaults.py`; 1.69 % there).
    CIFAR-10: lr ≈ 1e-5, 10 epochs (paper).
    """

    tags: ClassVar[Tags] = Tags(needs_retain=False)

    epochs: Epochs = 5
    lr: LearningRate = 0.0005

    def unlearn(self, model: nn.Module, task: Task) -> nn.Module:
        head = output_layer(model)
        model = self.copy(model)
        model.head = widened(head, task.generator)
        shadow = Subset(task.forget.x, torch.full_like(task.forget.y, head.out_features))
        self.run_epochs(model, self.optimizer(model), task, (shadow, F.cross_entropy))
        model.head = narrowed(model.head, head.out_features)
        return model

    def verify(self, original: nn.Module, unlearned: nn.Module, task: Task) -> list[str]:
        before, after = output_layer(original), output_layer(unlearned)
        if after.out_features != before.out_features:
            return [f"the shadow output is still there: {after.out_features} outputs, expected {before.out_features}"]
        return []
