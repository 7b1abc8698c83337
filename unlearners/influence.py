"""Influence unlearning (IU) with the WoodFisher inverse-Hessian approximation
(Jia et al., 2023, after Izzo et al. and Singh & Alistarh)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.func import functional_call, grad, vmap
from torch.nn import functional as F

from audit.core.contracts import Subset
from audit.core.params import BatchSize, Count, Weight
from audit.core.registry import UNLEARNERS
from audit.core.contracts import Task, Unlearner


def loss_gradient_sum(model: nn.Module, data: Subset, batch_size: int) -> torch.Tensor:
    """∇θ of the summed cross-entropy over `data`, flattened over all parameters in order."""
    params = [p for p in model.parameters()]
    total = torch.zeros(sum(p.numel() for p in params), device=params[0].device)
    for start in range(0, len(data), batch_size):
        loss = F.cross_entropy(model(data.x[start : start + batch_size]), data.y[start : start + batch_size],
                               reduction="sum")
        total += torch.cat([g.flatten() for g in torch.autograd.grad(loss, params)])
    return total


def per_sample_gradients(model: nn.Module, data: Subset, chunk: int = 128) -> Iterator[torch.Tensor]:
    """Rows ∇θ CE(θ; x_i, y_i), flattened like `loss_gradient_sum`, `chunk` examples at a time (torch.func)."""
    params = {name: p.detach() for name, p in model.named_parameters()}
    buffers = dict(model.named_buffers())

    def loss(p: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(functional_call(model, (p, buffers), (x.unsqueeze(0),)), y.unsqueeze(0))

    per_example = vmap(grad(loss), in_dims=(None, 0, 0))
    for start in range(0, len(data), chunk):
        grads = per_example(params, data.x[start : start + chunk], data.y[start : start + chunk])
        yield torch.cat([grads[name].flatten(1) for name in params], dim=1)


def woodfisher_exact(rows: Iterator[torch.Tensor], v: torch.Tensor) -> torch.Tensor:
    """H⁻¹v for H = I + (1/N) Σ g_i g_iᵀ over the N rows, exactly (Woodbury, in float64):
    the fixed point of the WoodFisher rank-one (Sherman–Morrison) recursion over all N samples."""
    g = torch.cat(list(rows)).double()
    n = g.shape[0]
    inner = n * torch.eye(n, dtype=g.dtype, device=g.device) + g @ g.T
    v64 = v.double()
    return (v64 - g.T @ torch.linalg.solve(inner, g @ v64)).to(v.dtype)


def woodfisher_public_code(rows: Iterator[torch.Tensor], v: torch.Tensor, dampening: float) -> torch.Tensor:
    """The single-vector recursion of the "Model sparsity" public code, O(#params) memory:
    o ← g_1; then for each g: k ← k − (k·g)/(N + o·g)·o, o ← o − (o·g)/(N + o·g)·o."""
    k, o = v.clone(), None
    for chunk in rows:
        for g in chunk:
            if o is None:
                o = g.clone()
                continue
            overlap = o @ g
            k -= (k @ g) / (dampening + overlap) * o
            o -= overlap / (dampening + overlap) * o
    return k


@UNLEARNERS.register("influence")
@dataclass
class Influence(Unlearner):
    """IU (influence unlearning, WoodFisher): one Newton-like step θ ← θ + α·H⁻¹v.

    Here v = ∇L_f/(n_f + n_r) − ∇L_r·n_f/((n_f + n_r)·n_r) (L summed over examples) and H is
    the WoodFisher approximation I + (1/N) Σ g gᵀ from N = `samples` per-sample retain gradients
    (torch.func), drawn at random from the retain set. With this v the step is the Newton step
    of the retain-only loss, i.e. along −H⁻¹∇(L_r/n_r) at an optimum of the full loss.

    `hessian = "exact"` solves with all N gradients at once (memory N × #params);
    `"public_code"` runs the public code's single-vector recursion (memory 2 × #params) with
    dampening N, which is not the exact inverse.

    Defaults: the best of the grid α {1, 2, 5, 10, 20, 50, 100}
    on the default digits example, by the mean Avg. Gap to retraining on held-out seeds
    (`benchmarks/tune_defaults.py`; 0.84 % there).
    CIFAR-10: α in [1, 20], N ≈ 1 000 (paper); digits wants a larger step.
    """

    alpha: Weight = 50.0
    samples: Count = 1000
    hessian: Literal["exact", "public_code"] = "exact"
    batch_size: BatchSize = 256

    def __post_init__(self) -> None:
        if self.hessian not in ("exact", "public_code"):
            raise ValueError(f"hessian must be 'exact' or 'public_code', got {self.hessian!r}")
        if self.samples < 1:
            raise ValueError(f"samples must be at least 1, got {self.samples}")

    def direction(self, model: nn.Module, task: Task) -> tuple[torch.Tensor, Subset]:
        """v, and the retain examples whose gradients approximate H."""
        n_f, n_r = len(task.forget), len(task.retain)
        grad_f = loss_gradient_sum(model, task.forget, self.batch_size)
        grad_r = loss_gradient_sum(model, task.retain, self.batch_size)
        v = grad_f / (n_f + n_r) - grad_r * n_f / ((n_f + n_r) * n_r)
        chosen = torch.randperm(n_r, generator=task.generator)[: self.samples].to(task.retain.x.device)
        return v, Subset(task.retain.x[chosen], task.retain.y[chosen])

    def unlearn(self, model: nn.Module, task: Task) -> nn.Module:
        model = self.copy(model).eval()
        v, sample = self.direction(model, task)
        rows = per_sample_gradients(model, sample, chunk=self.batch_size)
        if self.hessian == "exact":
            step = woodfisher_exact(rows, v)
        else:
            step = woodfisher_public_code(rows, v, dampening=float(len(sample)))
        with torch.no_grad():
            torch.nn.utils.vector_to_parameters(torch.nn.utils.parameters_to_vector(model.parameters())
                                                + self.alpha * step, model.parameters())
        return model.train()
