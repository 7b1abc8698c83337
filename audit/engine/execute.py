"""Runs a plan's jobs in dependency order, with the executor registered as "local" (in this
process) or "processes" (a pool of worker processes): an executor takes the jobs not yet in
the store, the spec, the store, the number of workers and the progress display.

A job whose artifact is already in the store is a cache hit, logged and skipped. Only
whole artifacts exist in the store, so a killed run resumes where it stopped.

Every CPU job runs on one intra-op thread: floating-point reductions split across threads
round differently, and a model's weights must not depend on how many workers trained it.
Parallelism comes from running jobs side by side (`workers`).
"""

from __future__ import annotations

import errno
import multiprocessing
import os
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

import torch

from audit.engine.dispatch import run_job
from audit.core.errors import SalunEnvironmentError
from audit.engine.job import Job
from audit.engine.progress import Progress
from audit.core.registry import EXECUTORS, allow_plugins
from audit.config.spec import Spec
from audit.engine.store import Store
from audit.engine.worker_lifetime import bind_to_parent


CPU_THREADS_PER_JOB = 1
WRITE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG}
RESUME_HINT = "every finished job is kept in the store and a rerun resumes"


def _timed_job(job: Job, spec: Spec, store_root: str) -> tuple[float, str]:
    allow_plugins(spec.audit.plugins)  # a worker process receives the spec without validating it
    threads = torch.get_num_threads()
    if job.params.get("device") == "cpu":
        torch.set_num_threads(CPU_THREADS_PER_JOB)
    try:
        store = Store(store_root)
        started = time.perf_counter()
        try:
            run_job(job, spec, store)
        except OSError as error:
            if error.errno not in WRITE_ERRORS:
                raise
            raise SalunEnvironmentError(
                f"audit.store: cannot write {job.label} to {store_root}: {error.strerror}; "
                f"free space or make it writable: {RESUME_HINT}") from None
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
    EXECUTORS.get("local" if workers <= 1 else "processes")(pending, spec, store, workers, progress)
    progress.close()


@EXECUTORS.register("local")
def run_here(pending: list[Job], spec: Spec, store: Store, workers: int, progress: Progress) -> None:
    """One job after another in this process, in the plan's order."""
    for job in pending:
        progress.start(job.label)
        seconds, status = _timed_job(job, spec, str(store.root))
        progress.finish(job.label, seconds, status)


@EXECUTORS.register("processes")
def run_in_processes(pending: list[Job], spec: Spec, store: Store, workers: int, progress: Progress) -> None:
    """`workers` spawned worker processes, each job as soon as its inputs are in the store."""
    waiting = list(pending)
    running: dict[Future, Job] = {}
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=bind_to_parent,
                               initargs=(os.getpid(),))
    try:
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
                try:
                    seconds, status = future.result()
                except BrokenProcessPool:
                    raise SalunEnvironmentError(
                        f"a worker process died while running {job.label} (killed, or out of memory: "
                        f"try fewer --workers); {RESUME_HINT}") from None
                progress.finish(job.label, seconds, status)
    except BaseException:
        _stop_now(pool)
        raise
    pool.shutdown(wait=True)


def _stop_now(pool: ProcessPoolExecutor) -> None:
    """Kill the workers instead of waiting for the jobs they run (a Ctrl-C, or a failed job):
    a job's artifact appears whole or not at all, so nothing finished is lost."""
    workers = list((pool._processes or {}).values())  # the public API can only wait for them
    pool.shutdown(wait=False, cancel_futures=True)
    for process in workers:
        process.kill()
    for process in workers:
        process.join(timeout=5)
