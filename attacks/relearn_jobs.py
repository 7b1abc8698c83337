"""The relearning attacks' job on a classifier (`attacks.relearn`): retain relearning records a
curve, few-shot relearning the steps until the forget accuracy is back at the original's."""

from __future__ import annotations

import torch

from attacks.relearn import accuracy, checkpoint_steps, relearn_curve, relearn_time
from audit.config.spec import Spec
from audit.core.errors import Diverged
from audit.core.registry import JOB_RUNNERS
from audit.core.seeds import torch_generator
from audit.data.datasets import AuditData
from audit.engine.job import RELEARN, Job
from audit.engine.store import Store
from audit.tasks.classification.jobs import load_model, relearn_sets, skipped_for_failed_input


@JOB_RUNNERS.register(RELEARN)
def relearn_job(job: Job, spec: Spec, data: AuditData, store: Store, device: torch.device, meta: dict) -> None:
    """Attack one unlearned or retrained classifier by fine-tuning a copy of it."""
    if skipped_for_failed_input(job, store, meta):
        return
    p, settings = job.params, job.params["settings"]
    model = load_model(spec, data, store, job.inputs[0], device)
    aux, shots, rest = (subset.to(device) for subset in relearn_sets(spec, data, settings))
    generator = torch_generator("relearn", p["attack"], p["seed"])
    try:
        if p["attack"] == "retain":
            steps = checkpoint_steps(settings["steps"], settings["checkpoints"])
            outcome = {"curve": relearn_curve(model, aux, data.forget_set.to(device), data.eval_test_set.to(device),
                                              steps, settings["lr"], settings["batch_size"], generator)}
        else:
            target = accuracy(load_model(spec, data, store, job.inputs[1], device), rest)
            outcome = {"target": target, "steps_to_recover": relearn_time(
                model, shots, rest, target, settings["max_steps"], settings["lr"], generator)}
    except Diverged as error:
        store.put(job.key, {**meta, "status": "diverged", "reason": str(error)})
        return
    store.put(job.key, {**meta, "status": "ok", **outcome})
