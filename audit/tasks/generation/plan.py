"""The jobs of a generation audit: N original and N retrained generators, one judge classifier,
each method's unlearned generators, the judge's verdict on every generator's samples, and
DiMRA on every unlearned and retrained generator."""

from __future__ import annotations

from typing import Any

import torch

from audit.data.datasets import AuditData
from audit.engine.job import DIMRA, GENERATOR, SAMPLE, TRAIN, UNLEARN_GENERATOR, Job, Plan, code_versions
from audit.core.probes import REFERENCE
from audit.core.registry import GENERATION_UNLEARNERS, MODELS
from audit.config.spec import Spec

def build_generation_plan(spec: Spec, data: AuditData, device: torch.device) -> Plan:
    seeds = list(range(spec.audit.seeds))
    code = code_versions()
    judge_code = code_versions(model=(MODELS.origin(spec.model.arch), MODELS.get(spec.model.arch)))
    generation = spec.generation.model_dump(mode="json")
    recipe = {k: generation[k] for k in ("arch", "width", "schedule", "steps", "epochs", "lr", "batch_size",
                                         "p_uncond")}
    sampling = {k: generation[k] for k in ("guidance", "clip", "samples")}
    jobs: list[Job] = []

    def add(job: Job) -> str:
        jobs.append(job)
        return job.key

    judge_recipe = {"model": spec.model.flat(), "train": spec.train.model_dump(mode="json"), "device": device.type}
    judge = add(Job(TRAIN, {"population": "judge", "seed": "judge", "data": data.pool_digest, **judge_recipe},
                    (), "judge classifier", judge_code))
    samples_of: dict[str, str] = {}

    def sampled(generator: str, seed: int, label: str) -> None:
        params = {"seed": seed, "data": data.digest, "device": device.type, "recipe": recipe, **sampling}
        samples_of[generator] = add(Job(SAMPLE, params, (generator, judge), f"sample {label} seed={seed}", code))

    originals, retrains = [], []
    for seed in seeds:
        for population, keys, digest in (("original", originals, data.pool_digest), ("retrain", retrains, data.digest)):
            params = {"population": population, "seed": seed, "data": digest, "recipe": recipe, "device": device.type}
            keys.append(add(Job(GENERATOR, params, (), f"{population} generator seed={seed}", code)))
            sampled(keys[-1], seed, population)

    def unlearn(label: str, section: Any, seed: int, original: str) -> str:
        method = GENERATION_UNLEARNERS.get(section.method)
        params = {"method": section.method, "hyperparameters": section.params, "seed": seed, "data": data.digest,
                  "recipe": recipe, "device": device.type}
        key = add(Job(UNLEARN_GENERATOR, params, (original,), f"{label} seed={seed}",
                      {**code, **code_versions(unlearner=(GENERATION_UNLEARNERS.origin(section.method), method))}))
        sampled(key, seed, label)
        return key

    unlearned = {label: [unlearn(label, section, seed, original) for seed, original in zip(seeds, originals)]
                 for label, section in spec.unlearners.items()}
    relearned: dict[str, dict[str, list[str]]] = {}
    if "retain" in spec.relearn.run:
        settings = spec.relearn.model_dump(mode="json", exclude={"run"})
        params = {"attack": "dimra", "settings": settings, "data": data.digest, "device": device.type,
                  "recipe": recipe, **sampling}
        targets = {REFERENCE: retrains, **unlearned}
        relearned["retain"] = {
            label: [add(Job(DIMRA, {**params, "seed": seed}, (model, judge), f"DiMRA {label} seed={seed}", code))
                    for seed, model in zip(seeds, keys)]
            for label, keys in targets.items()}
    return Plan(jobs, originals, retrains, unlearned, {}, seeds, relearned=relearned, judge=judge,
                samples_of=samples_of)
