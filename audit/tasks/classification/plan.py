"""The jobs a classification audit implies: originals, retrains, shadows, saliency, unlearning,
relearning and the observation of every model."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from audit.nn.checkpoints import checkpoint_sha256
from audit.data.datasets import AuditData
from audit.data.poison import backdoor_positions
from audit.core.probes import REFERENCE
from audit.core.registry import MODELS, UNLEARNERS
from audit.config.spec import Spec
from audit.data.shadows import shadow_train_positions
from audit.engine.job import (IMPORT, OBSERVE, RELEARN, SALIENCY, TRAIN, TRAIN_VECTORISED, UNLEARN, Job, Plan,
                              code_versions)
from audit.engine.populations import cohorts
from audit.data.canaries import canary_positions
from audit.core.errors import SalunInputError
from audit.core.seeds import torch_generator
from audit.nn.dp import check_compatible
from audit.nn.models import build_model


DP_METHOD = "dp_training"  # the method name of a sweep level's DP originals among the audited methods


@dataclass
class ClassificationPlan(Plan):
    # [train.dp]: population label -> {"noise_multiplier", "dp" (a job's setting, None: plain), "models",
    # "canary_models", "method": its label among plan.unlearned}; the audit's own originals are the population
    # "original"
    dp: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class _Jobs:
    """The jobs planned so far, in dependency order, and what every job of the audit shares."""

    spec: Spec
    data: AuditData
    device: torch.device
    jobs: list[Job] = field(default_factory=list)
    observation_of: dict[str, str] = field(default_factory=dict)
    saliency_of: dict[str, str] = field(default_factory=dict)  # original -> its forget gradient

    def __post_init__(self) -> None:
        spec = self.spec
        self.model_plugin = (MODELS.origin(spec.model.arch), MODELS.get(spec.model.arch))
        self.train_code = code_versions(model=self.model_plugin)
        # DP enters a job as its own `dp` parameter, and only the jobs that train with it
        self.recipe = {"model": spec.model.flat(), "train": spec.train.model_dump(mode="json", exclude={"dp"}),
                       "device": self.device.type}
        self.private = spec.train.dp.audit_wide if spec.train.dp is not None else None
        # a planted trigger changes what the originals, and all that derives from them, trained on
        self.backdoor = {"backdoor": spec.backdoor.model_dump(mode="json")} if spec.backdoor.enabled else {}
        self.shadow_count = spec.attacks.lira.shadows if spec.attacks.needs_shadows else 0
        self.shadows = [f"shadow {s}" for s in range(self.shadow_count)]
        self.cohort_of = self._cohorts() if spec.train.trainer == "vectorised" else {}

    def _cohorts(self) -> dict[int | str, list[dict[str, Any]]]:
        """seed -> the models (by their seed, and shadow index) trained together with it, itself included."""
        seeds = [{"seed": seed} for seed in range(self.spec.audit.seeds)]
        shadows = [{"seed": name, "shadow": s} for s, name in enumerate(self.shadows)]
        sizes = [len(shadow_train_positions(self.data, s, self.shadow_count, self.spec.data.seed))
                 for s in range(self.shadow_count)]
        size = self.spec.train.population_size
        together = cohorts(seeds, [0] * len(seeds), size) + cohorts(shadows, sizes, size)
        return {member["seed"]: cohort for cohort in together for member in cohort}

    def add(self, job: Job) -> str:
        self.jobs.append(job)
        return job.key

    def observed(self, model_key: str, label: str) -> None:
        params = {"pool": self.data.pool_digest, "device": self.device.type, **self.backdoor}
        self.observation_of[model_key] = self.add(Job(OBSERVE, params, (model_key,), f"observe {label}",
                                                      self.train_code))

    def imported(self, path: str, field_name: str, label: str) -> str:
        resolved = self.spec.resolve_path(path)
        params = {"checkpoint": str(resolved), "sha256": checkpoint_sha256(resolved, field_name), "field": field_name,
                  "model": self.spec.model.flat(), "device": self.device.type}
        key = self.add(Job(IMPORT, params, (), label, self.train_code))
        self.observed(key, label)
        return key

    def trained(self, population: str, seed: int | str, data_digest: str, label: str, **extra: Any) -> str:
        """A model trained from scratch; with the audit's DP setting unless `dp` says otherwise (None: plain)."""
        dp = extra.pop("dp", self.private)
        params = {"population": population, "seed": seed, **extra, "data": data_digest, **self.recipe,
                  **({"dp": dp} if dp is not None else {})}
        kind = TRAIN
        if seed in self.cohort_of:
            kind, params = TRAIN_VECTORISED, {**params, "cohort": self.cohort_of[seed]}
        key = self.add(Job(kind, params, (), label, self.train_code))
        self.observed(key, label)
        return key

    def shadow_params(self, seed: int | str) -> dict[str, Any]:
        """What makes a shadow model's training set and forget set: its index and the membership draw
        (the audit's own models: the planted trigger, if any)."""
        if seed not in self.shadows:
            return self.backdoor
        return {"shadow": self.shadows.index(seed), "shadows": self.shadow_count,
                "membership_seed": self.spec.data.seed}

    def saliency(self, seed: int | str, original: str) -> str:
        """The forget gradient at an original, computed once whichever methods ask for it."""
        if original not in self.saliency_of:
            params = {"seed": seed, "data": self.data.digest, "device": self.device.type, **self.shadow_params(seed)}
            self.saliency_of[original] = self.add(Job(SALIENCY, params, (original,), f"saliency seed={seed}",
                                                      self.train_code))
        return self.saliency_of[original]

    def unlearn(self, label: str, section: Any, seed: int | str, original: str) -> str:
        method = UNLEARNERS.get(section.method)
        code = code_versions(model=self.model_plugin, unlearner=(UNLEARNERS.origin(section.method), method))
        params = {"method": section.method, "hyperparameters": section.params, "seed": seed,
                  **self.shadow_params(seed), "data": self.data.digest, **self.recipe}
        inputs = (original, self.saliency(seed, original)) if method.tags.needs_saliency else (original,)
        key = self.add(Job(UNLEARN, params, inputs, f"{label} seed={seed}", code))
        self.observed(key, f"{label} seed={seed}")
        return key


