"""The jobs a classification audit implies: originals, retrains, shadows, saliency, unlearning,
relearning and the observation of every model."""

from __future__ import annotations

from typing import Any

import torch

from audit.nn.checkpoints import checkpoint_sha256
from audit.data.datasets import AuditData
from audit.data.poison import backdoor_positions
from audit.core.registry import MODELS, UNLEARNERS
from audit.config.spec import Spec
from audit.engine.job import IMPORT, OBSERVE, RELEARN, SALIENCY, TRAIN, UNLEARN, Job, Plan, code_versions

def build_plan(spec: Spec, data: AuditData, device: torch.device) -> Plan:
    seeds = list(range(spec.audit.seeds))
    model_plugin = (MODELS.origin(spec.model.arch), MODELS.get(spec.model.arch))
    train_code = code_versions(model=model_plugin)
    recipe = {
        "model": spec.model.flat(),
        "train": spec.train.model_dump(mode="json"),
        "device": device.type,
    }
    jobs: list[Job] = []

    def add(job: Job) -> str:
        jobs.append(job)
        return job.key

    def observed(model_key: str, label: str) -> None:
        params = {"pool": data.pool_digest, "device": device.type, **backdoor}
        observation_of[model_key] = add(Job(OBSERVE, params, (model_key,), f"observe {label}", train_code))

    # a planted trigger changes what the originals, and all that derives from them, trained on
    backdoor = {"backdoor": spec.backdoor.model_dump(mode="json")} if spec.backdoor.enabled else {}
    if backdoor:
        backdoor_positions(data, spec.backdoor.fraction, spec.backdoor.target)  # a bad target fails before training
    observation_of: dict[str, str] = {}
    originals, retrains = [], []

    def imported(path: str, field: str, label: str) -> str:
        resolved = spec.resolve_path(path)
        params = {"checkpoint": str(resolved), "sha256": checkpoint_sha256(resolved, field), "field": field,
                  "model": spec.model.flat(), "device": device.type}
        key = add(Job(IMPORT, params, (), label, train_code))
        observed(key, label)
        return key

    subject = spec.subject
    for seed in seeds:
        if subject is None:
            original = add(Job(TRAIN, {"population": "original", "seed": seed, "data": data.pool_digest, **recipe,
                                       **backdoor},
                               (), f"original seed={seed}", train_code))
            originals.append(original)
            observed(original, f"original seed={seed}")
        retrain = add(Job(TRAIN, {"population": "retrain", "seed": seed, "data": data.digest, **recipe},
                          (), f"retrain seed={seed}", train_code))
        retrains.append(retrain)
        observed(retrain, f"retrain seed={seed}")
    if subject is not None:  # one original, trained outside salun; the controls unlearn it once
        originals.append(imported(subject.original, "subject.original", "subject original"))
    shadow_count = spec.attacks.lira.shadows if spec.attacks.needs_shadows else 0
    shadows = [f"shadow {s}" for s in range(shadow_count)]

    def shadow_params(seed: int | str) -> dict[str, Any]:
        """What makes a shadow model's training set and forget set: its index and the membership draw
        (the audit's own models: the planted trigger, if any)."""
        if seed not in shadows:
            return backdoor
        return {"shadow": shadows.index(seed), "shadows": shadow_count, "membership_seed": spec.data.seed}

    saliency_of: dict[str, str] = {}

    def saliency(seed: int | str, original: str) -> str:
        """The forget gradient at an original, computed once whichever methods ask for it."""
        if original not in saliency_of:
            params = {"seed": seed, "data": data.digest, "device": device.type, **shadow_params(seed)}
            saliency_of[original] = add(Job(SALIENCY, params, (original,), f"saliency seed={seed}", train_code))
        return saliency_of[original]

    shadow_originals = []
    for seed in shadows:
        params = {"population": "shadow", "seed": seed, **shadow_params(seed), "data": data.pool_digest, **recipe}
        shadow_originals.append(add(Job(TRAIN, params, (), seed, train_code)))
        observed(shadow_originals[-1], seed)

    def unlearn(label: str, section: Any, seed: int | str, original: str) -> str:
        method = UNLEARNERS.get(section.method)
        code = code_versions(model=model_plugin, unlearner=(UNLEARNERS.origin(section.method), method))
        params = {"method": section.method, "hyperparameters": section.params, "seed": seed,
                  **shadow_params(seed), "data": data.digest, **recipe}
        inputs = (original, saliency(seed, original)) if method.tags.needs_saliency else (original,)
        key = add(Job(UNLEARN, params, inputs, f"{label} seed={seed}", code))
        observed(key, f"{label} seed={seed}")
        return key

    unlearned = {label: [unlearn(label, section, seed, original) for seed, original in zip(seeds, originals)]
                 for label, section in spec.unlearners.items()}
    if subject is not None:
        unlearned |= {label: [imported(path, f"subject.unlearned.{label}", f"subject {label}")]
                      for label, path in subject.unlearned.items()}
    shadow_unlearned = {}
    if "ulira" in spec.attacks.run:
        shadow_unlearned = {label: [unlearn(label, section, seed, original)
                                    for seed, original in zip(shadows, shadow_originals)]
                            for label, section in spec.unlearners.items()}
    relearned: dict[str, dict[str, list[str]]] = {}
    for attack in spec.relearn.run:
        settings = spec.relearn.model_dump(mode="json", exclude={"run"})
        params = {"attack": attack, "settings": settings, "data": data.digest, **recipe}

        def relearn(label: str, seed: int, model: str, original: str) -> str:
            inputs = (model, original) if attack == "few_shot" else (model,)
            return add(Job(RELEARN, {**params, "seed": seed}, inputs, f"relearn {attack} {label} seed={seed}", train_code))

        targets = {"retrain (reference)": retrains, **unlearned}
        original_of = originals if subject is None else originals * len(seeds)
        relearned[attack] = {label: [relearn(label, seed, model, original)
                                     for seed, model, original in zip(seeds, keys, original_of)]
                             for label, keys in targets.items()}
    return Plan(jobs, originals, retrains, unlearned, observation_of, seeds, shadow_originals, shadow_unlearned,
                relearned)
