from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from audit.core.params import Epochs, LearningRate, Probability
from audit.core.registry import UNLEARNERS
from audit.nn.training import steps_per_pass
from audit.core.contracts import Task
from unlearners.random_label import random_label_loss
from unlearners.sgd import SGDUnlearner


def soft_threshold_toward(params: list[nn.Parameter], anchors: list[torch.Tensor], count: int) -> None:
    """Global soft-thresholding of θ − θ_init: τ is the `count`-th smallest |θ − θ_init| over all
    parameters; entries within τ return to θ_init, the others move τ toward it."""
    if count <= 0:
        return
    with torch.no_grad():
        deltas = [p - a for p, a in zip(params, anchors)]
        flat = torch.cat([d.abs().flatten() for d in deltas])
        tau = torch.kthvalue(flat, min(count, flat.numel())).values
        for param, anchor, delta in zip(params, anchors, deltas):
            param.copy_(anchor + delta.sign() * (delta.abs() - tau).clamp_min(0))


@UNLEARNERS.register("salun_soft")
@dataclass
class SalUnSoft(SGDUnlearner):
    """SalUn-soft: random labelling with a global soft-threshold toward θ_o after each step.

    No hard mask; after each step a global soft-threshold of θ − θ_o with k = mask_ratio · (remaining fraction of training) · #params.

    Defaults: the best of the grid epochs {1, 2, 3, 5} × lr {0.001, 0.002, 0.005, 0.01, 0.02}, mask_ratio 0.5
    on the default digits example, by the mean Avg. Gap to retraining on held-out seeds
    (`benchmarks/tune_defaults.py`; 0.78 % there).
    CIFAR-10: as SalUn: 10 epochs, lr ≈ 0.013, mask_ratio 0.5.
    """

    epochs: Epochs = 1
    lr: LearningRate = 0.005
    mask_ratio: Probability = 0.5

    def unlearn(self, model: nn.Module, task: Task) -> nn.Module:
        model = self.copy(model)
        optimizer = self.optimizer(model)
        batch = self.batch_size_for(task)
        total = self.epochs * (steps_per_pass(len(task.forget), batch) + steps_per_pass(len(task.retain), batch))
        self.run_epochs(model, optimizer, task,
                        (task.forget, random_label_loss(task.num_classes, task.generator)),
                        (task.retain, F.cross_entropy), after_step=self._thresholder(model, total))
        return model

    def _thresholder(self, model: nn.Module, total_steps: int) -> Callable[[], None]:
        params = list(model.parameters())
        anchors = [p.detach().clone() for p in params]
        numel = sum(p.numel() for p in params)
        taken = 0

        def after_step() -> None:
            nonlocal taken
            taken += 1
            remaining = max(0.0, 1.0 - taken / total_steps)
            soft_threshold_toward(params, anchors, int(self.mask_ratio * remaining * numel))

        return after_step
