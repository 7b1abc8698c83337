"""What each kind of job does: train a model, unlearn an original, observe a model.

A job reads its inputs from the store and writes exactly one artifact under its key.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from audit.nn.augment import make_augmentation
from audit.core.files import sha256_of
from audit.nn.checkpoints import load_checkpoint
from audit.core.contracts import Subset
from audit.data.datasets import AuditData, auxiliary_set
from audit.core.errors import Diverged, SalunInputError
from audit.nn.models import build_model
from audit.engine.observe import observe, predict_logits
from audit.data.poison import backdoor_queries
from audit.engine.job import IMPORT, OBSERVE, TRAIN, UNLEARN, Job
from audit.core.registry import JOB_RUNNERS, UNLEARNERS
from audit.core.seeds import numpy_generator, torch_generator
from audit.data.shadows import shadow_split, shadow_train_positions
from audit.config.spec import Spec
from audit.engine.store import Store
from audit.nn.training import Augment, check_finite, fit
from audit.nn.dp import DpRecipe
from audit.data.canaries import canary_training_set
from audit.core.contracts import Task, Unlearner


def new_model(spec: Spec, data: AuditData, generator: torch.Generator, device: torch.device) -> nn.Module:
    return build_model(spec.model.arch, spec.model.options, data.input_shape, data.num_classes, generator, device)


def load_model(spec: Spec, data: AuditData, store: Store, key: str, device: torch.device) -> nn.Module:
    model = new_model(spec, data, torch_generator("skeleton"), device)
    model.load_state_dict(store.tensors(key))
    return model


def augmentation(recipe: Any, data: AuditData) -> Augment | None:
    """The [train] recipe's augmentation policy for this data's images."""
    return make_augmentation(recipe.augmentation, data.channel_mean, data.channel_std)


def make_task(
    unlearner: Unlearner,
    data: AuditData,
    recipe: Any,
    build: Any,
    generator: torch.Generator,
    device: torch.device,
    saliency: dict[str, torch.Tensor] | None = None,
    split: tuple[np.ndarray, np.ndarray] | None = None,
) -> Task:
    """The task an unlearner sees; retain and test data only where its tags ask for them.

    `split` gives other (forget, retain) pool positions than the audit's, for shadow models.
    """
    tags = unlearner.tags
    forget, retain = (data.forget_set, data.retain_set) if split is None else map(data.pool_subset, split)
    return Task(
        forget=forget.to(device),
        retain=retain.to(device) if tags.needs_retain else None,
        test=data.eval_test_set.to(device) if tags.needs_test else None,
        num_classes=data.num_classes,
        device=device,
        generator=generator,
        recipe=recipe,
        build_model=build,
        forget_classes=data.forget_classes,
        augment=None if recipe is None else augmentation(recipe, data),
        input_std=torch.as_tensor(data.channel_std, dtype=torch.float32).reshape(-1, 1, 1).to(device),
        saliency=saliency,
    )


def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def shadow_split_of(job: Job, data: AuditData) -> tuple[np.ndarray, np.ndarray] | None:
    """A shadow model's own (forget, retain) positions; None for the audit's models."""
    if "shadow" not in job.params:
        return None
    return shadow_split(data, job.params["shadow"], job.params["shadows"], job.params["membership_seed"])


def _training_set(job: Job, data: AuditData) -> Subset:
    population = job.params["population"]
    if population == "dp_canary":
        c = job.params["canaries"]
        return canary_training_set(data.pool, data.num_classes, c["count"], c["seed"], job.params["seed"])
    if population == "shadow":
        p = job.params
        return data.pool_subset(shadow_train_positions(data, p["shadow"], p["shadows"], p["membership_seed"]))
    return data.pool if population in ("original", "judge") else data.retain_set


def _train(job: Job, spec: Spec, data: AuditData, store: Store, device: torch.device, meta: dict) -> None:
    seed = job.params["seed"]
    model = new_model(spec, data, torch_generator("init", seed), device)
    train_set = _training_set(job, data)
    started = time.perf_counter()
    try:
        log = fit(model, train_set, spec.train, torch_generator("order", seed), augmentation(spec.train, data),
                  dp=DpRecipe.of(job.params["dp"]) if "dp" in job.params else None)
    except Diverged as error:
        raise SalunInputError(f"train: {job.label} diverged ({error}); try a smaller train.lr") from None
    _synchronise(device)
    meta.update(status="ok", losses=log.losses, wall_time_s=time.perf_counter() - started,
                **({"privacy": log.privacy} if log.privacy is not None else {}))
    store.put(job.key, meta, tensors=model.state_dict())


def _import(job: Job, spec: Spec, data: AuditData, store: Store, device: torch.device, meta: dict) -> None:
    """A checkpoint from outside salun, checked against the architecture and its recorded SHA-256."""
    p = job.params
    path = Path(p["checkpoint"])
    if sha256_of(path) != p["sha256"]:
        raise SalunInputError(f"{p['field']}: {path} changed while the audit ran; run it again")
    model = load_checkpoint(path, new_model(spec, data, torch_generator("skeleton"), device), p["field"],
                            spec.model.arch)
    try:
        check_finite(model)
    except Diverged as error:
        raise SalunInputError(f"{p['field']}: {path} holds non-finite weights ({error})") from None
    store.put(job.key, {**meta, "status": "ok", "sha256": p["sha256"], "runtime_s": None},
              tensors=model.state_dict())


def _unlearn(job: Job, spec: Spec, data: AuditData, store: Store, device: torch.device, meta: dict) -> None:
    original = load_model(spec, data, store, job.inputs[0], device)
    unlearner = UNLEARNERS.get(job.params["method"])(**job.params["hyperparameters"])
    generator = torch_generator("unlearn", job.params["method"], job.params["seed"])
    saliency = {k: v.to(device) for k, v in store.tensors(job.inputs[1]).items()} if len(job.inputs) > 1 else None
    task = make_task(unlearner, data, spec.train, lambda g: new_model(spec, data, g, device), generator, device,
                     saliency=saliency, split=shadow_split_of(job, data))
    run_unlearner(job, unlearner, original, task, store, meta)


def run_unlearner(job: Job, unlearner: Unlearner, original: nn.Module, task: Task, store: Store, meta: dict) -> None:
    """Unlearn, timed; store the weights, or the divergence as the job's outcome."""
    started = time.perf_counter()
    try:
        model = unlearner.unlearn(original, task)
        _synchronise(task.device)
        check_finite(model)
    except Diverged as error:
        store.put(job.key, {**meta, "status": "diverged", "reason": str(error)})
        return
    meta.update(status="ok", runtime_s=time.perf_counter() - started)
    store.put(job.key, meta, tensors=model.state_dict())