def _populations(planned: _Jobs, seeds: list[int]) -> tuple[list[str], list[str]]:
    """Each seed's original (trained here, or one imported [subject] checkpoint) and retrain."""
    spec, data = planned.spec, planned.data
    originals, retrains = [], []
    for seed in seeds:
        if spec.subject is None:
            originals.append(planned.trained("original", seed, data.pool_digest, f"original seed={seed}",
                                             **planned.backdoor))
        retrains.append(planned.trained("retrain", seed, data.digest, f"retrain seed={seed}"))
    if spec.subject is not None:  # one original, trained outside salun; the controls unlearn it once
        originals.append(planned.imported(spec.subject.original, "subject.original", "subject original"))
    return originals, retrains


def _unlearned(planned: _Jobs, seeds: list[int], originals: list[str]) -> dict[str, list[str]]:
    """Each method's models, one per seed; a [subject] audit's checkpoints, imported."""
    spec = planned.spec
    unlearned = {label: [planned.unlearn(label, section, seed, original) for seed, original in zip(seeds, originals)]
                 for label, section in spec.unlearners.items()}
    if spec.subject is not None:
        unlearned |= {label: [planned.imported(path, f"subject.unlearned.{label}", f"subject {label}")]
                      for label, path in spec.subject.unlearned.items()}
    return unlearned


