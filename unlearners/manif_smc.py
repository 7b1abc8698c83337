"""ManiF-SMC (Wang, Tian, Zhang, Chen, Yu): forgetting in representation space.

z is the L2-normalised penultimate feature. For each erased point x_u, S_k holds its k most
cosine-similar retained points under the original θ_o, and c is the mean of their z. Each
step draws a positive x_p from S_k and minimises the hinge on the batch mean

    max(0, λ · [MSE(z(x_p), c) − MSE(z(x_u), c) + α]),

pushing the erased point away from its neighbours' centroid and pulling the neighbour in.
The margin α (`margin`):

- "smc" (the paper): self mode connectivity. A quadratic Bézier path
  φ_w(t) = (1−t)² θ_u + 2t(1−t) w + t² θ_o between the current unlearned weights and the
  original, whose control point w is trained on S_k alone (θ_u and θ_o frozen; label-free:
  the neighbours keep the original's representations along the path, t ~ U(0, 1) per step),
  once per epoch for `smc_steps` steps. w starts at an untrained model's weights: at the
  start θ_u = θ_o, and a path through their midpoint would be constant and give α exactly
  the current gap, a loss of zero and no step. α = MSE(z_w(x_u), c) − MSE(z_w(x_p), c) from the
  surrogate φ_w(t) at `t`, recomputed per batch;
- "smc_random" (the public code): the surrogate is the linear interpolation at `t` between
  an untrained model and θ_o;
- "fixed" (ManiF without SMC): α = `alpha`.

No labels are used unless `labels` is set, which adds `label_weight` · CE on the positives.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F

from audit.core.errors import SalunInputError
from audit.nn.models import FeatureView
from audit.engine.observe import predict_logits
from audit.core.params import Count, Epochs, LearningRate, Probability, Steps, Weight
from audit.core.registry import UNLEARNERS
from audit.nn.training import descend, shuffled_batches
from audit.core.contracts import Task
from unlearners.sgd import SGDUnlearner

MARGINS = ("smc", "smc_random", "fixed")


def normalised_features(model: nn.Module, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """z(x) under `model`, in batches, without gradients."""
    return F.normalize(predict_logits(FeatureView(model), x, batch_size).to(x.device), dim=1)


def nearest_neighbours(queries: torch.Tensor, keys: torch.Tensor, k: int,
                       chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """For each row of `queries`, the indices and cosine similarities of its k most similar rows
    of `keys` (both L2-normalised), most similar first. Queries and keys go `chunk` rows at a
    time with a running top-k, so memory is O(chunk²), never queries × keys."""
    if not 1 <= k <= len(keys):
        raise ValueError(f"k = {k} neighbours needs 1 <= k <= {len(keys)} (the retain set's size)")
    indices, similarities = [], []
    for q in queries.split(chunk):
        best = torch.full((len(q), k), -torch.inf, device=q.device)
        best_index = torch.zeros((len(q), k), dtype=torch.long, device=q.device)
        for start in range(0, len(keys), chunk):
            block = torch.topk(q @ keys[start:start + chunk].T, min(k, len(keys) - start), dim=1)
            order = torch.topk(torch.cat([best, block.values], dim=1), k, dim=1)
            best = order.values
            best_index = torch.cat([best_index, block.indices + start], dim=1).gather(1, order.indices)
        indices.append(best_index)
        similarities.append(best)
    return torch.cat(indices), torch.cat(similarities)


def _mse(z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of the per-point mean squared difference."""
    return ((z - c) ** 2).mean()


