"""The contracts plugins implement: the data an unlearner sees (Subset, Task), what it
declares (Tags) and the Unlearner itself.

Hyperparameters are explicit keyword arguments of `__init__` with defaults, stored as
attributes of the same name (as in scikit-learn), so the spec can validate them, the
manifest can record them and a run can be repeated. `unlearn(model, task)` returns a new
model and never mutates its input.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from audit.core.params import keyword_parameters

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]  # a batch and a generator -> the augmented batch


@dataclass(frozen=True)
class Subset:
    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)

    def to(self, device: torch.device | str) -> Subset:
        return Subset(self.x.to(device), self.y.to(device))


@dataclass(frozen=True)
class Tags:
    """What a method needs and promises; the audit and the conformance checks enforce them."""

    needs_retain: bool = True  # False: the task carries no retain data
    needs_test: bool = False  # True: the task carries the test set (few methods may use it)
    modality: str = "classification"
    deterministic: bool = True  # same seed, same weights
    modifies_weights: bool = True  # False only for the identity control
    needs_saliency: bool = False  # True: the audit computes and caches the forget gradient (Task.saliency)


@dataclass(frozen=True)
class Task:
    """Everything an unlearner may use. Data tensors are already on `device`."""

    forget: Subset
    retain: Subset | None
    test: Subset | None
    num_classes: int
    device: torch.device
    generator: torch.Generator
    recipe: Any  # the original training recipe: the spec's [train] section
    build_model: Callable[[torch.Generator], nn.Module]  # a fresh model of the audited architecture
    forget_classes: tuple[int, ...] = ()
    augment: Augment | None = None  # the recipe's augmentation policy, for every training pass
    input_std: torch.Tensor | None = None  # (C, 1, 1): one pixel unit in standardised input units
    saliency: dict[str, torch.Tensor] | None = None  # the audit's cached forget gradient, if asked for
    schedule: Any = None  # generation: the generator's audit.nn.ddpm.NoiseSchedule


class Unlearner(ABC):
    tags: ClassVar[Tags] = Tags()

    def get_params(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in keyword_parameters(type(self))}

    @abstractmethod
    def unlearn(self, model: nn.Module, task: Task) -> nn.Module:
        """A new model with the forget set's influence removed; `model` stays untouched."""

    def verify(self, original: nn.Module, unlearned: nn.Module, task: Task) -> list[str]:
        """Violations of constraints the method declares about its own output (none by default)."""
        return []

    @staticmethod
    def copy(model: nn.Module) -> nn.Module:
        return copy.deepcopy(model)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


@dataclass(frozen=True)
class TaskFamily:
    """What kind of model an audit audits, registered in TASKS under `[task] kind`: how the spec
    becomes jobs, `plan(spec, data, device) -> Plan`, and how their stored artifacts become
    results.json, `results(spec, data, plan, store, device, command) -> dict`."""

    plan: Callable[..., Any]
    results: Callable[..., Any]