def _relearned(planned: _Jobs, seeds: list[int], originals: list[str], retrains: list[str],
               unlearned: dict[str, list[str]]) -> dict[str, dict[str, list[str]]]:
    """Every relearning attack on every method's models and, identically, on the reference retrains."""
    spec = planned.spec
    relearned: dict[str, dict[str, list[str]]] = {}
    for attack in spec.relearn.run:
        settings = spec.relearn.model_dump(mode="json", exclude={"run"})
        params = {"attack": attack, "settings": settings, "data": planned.data.digest, **planned.recipe}

        def relearn(label: str, seed: int, model: str, original: str) -> str:
            inputs = (model, original) if attack == "few_shot" else (model,)
            return planned.add(Job(RELEARN, {**params, "seed": seed}, inputs, f"relearn {attack} {label} seed={seed}",
                                   planned.train_code))

        targets = {REFERENCE: retrains, **unlearned}
        original_of = originals if spec.subject is None else originals * len(seeds)
        relearned[attack] = {label: [relearn(label, seed, model, original)
                                     for seed, model, original in zip(seeds, keys, original_of)]
                             for label, keys in targets.items()}
    return relearned


def _dp_populations(planned: _Jobs, seeds: list[int], originals: list[str]) -> dict[str, dict[str, Any]]:
    """The audit's originals, a population of DP originals per sweep level beside them, and for
    each a population trained with a random half of the canaries."""
    spec, data, dp = planned.spec, planned.data, planned.spec.train.dp
    count = dp.population or len(seeds)
    canaries = {"count": dp.canaries, "seed": spec.data.seed}
    if dp.canaries:
        canary_positions(len(data.pool), dp.canaries, spec.data.seed)  # too many canaries fail before training
    levels = {"original": (planned.private, originals)}
    for level in dp.sweep:
        private = dp.training(level)
        levels[f"σ={level:g}"] = (private, [planned.trained("original", seed, data.pool_digest,
                                                            f"dp σ={level:g} seed={seed}", dp=private)
                                            for seed in range(count)])
    populations = {}
    for label, (private, models) in levels.items():
        canary_models = [planned.trained("dp_canary", seed, data.pool_digest, f"canaries {label} seed={seed}",
                                         canaries=canaries, dp=private)
                         for seed in range(count)] if dp.canaries else []
        noise = None if private is None else private.get("noise_multiplier")
        populations[label] = {"noise_multiplier": noise, "dp": private, "models": models,
                              "canary_models": canary_models,
                              "method": f"{DP_METHOD} {label}" if label != "original" else None}
    return populations


def _check_private(spec: Spec, data: AuditData, device: torch.device) -> None:
    """A model opacus cannot train privately is refused before anything trains."""
    if spec.subject is not None:
        raise SalunInputError("train.dp: a [subject] audit trains no original; its checkpoints were trained outside "
                              "salun")
    check_compatible(build_model(spec.model.arch, spec.model.options, data.input_shape, data.num_classes,
                                 torch_generator("skeleton"), device), spec.model.arch)


def build_plan(spec: Spec, data: AuditData, device: torch.device) -> Plan:
    seeds = list(range(spec.audit.seeds))
    if spec.backdoor.enabled:
        backdoor_positions(data, spec.backdoor.fraction, spec.backdoor.target)  # a bad target fails before training
    if spec.train.dp is not None:
        _check_private(spec, data, device)
    planned = _Jobs(spec, data, device)
    originals, retrains = _populations(planned, seeds)
    shadow_originals = [planned.trained("shadow", seed, data.pool_digest, seed, **planned.shadow_params(seed))
                        for seed in planned.shadows]
    unlearned = _unlearned(planned, seeds, originals)
    dp = _dp_populations(planned, seeds, originals) if spec.train.dp is not None else {}
    # "DP training alone": each sweep level's DP originals, compared with the retrains like a method's models
    unlearned |= {entry["method"]: entry["models"] for entry in dp.values() if entry["method"]}
    shadow_unlearned = {}
    if "ulira" in spec.attacks.run:
        shadow_unlearned = {label: [planned.unlearn(label, section, seed, original)
                                    for seed, original in zip(planned.shadows, shadow_originals)]
                            for label, section in spec.unlearners.items()}
    relearned = _relearned(planned, seeds, originals, retrains, unlearned)
    return ClassificationPlan(planned.jobs, originals, retrains, unlearned, planned.observation_of, seeds,
                              shadow_originals, shadow_unlearned, relearned, dp=dp)
