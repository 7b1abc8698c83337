"""Unlearners for class-conditional generators (`modality = "generation"`), registered in
GENERATION_UNLEARNERS: the same contract as the classifiers' methods, over a denoiser.

The task's forget set holds the forgotten class's images with their labels, the retain set the
others; `task.schedule` is the generator's noise schedule and `task.recipe` its training recipe
(epochs, lr, batch_size, p_uncond). The algorithms live in `unlearners.generation_methods`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from audit.nn.ddpm import train_denoiser
from audit.core.params import BatchSize, LearningRate, Probability, Steps, Weight
from audit.core.registry import GENERATION_UNLEARNERS
from audit.core.contracts import Tags, Task, Unlearner
from unlearners.generation_losses import fixed_pattern
from unlearners.generation_methods import dimum, finetune_generation, forgetting_gradient, salun_generation
from unlearners.saliency import saliency_mask

GENERATION = Tags(modality="generation")


@GENERATION_UNLEARNERS.register("identity")
@dataclass
class GenerationIdentity(Unlearner):
    """Control: returns the original generator unchanged; an audit must fail it."""

    tags = Tags(modality="generation", needs_retain=False, modifies_weights=False)

    def unlearn(self, model: nn.Module, task: Task) -> nn.Module:
        return self.copy(model)


@GENERATION_UNLEARNERS.register("retrain")
@dataclass
class GenerationRetrain(Unlearner):
    """Control and gold standard: a fresh generator trained on the retain set with the recipe."""

    tags = GENERATION

    def unlearn(self, model: nn.Module, task: Task) -> nn.Module:
        fresh = task.build_model(task.generator)
        r = task.recipe
        train_denoiser(fresh, task.retain, task.schedule, r.epochs, r.lr, r.batch_size, task.generator, r.p_uncond)
        return fresh


@GENERATION_UNLEARNERS.register("finetune")
@dataclass
class GenerationFineTune(Unlearner):
    """The plain denoising loss on retain data only."""

    tags = GENERATION
    iterations: Steps = 1000
    lr: LearningRate = 1e-4
    batch_size: BatchSize = 64

    def unlearn(self, model: nn.Module, task: Task) -> nn.Module:
        return finetune_generation(model, task.schedule, task.retain, task.generator, self.lr, self.iterations,
                                   self.batch_size)


@GENERATION_UNLEARNERS.register("salun")
@dataclass
class GenerationSalUn(Unlearner):
    """SalUn for diffusion: only the salient weights learn ‖ε(x_t|c) − sg ε(x_t|c′)‖² on the
    forget images, c′ = (c + 1) mod K, plus α · the denoising loss on retain data (the paper:
    α = 1e-3, Adam lr 1e-4, about 1,000 iterations, mask ratio 0.5)."""

    tags = GENERATION
    mask_ratio: Probability = 0.5
    alpha: Weight = 1e-3
    lr: LearningRate = 1e-4
    iterations: Steps = 1000
    batch_size: BatchSize = 64

    def unlearn(self, model: nn.Module, task: Task) -> nn.Module:
        return salun_generation(model, task.schedule, task.forget, task.retain, task.generator, self.mask_ratio,
                                self.alpha, self.lr, self.iterations, self.batch_size)

    def verify(self, original: nn.Module, unlearned: nn.Module, task: Task) -> list[str]:
        """Every weight outside the mask is bit-identical to the original's."""
        generator = torch.Generator().manual_seed(task.generator.initial_seed())
        masks = saliency_mask(forgetting_gradient(original, task.schedule, task.forget, generator), self.mask_ratio)
        after = dict(unlearned.named_parameters())
        return [f"{name}: a weight outside the saliency mask moved"
                for name, p in original.named_parameters() if not torch.equal(p[~masks[name]], after[name][~masks[name]])]


@GENERATION_UNLEARNERS.register("dimum")
@dataclass
class DiMUM(Unlearner):
    """DiMUM: the forgotten condition memorises alternative images, with the retain loss.
    `alternative`: "class:<k>" (the retain set's images of class k) or "pattern" (one
    constant image at the data's mean)."""

    tags = GENERATION
    alternative: str = "pattern"
    lr: LearningRate = 1e-4
    iterations: Steps = 1000
    batch_size: BatchSize = 64

    def __post_init__(self) -> None:
        if self.alternative != "pattern" and not (self.alternative.startswith("class:")
                                                  and self.alternative[6:].isdigit()):
            raise ValueError(f'alternative must be "pattern" or "class:<k>", got {self.alternative!r}')

    def _images(self, task: Task) -> torch.Tensor:
        if self.alternative == "pattern":
            return fixed_pattern(tuple(task.forget.x.shape)).to(task.forget.x.device)
        k = int(self.alternative[6:])
        images = task.retain.x[task.retain.y == k]
        if len(images) == 0:
            raise ValueError(f"alternative {self.alternative!r}: the retain set has no image of class {k}")
        return images

    def unlearn(self, model: nn.Module, task: Task) -> nn.Module:
        forgotten = int(task.forget.y[0])
        return dimum(model, task.schedule, forgotten, self._images(task), task.retain, task.generator,
                     self.lr, self.iterations, self.batch_size)
