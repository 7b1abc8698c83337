"""One job, timed, as every executor runs it: on one intra-op thread for a CPU job, with a full or
read-only disk reported as one line.

Floating-point reductions split across threads round differently, and a model's weights must not
depend on how many workers trained it: parallelism comes from running jobs side by side.
"""

from __future__ import annotations

import contextlib
import errno
import time
from collections.abc import Iterator
from typing import Any

import torch

from audit.config.spec import Spec
from audit.core.errors import SalunEnvironmentError
from audit.core.registry import allow_plugins
from audit.data.datasets import AuditData
from audit.engine.dispatch import run_job
from audit.engine.job import Job
from audit.engine.store import Store

CPU_THREADS_PER_JOB = 1
WRITE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG}
RESUME_HINT = "every finished job is kept in the store and a rerun resumes"


@contextlib.contextmanager
def store_writes(job: Job, where: str) -> Iterator[None]:
    """A disk that refuses `job`'s artifact, as one line naming audit.store."""
    try:
        yield
    except OSError as error:
        if error.errno not in WRITE_ERRORS:
            raise
        raise SalunEnvironmentError(
            f"audit.store: cannot write {job.label} to {where}: {error.strerror}; "
            f"free space or make it writable: {RESUME_HINT}") from None


def run_timed(job: Job, spec: Spec, store: Any, where: str, data: AuditData | None = None) -> tuple[float, str]:
    """Run `job` into `store` (a Store, or anything with its reads and `put`); its seconds and status."""
    allow_plugins(spec.audit.plugins)  # a worker process receives the spec without validating it
    threads = torch.get_num_threads()
    if job.params.get("device") == "cpu":
        torch.set_num_threads(CPU_THREADS_PER_JOB)
    try:
        started = time.perf_counter()
        with store_writes(job, where):
            run_job(job, spec, store, data)
        return time.perf_counter() - started, store.meta(job.key).get("status", "ok")
    finally:
        torch.set_num_threads(threads)


def timed_job(job: Job, spec: Spec, store_root: str) -> tuple[float, str]:
    """`run_timed` into the store at `store_root`: what a worker process is sent."""
    return run_timed(job, spec, Store(store_root), store_root)
