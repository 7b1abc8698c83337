"""Runs a plan's jobs in dependency order, in this process or in a pool of worker processes.

A job whose artifact is already in the store is a cache hit, logged and skipped. Only
whole artifacts exist in the store, so a killed run resumes where it stopped.

Every CPU job runs on one intra-op thread: floating-point reductions split across threads
round differently, and a model's weights must not depend on how many workers trained it.
Parallelism comes from running jobs side by side (`workers`).
"""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

import torch

from audit.dispatch import run_job
from audit.plan import Job
from audit.progress import Progress
from audit.registry import allow_plugins
from audit.spec import Spec
from audit.store import Store


CPU_THREADS_PER_JOB = 1


def _timed_job(job: Job, spec: Spec, store_root: str) -> tuple[float, str]:
    allow_plugins(spec.audit.plugins)  # a worker process receives the spec without validating it
    threads = torch.get_num_threads()
    if job.params.get("device") == "cpu":
        torch.set_num_threads(CPU_THREADS_PER_JOB)
    try:
        store = Store(store_root)
        started = time.perf_counter()
        run_job(job, spec, store)
        return time.perf_counter() - started, store.meta(job.key).get("status", "ok")
    finally:
        torch.set_num_threads(threads)


def execute(jobs: list[Job], spec: Spec, store: Store, workers: int = 1, progress: Progress | None = None) -> None:
    """Bring every job's artifact into the store."""
    progress = progress or Progress(len(jobs), enabled=False)
    store.clear_scratch()
    pending = []
    for job in jobs:
        if store.has(job.key):
            progress.hit(job.label, job.key)
        else:
            pending.append(job)
    if workers <= 1:
        for job in pending:
            progress.start(job.label)
            seconds, status = _timed_job(job, spec, str(store.root))
            progress.finish(job.label, seconds, status)
    else:
        _execute_parallel(pending, spec, store, workers, progress)
    progress.close()


def _execute_parallel(pending: list[Job], spec: Spec, store: Store, workers: int, progress: Progress) -> None:
    waiting = list(pending)
    running: dict[Future, Job] = {}
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        while waiting or running:
            ready = [job for job in waiting if all(store.has(key) for key in job.inputs)]
            for job in ready:
                waiting.remove(job)
                progress.start(job.label)
                running[pool.submit(_timed_job, job, spec, str(store.root))] = job
            if not running:
                missing = {key for job in waiting for key in job.inputs if not store.has(key)}
                raise RuntimeError(f"jobs wait for inputs no job produces: {sorted(missing)[:3]}")
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                job = running.pop(future)
                seconds, status = future.result()
                progress.finish(job.label, seconds, status)
