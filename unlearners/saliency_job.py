"""The saliency job: the forget gradient of one original (`unlearners.saliency.forget_gradient`),
computed once and shared by every method whose tags ask for it (SalUn's weight saliency)."""

from __future__ import annotations

import torch

from audit.config.spec import Spec
from audit.core.registry import JOB_RUNNERS
from audit.data.datasets import AuditData
from audit.engine.job import SALIENCY, Job
from audit.engine.store import Store
from audit.tasks.classification.jobs import load_model, shadow_split_of
from unlearners.saliency import forget_gradient


@JOB_RUNNERS.register(SALIENCY)
def saliency_job(job: Job, spec: Spec, data: AuditData, store: Store, device: torch.device, meta: dict) -> None:
    """The forget gradient of an original at its weights, over its own forget set (a shadow's for a shadow)."""
    original = load_model(spec, data, store, job.inputs[0], device)
    split = shadow_split_of(job, data)
    forget = data.forget_set if split is None else data.pool_subset(split[0])
    store.put(job.key, {**meta, "status": "ok"}, tensors=forget_gradient(original, forget.to(device)))
