"""Differentially private training through opacus' PrivacyEngine: the DP mode of the training loop.

Per-example gradients are clipped to `max_grad_norm` and Gaussian noise of standard deviation
noise_multiplier · max_grad_norm is added to their sum before each step; batches are Poisson
samples (each example in with probability batch_size / n) unless `poisson` is off. The
accountant (RDP or PRV) turns the noise, the sample rate and the steps into the ε spent at δ.
Every random draw comes from the run's generator: secure mode stays off, so a run repeats
bit for bit.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from audit.core.contracts import Augment, Subset
from audit.core.errors import SalunInputError

VERSION = "1"
# secure mode is off on purpose (seeded noise, so that a run repeats); opacus' hooks fire on the
# first layer, whose input needs no gradient
warnings.filterwarnings("ignore", message="Secure RNG turned off")
warnings.filterwarnings("ignore", message="Full backward hook is firing when gradients are computed")


@dataclass(frozen=True)
class DpRecipe:
    """A [train.dp] training setting: exactly one of noise_multiplier and target_epsilon."""

    max_grad_norm: float
    delta: float
    accountant: str = "rdp"
    poisson: bool = True
    noise_multiplier: float | None = None
    target_epsilon: float | None = None

    @staticmethod
    def of(params: dict[str, Any]) -> "DpRecipe":
        return DpRecipe(**params)


def opacus_version() -> str:
    import opacus

    return opacus.__version__


def check_compatible(model: nn.Module, arch: str) -> None:
    """A model opacus cannot compute per-example gradients for (BatchNorm mixes the examples of a
    batch) is refused, naming model.arch."""
    from opacus.validators import ModuleValidator

    errors = ModuleValidator.validate(model.train(), strict=False)
    if errors:
        reasons = "; ".join(dict.fromkeys(str(error).strip().split(". ")[0].rstrip(".") for error in errors))
        raise SalunInputError(f"model.arch: '{arch}' cannot train with differential privacy ([train.dp]): "
                              f"{reasons}; choose a model without BatchNorm (mlp, cnn)")


def accountant_epsilon(engine: Any, delta: float) -> float:
    """The ε the accountant has spent so far at δ."""
    return float(engine.get_epsilon(delta))


@dataclass
class Private:
    """A model, optimizer and batch source made private, and the engine that accounts for them."""

    module: nn.Module
    optimizer: torch.optim.Optimizer
    engine: Any
    loader: Any
    dp: DpRecipe

    def batches(self, data: Subset, generator: torch.Generator, batch_size: int,
                augment: Augment | None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One pass: opacus' Poisson-sampled batches, or the loop's own shuffled ones."""
        if not self.dp.poisson:
            from audit.nn.training import batches

            yield from batches(data, batch_size, generator, augment)
            return
        for x, y in self.loader:
            yield (augment(x, generator) if augment is not None and len(x) else x), y

    def record(self) -> dict[str, Any]:
        """What the accountant spent, and on what (the steps it counted): one model's accountant_epsilon."""
        history = self.engine.accountant.history
        noise, sample_rate, _ = history[-1] if history else (self.optimizer.noise_multiplier, 0.0, 0)
        steps = sum(entry[2] for entry in history)
        return {"epsilon": accountant_epsilon(self.engine, self.dp.delta), "delta": self.dp.delta,
                "accountant": self.dp.accountant, "opacus": opacus_version(), "noise_multiplier": float(noise),
                "target_epsilon": self.dp.target_epsilon, "max_grad_norm": self.dp.max_grad_norm,
                "sample_rate": float(sample_rate), "steps": int(steps),
                "sampling": "poisson" if self.dp.poisson else "shuffled passes (not what the accountant assumes)",
                "expected_batch_size": int(self.optimizer.expected_batch_size), "version": VERSION}


def private_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The mean cross-entropy; 0 on an empty Poisson batch, whose mean would be NaN."""
    return F.cross_entropy(logits, labels, reduction="sum") / max(len(labels), 1)


def make_private(model: nn.Module, optimizer: torch.optim.Optimizer, data: Subset, batch_size: int, epochs: int,
                 dp: DpRecipe, generator: torch.Generator) -> Private:
    """`model` and `optimizer` wrapped by a PrivacyEngine; the noise and the Poisson draws are seeded
    from `generator` (the model's parameters are trained in place)."""
    from opacus import PrivacyEngine
    from torch.utils.data import DataLoader, TensorDataset

    device = next(model.parameters()).device
    noise = torch.Generator(device=device)
    noise.manual_seed(int(torch.randint(2**62, (1,), generator=generator)))
    sampling = torch.Generator()
    sampling.manual_seed(int(torch.randint(2**62, (1,), generator=generator)))
    loader = DataLoader(TensorDataset(data.x, data.y), batch_size=batch_size, generator=sampling)
    engine = PrivacyEngine(accountant=dp.accountant, secure_mode=False)
    common = dict(module=model, optimizer=optimizer, data_loader=loader, max_grad_norm=dp.max_grad_norm,
                  poisson_sampling=dp.poisson, noise_generator=noise)
    if dp.target_epsilon is not None:
        module, optimizer, loader = engine.make_private_with_epsilon(
            **common, target_epsilon=dp.target_epsilon, target_delta=dp.delta, epochs=epochs)
    else:
        module, optimizer, loader = engine.make_private(**common, noise_multiplier=dp.noise_multiplier)
    return Private(module, optimizer, engine, loader, dp)


def release(private: Private) -> None:
    """The per-example gradient hooks removed: the trained model is a plain module again."""
    private.module.to_standard_module()
