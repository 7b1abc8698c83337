"""Models of one architecture and recipe trained together: one vectorised job instead of N.

The members' parameters and buffers are stacked into tensors of shape (N, ...) and every step
runs all N forward and backward passes at once (`torch.func.vmap` over `functional_call`).
Each member keeps what `fit` would give it: its own init (the models passed in), its own data
order and augmentation draws (its own generator, drawn in the order `fit` draws them) and its
own optimiser state. SGD (with momentum and weight decay) and Adam act element by element, so
one optimiser over the stacked tensors, stepping on the sum of the members' mean batch losses,
gives every member exactly its own update; the learning-rate schedule is the same for all.
A member's weights therefore equal `fit`'s up to floating-point rounding (batched kernels round
differently from single ones), and two runs of one population give identical weights.

BatchNorm works as in `fit`: its running statistics are stacked buffers, updated in place per
member, so mlp, cnn and resnet18 all train here.

A member whose loss turns non-finite is reported as `Diverged` (as `fit` raises it) while the
others train on: its gradients never reach theirs. Every member of one population must train on
the same number of examples, so that all take the same steps with batches of the same sizes.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator, Sequence

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap
from torch.nn import functional as F

from audit.core.contracts import Augment, Subset
from audit.core.errors import Diverged
from audit.nn.training import (TrainLog, check_finite, descend, make_optimizer, make_schedule, shuffled_batches,
                               steps_per_pass)


class _Stacked:
    """The members' training sets, one (N, B, ...) batch per step: one shared set or N stacked ones."""

    def __init__(self, data: Sequence[Subset], device: torch.device):
        shared = all(member is data[0] for member in data)
        self.x = data[0].x.to(device) if shared else torch.stack([member.x for member in data]).to(device)
        self.y = data[0].y.to(device) if shared else torch.stack([member.y for member in data]).to(device)
        self.rows = None if shared else torch.arange(len(data), device=device)[:, None]

    def gather(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.rows is None:
            return self.x[index], self.y[index]
        return self.x[self.rows, index], self.y[self.rows, index]


class _Leaves:
    """The members' stacked parameters, as the optimiser holds them. An nn.Linear weight is held
    transposed, (N, in, out): vmap runs the layer as a batched matmul with the weight's transpose,
    which is then contiguous, and a batched matmul is slower on a transposed operand. SGD and Adam
    act element by element, so the layout changes no update."""

    def __init__(self, params: dict[str, torch.Tensor], skeleton: nn.Module):
        self.transposed = {f"{name}.weight".lstrip(".") for name, module in skeleton.named_modules()
                           if isinstance(module, nn.Linear)}
        self.leaves = {name: tensor.detach().mT.contiguous().requires_grad_() if name in self.transposed else tensor
                       for name, tensor in params.items()}

    def views(self) -> dict[str, torch.Tensor]:
        """Every parameter in the models' own layout, (N, ...)."""
        return {name: leaf.mT if name in self.transposed else leaf for name, leaf in self.leaves.items()}


def _batches(data: _Stacked, size: int, batch_size: int, generators: Sequence[torch.Generator],
             augment: Augment | None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One shuffled pass for every member at once, each member's order and augmentation drawn from
    its own generator as `audit.nn.training.batches` draws them."""
    orders = [shuffled_batches(size, batch_size, generator) for generator in generators]
    for indices in zip(*orders):
        x, y = data.gather(torch.stack(indices).to(data.x.device))
        if augment is not None:
            x = torch.stack([augment(member, generator) for member, generator in zip(x, generators)])
        yield x, y


def train_population(models: Sequence[nn.Module], data: Sequence[Subset], recipe,
                     generators: Sequence[torch.Generator], augment: Augment | None = None) -> list[TrainLog | Diverged]:
    """Train each `models[i]` in place on `data[i]` with its own `generators[i]`, as `fit` would,
    all at once; each member's training log, or the `Diverged` that ended it."""
    if not len(models) == len(data) == len(generators):
        raise ValueError("train_population needs one training set and one generator per model")
    if len({len(member) for member in data}) != 1:
        raise ValueError("the members of one population must train on equally many examples")
    device = next(models[0].parameters()).device
    params, buffers = stack_module_state(list(models))
    skeleton = copy.deepcopy(models[0]).to("meta").train()
    logits = vmap(lambda p, b, x: functional_call(skeleton, (p, b), (x,)))
    leaves = _Leaves(params, skeleton)
    optimizer = make_optimizer(list(leaves.leaves.values()), recipe.optimizer, recipe.lr, recipe.momentum,
                               recipe.weight_decay)
    size = len(data[0])
    scheduler = make_schedule(optimizer, recipe.schedule, recipe.epochs * steps_per_pass(size, recipe.batch_size))
    stacked = _Stacked(data, device)
    logs: list[TrainLog | Diverged] = [TrainLog() for _ in models]
    for _ in range(recipe.epochs):
        totals = torch.zeros(len(models), device=device)

        def losses() -> Iterator[torch.Tensor]:
            nonlocal totals
            for x, y in _batches(stacked, size, recipe.batch_size, generators, augment):
                each = _mean_losses(logits(leaves.views(), buffers, x), y)
                totals = totals + each.detach()
                # a diverged member adds nothing, so the others' step stays finite
                yield torch.where(torch.isfinite(each), each, 0.0).sum()

        descend(losses(), optimizer, scheduler)
        _log_pass(logs, (totals / steps_per_pass(size, recipe.batch_size)).tolist())
    _unstack(models, leaves.views(), buffers)
    return [_checked(model, log) for model, log in zip(models, logs)]


def _mean_losses(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Each member's mean cross-entropy over its batch: (N, B, classes) and (N, B) in, (N,) out.
    Outside vmap, where cross-entropy is one native call instead of its decomposition."""
    return F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none").view(y.shape).mean(1)


def _log_pass(logs: list[TrainLog | Diverged], means: list[float]) -> None:
    """Each member's mean loss of one pass; a non-finite one ends that member, as in `descend`."""
    for i, mean in enumerate(means):
        if isinstance(logs[i], TrainLog):
            if math.isfinite(mean):
                logs[i].losses.append(mean)
            else:
                logs[i] = Diverged(f"loss became {mean} during training")


def _unstack(models: Sequence[nn.Module], params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        for i, model in enumerate(models):
            for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
                tensor.copy_((params[name] if name in params else buffers[name])[i])


def _checked(model: nn.Module, log: TrainLog | Diverged) -> TrainLog | Diverged:
    if isinstance(log, Diverged):
        return log
    try:
        check_finite(model)
    except Diverged as error:
        return error
    return log
