"""Models of one population trained together ([train] trainer = "vectorised"): a planned model's
cohort (the models of its population planned to train with it) runs as one vectorised job, and
each model is stored under its own key with its own metadata, as a per-model TRAIN job stores it.

A model's weights depend on its cohort (batched kernels round differently for different numbers
of models), so the cohort is fixed by the plan and is part of the model's key: whichever of its
members are missing from the store, the whole cohort is trained again and the missing ones stored,
so a resumed run gives the same weights as a fresh one.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import torch

from audit.config.spec import Spec
from audit.core.errors import Diverged, SalunInputError
from audit.core.registry import JOB_RUNNERS
from audit.core.seeds import torch_generator
from audit.data.datasets import AuditData
from audit.engine.job import TRAIN_POPULATION, TRAIN_VECTORISED, Job
from audit.engine.store import Store
from audit.nn.population import train_population
from audit.tasks.classification.jobs import _synchronise, _training_set, augmentation, new_model


def train_cohort(members: Sequence[Job], metas: Sequence[dict[str, Any]], spec: Spec, data: AuditData,
                 store: Store, device: torch.device) -> None:
    """Train the cohort `members` belong to and store each member with its meta; a member that
    diverged fails the audit, as a per-model TRAIN job does, once the others are stored."""
    first = members[0]
    if "dp" in first.params:  # the spec refuses it; a hand-made plan must not train DP models without opacus
        raise SalunInputError("train.dp: the vectorised trainer does not train with differential privacy; "
                              "set train.trainer = \"per_model\"")
    cohort = [replace(first, params={**first.params, **identity}) for identity in first.params["cohort"]]
    models = [new_model(spec, data, torch_generator("init", job.params["seed"]), device) for job in cohort]
    started = time.perf_counter()
    try:
        outcomes = train_population(models, [_training_set(job, data) for job in cohort], spec.train,
                                    [torch_generator("order", job.params["seed"]) for job in cohort],
                                    augmentation(spec.train, data))
    except Diverged as error:  # the members' summed loss overflowed
        raise SalunInputError(f"train: {first.label} diverged ({error}); try a smaller train.lr") from None
    _synchronise(device)
    seconds = (time.perf_counter() - started) / len(cohort)  # each member's share of the cohort's time
    trained = {job.key: (model, outcome) for job, model, outcome in zip(cohort, models, outcomes)}
    diverged = []
    for job, meta in zip(members, metas):
        model, outcome = trained[job.key]
        if isinstance(outcome, Diverged):
            diverged.append((job, outcome))
            continue
        store.put(job.key, {**meta, "status": "ok", "losses": outcome.losses, "wall_time_s": seconds},
                  tensors=model.state_dict())
    if diverged:
        job, error = diverged[0]
        raise SalunInputError(f"train: {job.label} diverged ({error}); try a smaller train.lr")


@JOB_RUNNERS.register(TRAIN_VECTORISED)
def _train_vectorised(job: Job, spec: Spec, data: AuditData, store: Store, device: torch.device,
                      meta: dict[str, Any]) -> None:
    train_cohort([job], [meta], spec, data, store, device)


@JOB_RUNNERS.register(TRAIN_POPULATION)
def _train_population(job: Job, spec: Spec, data: AuditData, store: Store, device: torch.device,
                      meta: dict[str, Any]) -> None:
    """The pending members of one cohort (audit.engine.populations), and a record of the group."""
    metas = [{"kind": m.kind, "label": m.label, "params": m.params, "inputs": list(m.inputs)} for m in job.members]
    train_cohort(job.members, metas, spec, data, store, device)
    store.put(job.key, {**meta, "status": "ok"})
