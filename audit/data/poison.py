"""The data a backdoor audit trains on: the forget set's owner planted a trigger in part of it.

The chosen forget points carry the trigger and the target label in the training pool of the
originals, and so in the forget set each unlearning method is asked to delete. Retrains
never see them (they train on the retain set), shadow models and observations use the clean
pool. The trigger takes the pool's brightest value, in training and in the queries alike.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from audit.core.contracts import Subset
from audit.data.datasets import AuditData
from audit.core.errors import SalunInputError
from audit.core.seeds import numpy_generator, torch_generator


def backdoor_positions(data: AuditData, fraction: float, target: int) -> np.ndarray:
    """The forget positions that get the trigger: `fraction` of those not already of `target`."""
    if target >= data.num_classes:
        raise SalunInputError(f"backdoor.target: {target} is not a class of {data.dataset} "
                              f"(0 to {data.num_classes - 1})")
    candidates = data.forget[data.pool.y[data.forget].numpy() != target]
    count = int(round(fraction * len(candidates)))
    if count == 0:
        raise SalunInputError(f"backdoor.fraction: {fraction} of {len(candidates)} forget points plants no trigger")
    return np.sort(numpy_generator("backdoor", data.digest).choice(candidates, count, replace=False))


def plant_trigger(x: torch.Tensor, size: int = 2, value: float | None = None) -> torch.Tensor:
    """A copy of the batch x (N, C, H, W) with a size x size bottom-right patch set to `value`
    in every channel; by default the batch's maximum, the brightest pixel whatever the
    standardisation. x itself is never changed."""
    if x.dim() != 4:
        raise ValueError(f"x must be an image batch (N, C, H, W), got shape {tuple(x.shape)}")
    height, width = x.shape[-2:]
    if not 1 <= size <= min(height, width):
        raise ValueError(f"size must be in [1, {min(height, width)}] for {height}x{width} images, got {size}")
    out = x.clone()
    if out.numel() == 0:
        return out
    out[..., height - size:, width - size:] = x.max().item() if value is None else value
    return out


def queries(x_test: torch.Tensor, y_test: torch.Tensor, target: int, n: int,
            generator: torch.Generator, size: int = 2, value: float | None = None) -> torch.Tensor:
    """n triggered query images: test images whose true label is not `target`, drawn without
    replacement with `generator` (all of them, shuffled, if fewer than n exist), with the
    trigger planted. The patch value defaults to x_test's maximum (pass the planting value to
    match the training trigger). Deterministic for a seeded generator."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    candidates = torch.nonzero(y_test != target).flatten()
    if len(candidates) == 0:
        raise ValueError(f"no test image has a label other than target={target}")
    chosen = candidates[torch.randperm(len(candidates), generator=generator)[:n]]
    fill = x_test.max().item() if value is None else value
    return plant_trigger(x_test[chosen], size=size, value=fill)


def trigger_value(data: AuditData) -> float:
    return float(data.pool.x.max())


_POISONED: dict[tuple, AuditData] = {}  # prepare_data keeps one AuditData per spec, so its id is stable


def poisoned(data: AuditData, fraction: float, target: int, size: int) -> AuditData:
    """`data` with the trigger planted in the chosen forget points, relabelled to `target`."""
    key = (id(data), fraction, target, size)
    if key not in _POISONED:
        positions = torch.from_numpy(backdoor_positions(data, fraction, target))
        x, y = data.pool.x.clone(), data.pool.y.clone()
        x[positions] = plant_trigger(x[positions], size, trigger_value(data))
        y[positions] = target
        _POISONED.clear()
        _POISONED[key] = dataclasses.replace(data, pool=Subset(x, y))
    return _POISONED[key]


def backdoor_queries(data: AuditData, target: int, n: int, size: int) -> torch.Tensor:
    """The n triggered test images every model is asked, the same for all of them."""
    return queries(data.test.x, data.test.y, target, n, torch_generator("backdoor queries", data.digest), size,
                   trigger_value(data))
