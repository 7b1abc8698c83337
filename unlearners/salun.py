"""SalUn (Fan et al., ICLR 2024): random labelling restricted to the salient weights."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from torch import nn
from torch.nn import functional as F

from audit.core.params import Epochs, LearningRate, Probability
from audit.core.registry import UNLEARNERS
from audit.core.contracts import Tags, Task
from unlearners.random_label import random_label_loss
from unlearners.saliency import forget_gradient, saliency_mask
from unlearners.sgd import SGDUnlearner


@UNLEARNERS.register("salun")
@dataclass
class SalUn(SGDUnlearner):
    """SalUn: random labelling (forget pass, then retain pass, each epoch) on the salient weights only.

    The mask is the global top `mask_ratio` of |∇θ −CE(D_f)| at θ_o (`unlearners.saliency`);
    in an audit that gradient is computed once per original model and cached in the store.
    `mask_semantics`: "hard" (default) restores every non-salient weight to θ_o and zeroes its
    momentum after each step, so it stays bit-identical to θ_o; "gradient_only" only masks
    the gradient, as in the original paper, so weight decay still moves those weights.

    Defaults: the best of the grid epochs {1, 2, 3, 5} × lr {0.001, 0.002, 0.005, 0.01, 0.02}, mask_ratio 0.5
    on the default digits example, by the mean Avg. Gap to retraining on held-out seeds
    (`benchmarks/tune_defaults.py`; 0.45 % there).
    CIFAR-10: 10 epochs, lr ≈ 0.013, mask_ratio 0.5, SGD momentum 0.9, weight decay 5e-4 (paper).
    """

    tags: ClassVar[Tags] = Tags(needs_saliency=True)

    epochs: Epochs = 3
    lr: LearningRate = 0.002
    mask_ratio: Probability = 0.5
    mask_semantics: Literal["hard", "gradient_only"] = "hard"

    def __post_init__(self) -> None:
        if not 0.0 <= self.mask_ratio <= 1.0:
            raise ValueError(f"mask_ratio must lie in [0, 1], got {self.mask_ratio}")
        if self.mask_semantics not in ("hard", "gradient_only"):
            raise ValueError(f"mask_semantics must be 'hard' or 'gradient_only', got {self.mask_semantics!r}")

    def mask(self, model: nn.Module, task: Task) -> dict[str, torch.Tensor]:
        gradient = task.saliency or forget_gradient(model, task.forget)
        return saliency_mask(gradient, self.mask_ratio)

    def unlearn(self, model: nn.Module, task: Task) -> nn.Module:
        masks = self.mask(model, task)
        model = self.copy(model)
        optimizer = self.optimizer(model)
        params = dict(model.named_parameters())
        handles = [params[name].register_hook(lambda g, keep=keep: g * keep) for name, keep in masks.items()]
        after_step = self._restore(params, masks, optimizer) if self.mask_semantics == "hard" else None
        try:
            self.run_epochs(model, optimizer, task,
                            (task.forget, random_label_loss(task.num_classes, task.generator)),
                            (task.retain, F.cross_entropy), after_step=after_step)
        finally:
            for handle in handles:
                handle.remove()
        return model

    @staticmethod
    def _restore(params: dict[str, nn.Parameter], masks: dict[str, torch.Tensor],
                 optimizer: torch.optim.Optimizer) -> Callable[[], None]:
        originals = {name: params[name].detach().clone() for name in masks}

        def restore() -> None:
            with torch.no_grad():
                for name, keep in masks.items():
                    param = params[name]
                    param.copy_(torch.where(keep, param, originals[name]))
                    buffer = optimizer.state.get(param, {}).get("momentum_buffer")
                    if buffer is not None:
                        buffer.mul_(keep)

        return restore

    def verify(self, original: nn.Module, unlearned: nn.Module, task: Task) -> list[str]:
        if self.mask_semantics != "hard":
            return []
        masks = self.mask(original, task)
        before, after = dict(original.named_parameters()), dict(unlearned.named_parameters())
        return [f"{name}: {int((~keep & (before[name] != after[name])).sum())} non-salient weights moved"
                for name, keep in masks.items() if bool((~keep & (before[name] != after[name])).any())]
