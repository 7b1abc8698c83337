"""Runs a plan's jobs in dependency order with the executor the options name, from EXECUTORS:
"local" (in this process), "processes" (a pool of worker processes), "gpu" (workers pinned to
each visible GPU, audit.engine.gpu_executor) or "ray" (Ray tasks, audit.engine.ray_executor).

An executor is an object with `run(pending, spec, store, options, progress)`, and optionally
`check(options, device)`, called before any work to refuse what it cannot do, and
`describe(options, device)`, what the manifest records of it beside its name. A job whose
artifact is already in the store is a cache hit, logged and skipped before the executor sees the
rest. Only whole artifacts exist in the store, so a killed run resumes where it stopped.
"""

from __future__ import annotations

from typing import Any

import torch

from audit.config.spec import Spec
from audit.core.registry import EXECUTORS
from audit.engine import gpu_executor, ray_executor  # noqa: F401  (they register "gpu" and "ray")
from audit.engine.job import Job
from audit.engine.options import ExecutorOptions
from audit.engine.populations import group_populations
from audit.engine.progress import Progress
from audit.engine.scheduler import PoolSlots, run_in_order, spawn_pool
from audit.engine.store import Store
from audit.engine.timed import CPU_THREADS_PER_JOB, run_timed, timed_job

__all__ = ["CPU_THREADS_PER_JOB", "check_executor", "execute"]


def check_executor(options: ExecutorOptions, device: torch.device) -> Any:
    """The executor `options` names, once it has said it can run this audit on `device`."""
    executor = EXECUTORS.get(options.executor, "audit.executor")
    check = getattr(executor, "check", None)
    if check is not None:
        check(options, device)
    return executor


def execute(jobs: list[Job], spec: Spec, store: Store, options: ExecutorOptions = ExecutorOptions(),
            progress: Progress | None = None) -> None:
    """Bring every job's artifact into the store."""
    progress = progress or Progress(len(jobs), enabled=False)
    store.clear_scratch()
    pending = []
    for job in jobs:
        if store.has(job.key):
            progress.hit(job.label, job.key)
        else:
            pending.append(job)
    pending = group_populations(pending, spec)
    if pending:
        EXECUTORS.get(options.executor, "audit.executor").run(pending, spec, store, options, progress)
    progress.close()


@EXECUTORS.register("local")
class Local:
    """One job after another in this process, in the plan's order."""

    @staticmethod
    def run(pending: list[Job], spec: Spec, store: Store, options: ExecutorOptions, progress: Progress) -> None:
        for job in pending:
            progress.start(job.label)
            seconds, status = run_timed(job, spec, store, str(store.root))
            progress.finish(job.label, seconds, status)


@EXECUTORS.register("processes")
class Processes:
    """`--workers` spawned worker processes, each job as soon as its inputs are in the store."""

    @staticmethod
    def describe(options: ExecutorOptions, device: torch.device) -> dict[str, Any]:
        return {"workers": options.workers}

    @staticmethod
    def run(pending: list[Job], spec: Spec, store: Store, options: ExecutorOptions, progress: Progress) -> None:
        slots = PoolSlots([spawn_pool(options.workers)], options.workers, timed_job, spec, str(store.root),
                          "try fewer --workers")
        run_in_order(pending, store, progress, slots)
