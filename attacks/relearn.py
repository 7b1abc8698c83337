"""Relearning attacks on classifiers: does fine-tuning bring forgotten knowledge back?

An unlearning method can hide knowledge rather than remove it. Two attacks, each run
identically on an unlearned model and on a retrained one (which has nothing to bring back):

- retain relearning (DiMRA-style, for classifiers): plain fine-tuning on auxiliary data that
  holds nothing of the forget set, with forget accuracy, the forget set's mean φ and test
  accuracy recorded at checkpoints along the way;
- few-shot relearning (relearn time): fine-tuning on k forget examples, counting the steps
  until the accuracy on the rest of the forget set is back at the original model's;
- DiMRA, for class-conditional generators: fine-tuning with the plain denoising loss on
  forget-free data, generating for the forgotten class at each checkpoint.

The classifier attacks fine-tune with SGD and cross-entropy, DiMRA with Adam and the denoising
loss, always on a copy: the model given is never changed.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from audit.stats.signals import logit_scaled_confidence
from audit.tasks.classification import metrics
from audit.core.contracts import Subset
from audit.nn.ddpm import NoiseSchedule, denoising_loss, sample
from audit.tasks.generation.metrics import judge_outputs
from audit.engine.observe import predict_logits
from audit.nn.training import descend, endless_batches

VERSION = "1"


def checkpoint_steps(steps: int, checkpoints: int) -> list[int]:
    """0 and `checkpoints` evenly spaced budgets up to `steps` (distinct, increasing)."""
    return sorted({0, *(round(steps * (i + 1) / checkpoints) for i in range(checkpoints))})


def accuracy(model: nn.Module, data: Subset) -> float:
    return metrics.accuracy(predict_logits(model, data.x).numpy(), data.y.cpu().numpy())


def _losses(model: nn.Module, data: Subset, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    for x, y in endless_batches(data, batch_size, generator):
        yield F.cross_entropy(model(x), y)


def _attacker(model: nn.Module, lr: float) -> tuple[nn.Module, torch.optim.Optimizer]:
    attacked = copy.deepcopy(model)
    attacked.train()
    return attacked, torch.optim.SGD(attacked.parameters(), lr=lr, momentum=0.9)


def relearn_curve(model: nn.Module, aux: Subset, forget: Subset, test: Subset, steps: list[int], lr: float,
                  batch_size: int, generator: torch.Generator) -> dict[str, list[float]]:
    """Fine-tune a copy on `aux` and measure it at each budget in `steps` (0 = before the attack)."""
    attacked, optimizer = _attacker(model, lr)
    losses = _losses(attacked, aux, batch_size, generator)
    curve: dict[str, list[float]] = {"steps": [], "forget_accuracy": [], "forget_phi": [], "test_accuracy": []}
    done = 0
    for budget in steps:
        descend(itertools.islice(losses, budget - done), optimizer)
        done = budget
        logits, labels = predict_logits(attacked, forget.x).numpy(), forget.y.cpu().numpy()
        curve["steps"].append(budget)
        curve["forget_accuracy"].append(metrics.accuracy(logits, labels))
        curve["forget_phi"].append(float(np.mean(logit_scaled_confidence(logits, labels))))
        curve["test_accuracy"].append(accuracy(attacked, test))
    return curve


def relearn_time(model: nn.Module, shots: Subset, rest: Subset, target: float, max_steps: int, lr: float,
                 generator: torch.Generator) -> int | None:
    """Steps of fine-tuning on the k `shots` (one full batch per step) until the accuracy on
    `rest` reaches `target`; 0 if it already does, None if not within `max_steps`."""
    attacked, optimizer = _attacker(model, lr)
    if accuracy(attacked, rest) >= target:
        return 0
    losses = _losses(attacked, shots, len(shots), generator)
    for step in range(1, max_steps + 1):
        descend(itertools.islice(losses, 1), optimizer)
        if accuracy(attacked, rest) >= target:
            return step
    return None


def generation_relearn_curve(denoiser: nn.Module, schedule: NoiseSchedule, aux: Subset, judge: nn.Module,
                             forgotten: int, steps: list[int], lr: float, batch_size: int, samples: int,
                             guidance: float, generator: torch.Generator,
                             clip: tuple[float, float] | None = None) -> tuple[dict[str, list[float]], torch.Tensor]:
    """DiMRA: fine-tune a copy of the generator with the plain denoising loss on `aux` (nothing
    of the forgotten class), and at each budget in `steps` generate `samples` images for the
    forgotten class (`clip`: the data's range, as `audit.nn.ddpm.sample` takes it); the judge's
    share of them in that class is the generation rate. Returns the curve and the images of
    the last checkpoint."""
    attacked = copy.deepcopy(denoiser)
    attacked.train()
    optimizer = torch.optim.Adam(attacked.parameters(), lr=lr)
    losses = (denoising_loss(attacked, schedule, x, y, generator) for x, y in endless_batches(aux, batch_size, generator))
    labels = torch.full((samples,), forgotten, dtype=torch.long)
    curve: dict[str, list[float]] = {"steps": [], "forgotten_rate": []}
    done = 0
    for budget in steps:
        descend(itertools.islice(losses, budget - done), optimizer)
        done = budget
        images = sample(attacked, schedule, labels, guidance, generator, tuple(aux.x.shape[1:]), clip=clip)
        predictions = judge_outputs(judge, images)[0].argmax(1)
        curve["steps"].append(budget)
        curve["forgotten_rate"].append(float((predictions == forgotten).mean()))
    return curve, images
