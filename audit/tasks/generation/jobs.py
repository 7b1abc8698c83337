"""What each job of a generation audit does: train a generator, unlearn one, let the judge
classify a generator's samples (attacking one with DiMRA is `attacks.dimra_jobs`).

The judge is an ordinary classifier job (`audit.tasks.classification.jobs`); `[model]` and `[train]` describe it.
"""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import torch
from torch import nn

from audit.data.datasets import AuditData
from audit.nn.ddpm import Denoiser, NoiseSchedule, sample, train_denoiser
from audit.core.errors import Diverged, SalunInputError
from audit.tasks.generation.metrics import judge_outputs
from audit.tasks.classification.jobs import load_model, run_unlearner, skipped_for_failed_input
from audit.engine.job import GENERATOR, SAMPLE, UNLEARN_GENERATOR, Job
from audit.core.registry import GENERATION_UNLEARNERS, JOB_RUNNERS
from audit.core.seeds import torch_generator
from audit.config.spec import Spec
from audit.engine.store import Store
from audit.nn.training import check_finite
from audit.core.contracts import Task


def schedule_of(recipe: dict[str, Any]) -> NoiseSchedule:
    return NoiseSchedule(recipe["steps"], recipe["schedule"])


def new_generator(recipe: dict[str, Any], data: AuditData, generator: torch.Generator,
                  device: torch.device) -> nn.Module:
    return Denoiser(data.input_shape, data.num_classes, recipe["arch"], recipe["width"], generator).to(device)


def load_generator(recipe: dict[str, Any], data: AuditData, store: Store, key: str, device: torch.device) -> nn.Module:
    model = new_generator(recipe, data, torch_generator("skeleton"), device)
    model.load_state_dict(store.tensors(key))
    return model


def sample_range(data: AuditData, clip: bool) -> tuple[float, float] | None:
    """The standardised pool's range, which sampling clamps the predicted x0 to."""
    return (float(data.pool.x.min()), float(data.pool.x.max())) if clip else None


def _train_generator(job: Job, spec: Spec, data: AuditData, store: Store, device: torch.device, meta: dict) -> None:
    p, recipe = job.params, job.params["recipe"]
    model = new_generator(recipe, data, torch_generator("init", "generator", p["seed"]), device)
    train_set = data.pool if p["population"] == "original" else data.retain_set
    started = time.perf_counter()
    losses = train_denoiser(model, train_set, schedule_of(recipe), recipe["epochs"], recipe["lr"],
                            recipe["batch_size"], torch_generator("order", "generator", p["seed"]), recipe["p_uncond"])
    try:
        check_finite(model)
    except Diverged as error:
        raise SalunInputError(f"generation: {job.label} diverged ({error}); try a smaller generation.lr") from None
    meta.update(status="ok", losses=losses, wall_time_s=time.perf_counter() - started)
    store.put(job.key, meta, tensors=model.state_dict())


def _unlearn_generator(job: Job, spec: Spec, data: AuditData, store: Store, device: torch.device,
                       meta: dict) -> None:
    p, recipe = job.params, job.params["recipe"]
    original = load_generator(recipe, data, store, job.inputs[0], device)
    unlearner = GENERATION_UNLEARNERS.get(p["method"])(**p["hyperparameters"])
    task = Task(
        forget=data.forget_set.to(device),
        retain=data.retain_set.to(device) if unlearner.tags.needs_retain else None,
        test=None,
        num_classes=data.num_classes,
        device=device,
        generator=torch_generator("unlearn", p["method"], p["seed"]),
        recipe=SimpleNamespace(**recipe),
        build_model=lambda g: new_generator(recipe, data, g, device),
        forget_classes=data.forget_classes,
        schedule=schedule_of(recipe),
    )
    run_unlearner(job, unlearner, original, task, store, meta)


def _sample(job: Job, spec: Spec, data: AuditData, store: Store, device: torch.device, meta: dict) -> None:
    """`samples` images per class, the judge's logits and features on them, and its features on
    the real test images (the Fréchet distance's reference)."""
    if skipped_for_failed_input(job, store, meta):
        return
    p = job.params
    model = load_generator(p["recipe"], data, store, job.inputs[0], device)
    judge = load_model(spec, data, store, job.inputs[1], device)
    labels = torch.arange(data.num_classes).repeat_interleave(p["samples"])
    images = sample(model, schedule_of(p["recipe"]), labels, p["guidance"], torch_generator("sample", p["seed"]),
                    data.input_shape, clip=sample_range(data, p["clip"]))
    if not torch.isfinite(images).all():
        store.put(job.key, {**meta, "status": "diverged", "reason": "the generator samples non-finite images"})
        return
    logits, features = judge_outputs(judge, images)
    test = data.test.to(device)  # every class, the forgotten one too: the judge's own accuracy on it
    real_logits, real_features = judge_outputs(judge, test.x)
    arrays = {"images": images.cpu().numpy(), "labels": labels.numpy(), "logits": logits, "features": features,
              "real_features": real_features, "real_labels": test.y.cpu().numpy(), "real_logits": real_logits}
    store.put(job.key, {**meta, "status": "ok"}, arrays=arrays)


# DiMRA's runner lives with the attack (attacks.dimra_jobs).
for _kind, _runner in {GENERATOR: _train_generator, UNLEARN_GENERATOR: _unlearn_generator, SAMPLE: _sample}.items():
    JOB_RUNNERS.register(_kind)(_runner)