def _observe(job: Job, spec: Spec, data: AuditData, store: Store, device: torch.device, meta: dict) -> None:
    source = store.meta(job.inputs[0])
    if source.get("status") != "ok":
        store.put(job.key, {**meta, "status": "skipped", "reason": f"no model to observe: {source.get('reason')}"})
        return
    model = load_model(spec, data, store, job.inputs[0], device)
    arrays = observe(model, data)
    if "backdoor" in job.params:
        b = job.params["backdoor"]
        arrays["backdoor_logits"] = predict_logits(model, backdoor_queries(data, b["target"], b["queries"], b["size"])).numpy()
    if not all(np.isfinite(values).all() for values in arrays.values()):
        store.put(job.key, {**meta, "status": "diverged", "reason": "the model outputs non-finite logits"})
        return
    store.put(job.key, {**meta, "status": "ok"}, arrays=arrays)


def relearn_sets(spec: Spec, data: AuditData, settings: Any) -> tuple[Subset, Subset, Subset]:
    """The attacker's data, the same for every model: a random subset of the retain set (or of
    relearn.aux_dataset), and `shots` forget examples with the rest of the forget set to
    measure relearning on."""
    rng = numpy_generator("relearn", data.digest)
    retain = rng.permutation(data.retain)[: settings["aux_size"]]
    forget = rng.permutation(data.forget)
    aux = data.pool_subset(np.sort(retain))
    if settings.get("aux_dataset"):
        root = spec.resolve_path(settings["aux_root"]) if settings.get("aux_root") else None
        own = auxiliary_set(settings["aux_dataset"], root, data, "relearn.aux_dataset")
        chosen = torch.from_numpy(np.sort(rng.permutation(len(own))[: settings["aux_size"]]))
        aux = Subset(own.x[chosen], own.y[chosen])
    return aux, data.pool_subset(forget[: settings["shots"]]), data.pool_subset(np.sort(forget[settings["shots"]:]))


def skipped_for_failed_input(job: Job, store: Store, meta: dict) -> bool:
    """Record a skipped artifact when an input is a failure rather than a model."""
    missing = [key for key in job.inputs if store.meta(key).get("status") != "ok"]
    if missing:
        store.put(job.key, {**meta, "status": "skipped", "reason": store.meta(missing[0]).get("reason")})
    return bool(missing)


# The saliency and relearning jobs' runners live with their method and attack (unlearners.saliency_job,
# attacks.relearn_jobs).
for _kind, _runner in {TRAIN: _train, UNLEARN: _unlearn, OBSERVE: _observe, IMPORT: _import}.items():
    JOB_RUNNERS.register(_kind)(_runner)
