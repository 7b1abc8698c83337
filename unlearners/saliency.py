"""Weight saliency (SalUn): which weights matter most for the forget set.

The saliency of a weight is |g| with g = ∇θ[−CE(θ; D_f)] at θ_o, the model in eval mode,
CE averaged over the whole forget set (accumulated in batches, each weighted by its size, so
g does not depend on the batch size; the public code sums per-batch means, which ranks the
weights the same up to the weight of a last, smaller batch); the mask is 1 on the global top `ratio` of all parameters (every
layer, biases and norm parameters included), 0 elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from torch.nn import functional as F

from audit.core.contracts import Subset


def summed_gradient(model: nn.Module, losses: Iterable[torch.Tensor]) -> dict[str, torch.Tensor]:
    """Σ ∇θ over the losses the iterable yields (each computed lazily), per named parameter."""
    names, params = zip(*[(n, p) for n, p in model.named_parameters() if p.requires_grad])
    total = [torch.zeros_like(p) for p in params]
    for loss in losses:
        for accumulated, grad in zip(total, torch.autograd.grad(loss, params)):
            accumulated += grad
    return dict(zip(names, total))


def forget_gradient(model: nn.Module, forget: Subset, batch_size: int = 256) -> dict[str, torch.Tensor]:
    """g per named parameter, accumulated over the forget set in its stored order; `model` is untouched."""
    was_training = model.training
    model.eval()
    try:
        return summed_gradient(model, (
            -F.cross_entropy(model(forget.x[start:start + batch_size]), forget.y[start:start + batch_size],
                             reduction="sum") / len(forget)
            for start in range(0, len(forget), batch_size)))
    finally:
        model.train(was_training)


def saliency_mask(gradient: dict[str, torch.Tensor], ratio: float) -> dict[str, torch.Tensor]:
    """Boolean masks, True on exactly round(ratio · #parameters) entries of largest |g| overall.

    Entries tied at the threshold go to the earlier ones in the gradient's order: `topk` picks
    among ties arbitrarily, so the same gradient gave other masks, and other models, on other runs."""
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"mask_ratio must lie in [0, 1], got {ratio}")
    flat = torch.cat([g.detach().abs().flatten() for g in gradient.values()])
    keep = round(ratio * flat.numel())
    chosen = torch.zeros(flat.numel(), dtype=torch.bool, device=flat.device)
    if keep >= flat.numel():
        chosen[:] = True
    elif keep > 0:
        chosen[torch.sort(flat, descending=True, stable=True).indices[:keep]] = True
    masks, start = {}, 0
    for name, g in gradient.items():
        masks[name] = chosen[start : start + g.numel()].view_as(g)
        start += g.numel()
    return masks
