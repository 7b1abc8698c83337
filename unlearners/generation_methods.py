"""Unlearning a class of a class-conditional denoiser: the algorithms, over plain tensors.

- `salun_generation`: SalUn for diffusion: the weights salient for the forgetting loss (the
  global top `mask_ratio` of |∇θ| of the denoising loss on the forget images) are the only ones
  trained, on `unlearners.generation_losses.salun_generation_loss`; Adam leaves a weight whose
  gradient is always masked to zero exactly where it was.
- `dimum`: memorise alternative images for the forgotten condition, with the retain loss.
- `finetune_generation`: the plain denoising loss on retain data only.

Each returns a new model and leaves its input untouched; noise, timesteps and batches come
from the caller's generator.
"""

from __future__ import annotations

import copy
import itertools

import torch
from torch import nn

from audit.core.contracts import Subset
from audit.nn.ddpm import NoiseSchedule, denoising_loss
from audit.nn.training import descend, endless_batches
from unlearners.generation_losses import dimum_loss, salun_generation_loss
from unlearners.saliency import saliency_mask, summed_gradient


def forgetting_gradient(model: nn.Module, schedule: NoiseSchedule, forget: Subset, generator: torch.Generator,
                        batch_size: int = 256) -> dict[str, torch.Tensor]:
    """∇θ of the denoising loss over the forget set (one noise draw per image); `model` untouched."""
    return summed_gradient(model, (
        denoising_loss(model, schedule, forget.x[start:start + batch_size], forget.y[start:start + batch_size],
                       generator) * len(forget.x[start:start + batch_size]) / len(forget)
        for start in range(0, len(forget), batch_size)))


def _train(model: nn.Module, losses, lr: float, iterations: int) -> nn.Module:
    model.train()
    descend(itertools.islice(losses, iterations), torch.optim.Adam(model.parameters(), lr=lr))
    return model


def salun_generation(model: nn.Module, schedule: NoiseSchedule, forget: Subset, retain: Subset, generator: torch.Generator,
                     mask_ratio: float = 0.5, alpha: float = 1e-3, lr: float = 1e-4, iterations: int = 1000,
                     batch_size: int = 64) -> nn.Module:
    unlearned = copy.deepcopy(model)
    masks = saliency_mask(forgetting_gradient(unlearned, schedule, forget, generator), mask_ratio)
    params = dict(unlearned.named_parameters())
    handles = [params[name].register_hook(lambda g, keep=keep: g * keep) for name, keep in masks.items()]
    pairs = zip(endless_batches(forget, batch_size, generator), endless_batches(retain, batch_size, generator))
    try:
        return _train(unlearned, (salun_generation_loss(unlearned, schedule, f, r, alpha, generator) for f, r in pairs),
                      lr, iterations)
    finally:
        for handle in handles:
            handle.remove()


def dimum(model: nn.Module, schedule: NoiseSchedule, forgotten: int, alternative: torch.Tensor, retain: Subset,
          generator: torch.Generator, lr: float = 1e-4, iterations: int = 1000, batch_size: int = 64) -> nn.Module:
    """`alternative`: the images condition `forgotten` should produce from now on."""
    unlearned = copy.deepcopy(model)
    memorise = Subset(alternative, torch.full((len(alternative),), forgotten, dtype=torch.long,
                                              device=alternative.device))
    pairs = zip(endless_batches(memorise, batch_size, generator), endless_batches(retain, batch_size, generator))
    return _train(unlearned, (dimum_loss(unlearned, schedule, a, c, r, generator) for (a, c), r in pairs),
                  lr, iterations)


def finetune_generation(model: nn.Module, schedule: NoiseSchedule, retain: Subset, generator: torch.Generator,
                        lr: float = 1e-4, iterations: int = 1000, batch_size: int = 64) -> nn.Module:
    unlearned = copy.deepcopy(model)
    return _train(unlearned, (denoising_loss(unlearned, schedule, x, y, generator)
                              for x, y in endless_batches(retain, batch_size, generator)), lr, iterations)
