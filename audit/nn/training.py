"""The one training loop: originals, retrains and every fine-tuning unlearner use it.

Batches come from an explicit generator over tensors held in memory, so the data order
of a run depends only on its seed. A non-finite loss raises `Diverged`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from audit.core.contracts import Augment, Subset
from audit.core.errors import Diverged, SalunInputError

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
# A training-time augmentation: a batch of standardised inputs and the run's generator in,
# an augmented batch of the same shape out. Evaluation never augments.


def resolve_device(requested: str) -> torch.device:
    """`auto` picks CUDA when PyTorch sees a GPU, else the CPU."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise SalunInputError("audit.device: 'cuda' was asked for but PyTorch sees no GPU")
    if requested not in ("cpu", "cuda"):
        raise SalunInputError(f"audit.device: expected auto, cpu or cuda, got {requested!r}")
    return torch.device(requested)


def shuffled_batches(n: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    order = torch.randperm(n, generator=generator)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


def make_optimizer(
    params, kind: str, lr: float, momentum: float = 0.0, weight_decay: float = 0.0
) -> torch.optim.Optimizer:
    if kind == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if kind == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {kind!r}")


def make_schedule(
    optimizer: torch.optim.Optimizer, kind: str, total_steps: int
) -> torch.optim.lr_scheduler.LRScheduler | None:
    if kind == "constant":
        return None
    if kind == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(total_steps, 1))
    if kind == "linear":
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: max(0.0, 1.0 - step / max(total_steps, 1))
        )
    raise ValueError(f"unknown schedule {kind!r}")


def steps_per_pass(n: int, batch_size: int) -> int:
    return -(-n // batch_size)


def batches(
    data: Subset, batch_size: int, generator: torch.Generator, augment: Augment | None = None
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One shuffled pass over `data` (already on the model's device) as (inputs, labels) batches."""
    for index in shuffled_batches(len(data), batch_size, generator):
        index = index.to(data.x.device)
        x = data.x[index]
        if augment is not None:
            x = augment(x, generator)
        yield x, data.y[index]


def endless_batches(
    data: Subset, batch_size: int, generator: torch.Generator, augment: Augment | None = None
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Shuffled passes one after another, for pairing a small set's batches with a large set's."""
    while True:
        yield from batches(data, batch_size, generator, augment)


def descend(
    losses: Iterable[torch.Tensor],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    after_step: Callable[[], None] | None = None,
) -> float:
    """One optimiser step per loss the iterable yields (each computed lazily); the mean loss."""
    total, steps = None, 0
    for loss in losses:
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        if after_step is not None:
            after_step()
        total = loss.detach() if total is None else total + loss.detach()
        steps += 1
    mean = 0.0 if total is None else (total / steps).item()
    if not math.isfinite(mean):
        raise Diverged(f"loss became {mean} during training")
    return mean


def run_pass(
    model: nn.Module,
    data: Subset,
    *,
    batch_size: int,
    generator: torch.Generator,
    optimizer: torch.optim.Optimizer,
    loss_fn: LossFn = F.cross_entropy,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    after_step: Callable[[], None] | None = None,
    augment: Augment | None = None,
) -> float:
    """One shuffled pass over `data` (already on the model's device) with one loss; the mean loss."""
    model.train()
    losses = (loss_fn(model(x), y) for x, y in batches(data, batch_size, generator, augment))
    return descend(losses, optimizer, scheduler, after_step)


@dataclass
class TrainLog:
    losses: list[float] = field(default_factory=list)
    privacy: dict | None = None  # DP training: what the accountant spent (audit.nn.dp.Private.record)


def fit(model: nn.Module, data: Subset, recipe, generator: torch.Generator,
        augment: Augment | None = None, dp=None) -> TrainLog:
    """Train `model` in place on `data` with a [train] recipe (epochs, optimizer, schedule); with
    `dp` (an audit.nn.dp.DpRecipe), differentially private through opacus."""
    data = data.to(next(model.parameters()).device)
    optimizer = make_optimizer(
        model.parameters(), recipe.optimizer, recipe.lr, recipe.momentum, recipe.weight_decay
    )
    private = None
    if dp is not None:
        from audit.nn import dp as dp_mode

        private = dp_mode.make_private(model, optimizer, data, recipe.batch_size, recipe.epochs, dp, generator)
        optimizer = private.optimizer
    total_steps = recipe.epochs * steps_per_pass(len(data), recipe.batch_size)
    scheduler = make_schedule(optimizer, recipe.schedule, total_steps)
    log = TrainLog()
    for _ in range(recipe.epochs):
        if private is None:
            loss = run_pass(model, data, batch_size=recipe.batch_size, generator=generator,
                            optimizer=optimizer, scheduler=scheduler, augment=augment)
        else:
            private.module.train()
            loss = descend((dp_mode.private_loss(private.module(x), y)
                            for x, y in private.batches(data, generator, recipe.batch_size, augment)),
                           optimizer, scheduler)
        log.losses.append(loss)
    if private is not None:
        dp_mode.release(private)
        log.privacy = private.record()
    check_finite(model)
    return log


def check_finite(model: nn.Module) -> None:
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise Diverged(f"weight {name} is not finite")