def _params(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def bezier(start: dict[str, torch.Tensor], control: dict[str, torch.Tensor], end: dict[str, torch.Tensor],
           t: float) -> dict[str, torch.Tensor]:
    """φ(t) = (1−t)² start + 2t(1−t) control + t² end, parameter by parameter."""
    return {name: (1 - t) ** 2 * start[name] + 2 * t * (1 - t) * control[name] + t ** 2 * end[name]
            for name in start}


def _features_at(model: nn.Module, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """z(x) of `model`'s architecture with `params` (buffers copied, so batch norm stays put)."""
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    view = FeatureView(model)
    prefixed = {f"model.{k}": v for k, v in {**params, **buffers}.items()}
    return F.normalize(functional_call(view, prefixed, (x,)), dim=1)


def train_control_point(model: nn.Module, unlearned: dict[str, torch.Tensor], original: dict[str, torch.Tensor],
                        control: dict[str, torch.Tensor], neighbours: torch.Tensor, targets: torch.Tensor,
                        steps: int, lr: float, batch_size: int, generator: torch.Generator) -> list[float]:
    """Train the control point in place so that along the path the neighbours keep their
    original representations `targets`: Adam on MSE(z_φ(t)(x), targets), t ~ U(0, 1) per step.
    Returns the loss of every step."""
    for p in control.values():
        p.requires_grad_(True)
    optimizer = torch.optim.Adam(control.values(), lr=lr)
    losses = []

    def steps_losses():
        while len(losses) < steps:
            for index in shuffled_batches(len(neighbours), batch_size, generator):
                if len(losses) == steps:
                    return
                t = float(torch.rand((), generator=generator))
                index = index.to(neighbours.device)
                z = _features_at(model, bezier(unlearned, control, original, t), neighbours[index])
                loss = _mse(z, targets[index])
                losses.append(loss.item())
                yield loss

    descend(steps_losses(), optimizer)
    for p in control.values():
        p.requires_grad_(False)
    return losses


@UNLEARNERS.register("manif_smc")
@dataclass
class ManifSMC(SGDUnlearner):
    """ManiF-SMC: the erased points leave their neighbours' centroid in representation space,
    with a margin from self mode connectivity (see the module docstring).

    Defaults: k = 5, λ = 0.1 and t = 0.5 as in the paper; epochs and lr the best of the grid
    epochs {5, 10, 20} × lr {0.1, 0.5, 1, 2, 5} (SGD, momentum 0.9) on
    examples/digits-manif.toml, by the mean Avg. Gap to retraining on held-out seeds
    (`benchmarks/tune_defaults.py`; 0.79 % there, 1.60 % for leaving the model as it is). The
    loss is a mean squared difference of unit vectors, so its gradients are small and the
    step size large.
    """

    epochs: Epochs = 10
    lr: LearningRate = 2.0
    k: Count = 5
    margin: str = "smc"
    alpha: Weight = 0.01        # the margin when margin = "fixed" (MSE of unit vectors: at most 4/D)
    lam: Weight = 0.1           # λ
    t: Probability = 0.5             # where on the path the surrogate sits
    smc_steps: Steps = 20        # control-point steps per epoch
    smc_lr: LearningRate = 0.01
    labels: bool = False       # add label_weight · CE on the positives
    label_weight: Weight = 1.0

    def __post_init__(self) -> None:
        if self.margin not in MARGINS:
            raise ValueError(f"margin must be one of {', '.join(MARGINS)}, got {self.margin!r}")
        if not 0 <= self.t <= 1:
            raise ValueError(f"t must lie in [0, 1], got {self.t}")
        if self.k < 1:
            raise ValueError(f"k must be at least 1, got {self.k}")

    def unlearn(self, model: nn.Module, task: Task) -> nn.Module:
        original = _params(model)
        model = self.copy(model)
        forget, retain = task.forget, task.retain
        _require_features(model, forget.x[:1])
        z_forget, z_retain = normalised_features(model, forget.x), normalised_features(model, retain.x)
        neighbour_index, _ = nearest_neighbours(z_forget, z_retain, self.k)
        centroids = z_retain[neighbour_index].mean(dim=1)
        in_s_k = torch.unique(neighbour_index)
        untrained = {name: p.to(original[name].device) for name, p in _params(task.build_model(task.generator)).items()}
        surrogate = self._random_surrogate(original, untrained) if self.margin == "smc_random" else None
        control = {name: p.clone() for name, p in untrained.items()}
        optimizer = self.optimizer(model)
        batch_size = self.batch_size_for(task)
        self.margins: list[float] = []  # α of every step of the last run, and the control point's
        self.control_losses: list[float] = []  # losses, for inspection
        for _ in range(self.epochs):
            if self.margin == "smc":
                self.control_losses += train_control_point(
                    model, _params(model), original, control, retain.x[in_s_k], z_retain[in_s_k],
                    self.smc_steps, self.smc_lr, batch_size, task.generator)
                surrogate = bezier(_params(model), control, original, self.t)
            model.train()
            losses = (self._loss(model, surrogate, forget.x[b], retain, neighbour_index[b], centroids[b], task)
                      for b in (i.to(forget.x.device) for i in shuffled_batches(len(forget), batch_size, task.generator)))
            descend(losses, optimizer)
        return model

    def _random_surrogate(self, original: dict[str, torch.Tensor],
                          untrained: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The public code's surrogate: linear interpolation at t from an untrained model to θ_o."""
        return {name: (1 - self.t) * untrained[name] + self.t * p for name, p in original.items()}

    def _loss(self, model: nn.Module, surrogate: dict[str, torch.Tensor] | None, x_u: torch.Tensor,
              retain, neighbours: torch.Tensor, c: torch.Tensor, task: Task) -> torch.Tensor:
        pick = torch.randint(self.k, (len(x_u),), generator=task.generator).to(neighbours.device)
        positive = neighbours.gather(1, pick[:, None]).squeeze(1)
        x_p, y_p = retain.x[positive], retain.y[positive]
        if surrogate is None:
            alpha = self.alpha
        else:
            with torch.no_grad():
                alpha = (_mse(_features_at(model, surrogate, x_u), c) - _mse(_features_at(model, surrogate, x_p), c)).item()
        self.margins.append(alpha)
        z_u = F.normalize(model.features(x_u), dim=1)
        z_p = F.normalize(model.features(x_p), dim=1)
        loss = F.relu(self.lam * (_mse(z_p, c) - _mse(z_u, c) + alpha))
        if self.labels:
            loss = loss + self.label_weight * F.cross_entropy(model(x_p), y_p)
        return loss


def _require_features(model: nn.Module, x: torch.Tensor) -> None:
    try:
        with torch.no_grad():
            model.features(x)
    except (AttributeError, NotImplementedError):
        raise SalunInputError(
            f"manif_smc needs penultimate features: the model {type(model).__name__} has no features(x) method; "
            "give it one that returns (N, D) features, as audit.nn.models.Classifier does") from None
