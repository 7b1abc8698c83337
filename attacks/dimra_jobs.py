"""DiMRA's job (`attacks.relearn.generation_relearn_curve`): fine-tune a copy of an unlearned or
retrained generator on forget-free data and let the judge classify what it generates."""

from __future__ import annotations

import numpy as np
import torch

from attacks.relearn import checkpoint_steps, generation_relearn_curve
from audit.config.spec import Spec
from audit.core.registry import JOB_RUNNERS
from audit.core.seeds import torch_generator
from audit.data.datasets import AuditData
from audit.engine.job import DIMRA, Job
from audit.engine.store import Store
from audit.tasks.classification.jobs import load_model, relearn_sets, skipped_for_failed_input
from audit.tasks.generation.jobs import load_generator, sample_range, schedule_of


@JOB_RUNNERS.register(DIMRA)
def dimra_job(job: Job, spec: Spec, data: AuditData, store: Store, device: torch.device, meta: dict) -> None:
    """Attack one generator with DiMRA; the artifact holds the curve and the last checkpoint's images."""
    if skipped_for_failed_input(job, store, meta):
        return
    p, settings = job.params, job.params["settings"]
    model = load_generator(p["recipe"], data, store, job.inputs[0], device)
    judge = load_model(spec, data, store, job.inputs[1], device)
    aux = relearn_sets(spec, data, settings)[0].to(device)
    steps = checkpoint_steps(settings["steps"], settings["checkpoints"])
    curve, images = generation_relearn_curve(
        model, schedule_of(p["recipe"]), aux, judge, data.forget_classes[0], steps, settings["lr"],
        settings["batch_size"], p["samples"], p["guidance"], torch_generator("relearn", "dimra", p["seed"]),
        clip=sample_range(data, p["clip"]))
    if not np.isfinite(curve["forgotten_rate"]).all() or not torch.isfinite(images).all():
        store.put(job.key, {**meta, "status": "diverged", "reason": "the attacked generator samples non-finite images"})
        return
    store.put(job.key, {**meta, "status": "ok", "curve": curve}, arrays={"images": images.cpu().numpy()})
