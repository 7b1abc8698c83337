"""Which code computes a job: the runner registered for its kind (`JOB_RUNNERS`), given the data
the job reads."""

from __future__ import annotations

import torch

from audit.core.registry import JOB_RUNNERS
from audit.data.datasets import AuditData, prepare_data
from audit.engine.job import OBSERVE, Job
from audit.data.poison import poisoned
from audit.config.spec import Spec
from audit.engine.store import Store

def run_job(job: Job, spec: Spec, store: Store, data: AuditData | None = None) -> None:
    """Compute one job and write its artifact (a failure of the method is an artifact too); `data`
    is the spec's prepared data where the caller holds it (a worker that was sent it)."""
    meta = {"kind": job.kind, "label": job.label, "params": job.params, "inputs": list(job.inputs)}
    data = _data_of(job, prepare_data(spec) if data is None else data)
    JOB_RUNNERS.get(job.kind, f"job {job.label}")(job, spec, data, store, torch.device(job.params["device"]), meta)


def _data_of(job: Job, data: AuditData) -> AuditData:
    """The clean data, or for the jobs that train on the original's pool, the pool with the
    trigger planted (observations ask the clean pool and, besides, the triggered queries)."""
    settings = job.params.get("backdoor")
    if settings and job.kind != OBSERVE:
        return poisoned(data, settings["fraction"], settings["target"], settings["size"])
    return data
