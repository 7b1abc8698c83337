from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from audit.core.contracts import Subset
from audit.core.params import Probability
from audit.core.registry import UNLEARNERS
from audit.nn.training import fit
from audit.core.contracts import Task, Unlearner


@UNLEARNERS.register("partial_retrain")
@dataclass
class PartialRetrain(Unlearner):
    """Control that forgets only part of the forget set: trains from a fresh init, with the
    original recipe, on the retain set plus a random share `kept` of the forget set.

    Its leakage is known by construction (the kept points are members), so it is the effect
    a sound policy must catch: an audit must FAIL it, and how often it does is the policy's
    measured power against incomplete forgetting (benchmarks/calibration.py). Which points
    are kept is drawn from the task's seeded generator.
    """

    kept: Probability = 0.5

    def __post_init__(self) -> None:
        if not 0.0 < self.kept <= 1.0:
            raise ValueError(f"kept must lie in (0, 1], got {self.kept}")

    def unlearn(self, model: nn.Module, task: Task) -> nn.Module:
        forget = task.forget
        count = max(1, round(self.kept * len(forget)))
        chosen = torch.randperm(len(forget), generator=task.generator)[:count].to(forget.y.device)
        training = Subset(torch.cat([task.retain.x, forget.x[chosen]]), torch.cat([task.retain.y, forget.y[chosen]]))
        fresh = task.build_model(task.generator)
        fit(fresh, training, task.recipe, task.generator, task.augment)
        return fresh
