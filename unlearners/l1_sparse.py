from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from audit.core.params import Epochs, LearningRate, Weight
from audit.core.registry import UNLEARNERS
from audit.core.contracts import Task
from unlearners.sgd import SGDUnlearner


def l1_norm(model: nn.Module) -> torch.Tensor:
    return sum(p.abs().sum() for p in model.parameters())


@UNLEARNERS.register("l1_sparse")
@dataclass
class L1Sparse(SGDUnlearner):
    """ℓ1-sparse (Jia et al., 2023): fine-tuning on the retain set with a decaying ℓ1 penalty.

    From "Model sparsity can simplify machine unlearning": fine-tuning on D_r with loss CE + α_t‖θ‖₁, α_t = α·(1 − epoch/epochs), decaying linearly to 0.

    Defaults: the best of the grid epochs {5, 10, 20} × lr {0.01, 0.02, 0.05, 0.1} × α {5e-4, 1e-3, 2e-3, 5e-3}
    on the default digits example, by the mean Avg. Gap to retraining on held-out seeds
    (`benchmarks/tune_defaults.py`; 0.42 % there).
    CIFAR-10: 10 epochs, lr 0.01, α ≈ 5e-5 to 1e-4 (paper).
    """

    epochs: Epochs = 20
    lr: LearningRate = 0.01
    alpha: Weight = 0.002

    def unlearn(self, model: nn.Module, task: Task) -> nn.Module:
        model = self.copy(model)
        weight = [0.0]

        def set_weight(epoch: int) -> None:
            weight[0] = self.alpha * (1 - epoch / self.epochs)

        def loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return F.cross_entropy(logits, y) + weight[0] * l1_norm(model)

        self.run_epochs(model, self.optimizer(model), task, (task.retain, loss), before_epoch=set_weight)
        return model
