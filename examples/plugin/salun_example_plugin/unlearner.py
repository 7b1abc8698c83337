"""`example_finetune_last_layer`: fine-tunes only the classifier head on the retain set."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from audit.api import SGDUnlearner, Task, make_optimizer


@dataclass
class FinetuneLastLayer(SGDUnlearner):
    """Fine-tunes only the classifier head (cross-entropy, SGD) on the retain set; features stay."""

    epochs: int = 5
    lr: float = 0.05

    def optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        return make_optimizer(model.head.parameters(), "sgd", self.lr, self.momentum, self.weight_decay)

    def unlearn(self, model: nn.Module, task: Task) -> nn.Module:
        model = self.copy(model)
        model.requires_grad_(False)
        model.head.requires_grad_(True)
        self.run_epochs(model, self.optimizer(model), task, (task.retain, F.cross_entropy))
        return model.requires_grad_(True)

    def verify(self, original: nn.Module, unlearned: nn.Module, task: Task) -> list[str]:
        after = unlearned.state_dict()
        changed = [name for name, weights in original.state_dict().items()
                   if not name.startswith("head.") and not torch.equal(weights, after[name])]
        return [f"changed weights outside the head: {', '.join(changed)}"] if changed else []
