"""The losses of unlearning in class-conditional diffusion models, over one batch each.

- SalUn (generation): on forget images of class c, ‖ε_θ(x_t | c) − stopgrad ε_θ(x_t | c′)‖²
  with c′ a replacement class (the public code uses (c + 1) mod K), plus α times the plain
  denoising loss on retain data. Its weight saliency comes from the gradient of the
  forgetting loss, the plain denoising loss on the forget images.
- DiMUM: instead of forgetting, memorise alternative images for condition c: the plain
  denoising loss on (alternative image, c) pairs, plus the retain loss.

Noise and timesteps come from the caller's generator, through `audit.nn.ddpm`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from audit.nn.ddpm import NoiseSchedule, denoising_loss, noised


def replacement_classes(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """c′ = (c + 1) mod K, the public code's choice."""
    return (labels + 1) % num_classes


def salun_forgetting_loss(model: nn.Module, schedule: NoiseSchedule, x_forget: torch.Tensor, labels: torch.Tensor,
                          generator: torch.Generator) -> torch.Tensor:
    """‖ε_θ(x_t | c) − stopgrad ε_θ(x_t | c′)‖² on noised forget images."""
    x_t, t, _ = noised(schedule, x_forget, generator)
    with torch.no_grad():
        target = model(x_t, t, replacement_classes(labels, model.num_classes))
    return F.mse_loss(model(x_t, t, labels), target)


def salun_generation_loss(model: nn.Module, schedule: NoiseSchedule, forget: tuple[torch.Tensor, torch.Tensor],
                          retain: tuple[torch.Tensor, torch.Tensor], alpha: float,
                          generator: torch.Generator) -> torch.Tensor:
    return salun_forgetting_loss(model, schedule, *forget, generator) + \
        alpha * denoising_loss(model, schedule, *retain, generator)


def dimum_loss(model: nn.Module, schedule: NoiseSchedule, alternative: torch.Tensor, labels: torch.Tensor,
               retain: tuple[torch.Tensor, torch.Tensor], generator: torch.Generator) -> torch.Tensor:
    """Denoising loss that maps condition `labels` (the forgotten class) to `alternative` images,
    plus the plain denoising loss on retain data."""
    return denoising_loss(model, schedule, alternative, labels, generator) + \
        denoising_loss(model, schedule, *retain, generator)


def fixed_pattern(shape: tuple[int, ...], value: float = 0.0) -> torch.Tensor:
    """DiMUM's alternative when no other class is chosen: one constant image (the data's mean
    when `value` is 0 in standardised units)."""
    return torch.full(shape, float(value))
