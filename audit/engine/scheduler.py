"""The dependency order every parallel executor keeps: a job starts once each of its inputs is in
the store, at most `capacity` at once, and the plan's order decides among the ready ones.

Where a job runs is a `Slots`: worker processes (`processes`, `gpu`) or Ray tasks (`ray`). A slot's
`collect` returns once the finished job's artifact is in the store, so the jobs that read it are
ready on the next turn. On any error, Ctrl-C included, every slot is stopped at once: an artifact
appears whole or not at all, so nothing finished is lost.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Protocol

from audit.core.errors import SalunEnvironmentError
from audit.engine.job import Job
from audit.engine.progress import Progress
from audit.engine.store import Store
from audit.engine.timed import RESUME_HINT
from audit.engine.worker_lifetime import bind_to_parent


class Slots(Protocol):
    capacity: int  # jobs running at once

    def submit(self, job: Job) -> Future: ...

    def collect(self, job: Job, future: Future) -> tuple[float, str]:
        """A finished job's seconds and status, once its artifact is in the store."""

    def stop(self) -> None:
        """End every running job now."""

    def close(self) -> None:
        """Release the slots after the last job."""


def run_in_order(pending: list[Job], store: Store, progress: Progress, slots: Slots) -> None:
    """Run `pending` (in the plan's dependency order) in `slots`."""
    waiting = list(pending)
    running: dict[Future, Job] = {}
    try:
        while waiting or running:
            for job in [job for job in waiting if all(store.has(key) for key in job.inputs)]:
                if len(running) >= slots.capacity:
                    break
                waiting.remove(job)
                progress.start(job.label)
                running[slots.submit(job)] = job
            if not running:
                missing = {key for job in waiting for key in job.inputs if not store.has(key)}
                raise RuntimeError(f"jobs wait for inputs no job produces: {sorted(missing)[:3]}")
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                job = running.pop(future)
                seconds, status = slots.collect(job, future)
                progress.finish(job.label, seconds, status)
    except BaseException:
        slots.stop()
        raise
    slots.close()


Task = Callable[[Job, Any, str], tuple[float, str]]  # (job, spec, store root) -> (seconds, status)


class PoolSlots:
    """Spawned worker processes that die with this one, in pools of `per_pool` (one pool per GPU,
    or one for all); each job goes to the pool with the fewest running."""

    def __init__(self, pools: list[ProcessPoolExecutor], per_pool: int, task: Task, spec: Any, store_root: str,
                 advice: str):
        self.pools, self.task, self.spec, self.store_root, self.advice = pools, task, spec, store_root, advice
        self.capacity = per_pool * len(pools)
        self.running = [0] * len(pools)
        self.pool_of: dict[Future, int] = {}

    def submit(self, job: Job) -> Future:
        index = min(range(len(self.pools)), key=self.running.__getitem__)
        future = self.pools[index].submit(self.task, job, self.spec, self.store_root)
        self.running[index] += 1
        self.pool_of[future] = index
        return future

    def collect(self, job: Job, future: Future) -> tuple[float, str]:
        self.running[self.pool_of.pop(future)] -= 1
        try:
            return future.result()
        except BrokenProcessPool:
            raise SalunEnvironmentError(f"a worker process died while running {job.label} (killed, or out of "
                                        f"memory: {self.advice}); {RESUME_HINT}") from None

    def stop(self) -> None:
        for pool in self.pools:
            stop_now(pool)

    def close(self) -> None:
        for pool in self.pools:
            pool.shutdown(wait=True)


def spawn_pool(workers: int, initializer: Callable[..., None] = bind_to_parent, *initargs: Any) -> ProcessPoolExecutor:
    """`workers` spawned processes, each started by `initializer(this process's pid, *initargs)`."""
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=initializer, initargs=(os.getpid(), *initargs))


def stop_now(pool: ProcessPoolExecutor) -> None:
    """Kill the workers instead of waiting for the jobs they run (a Ctrl-C, or a failed job)."""
    workers = list((pool._processes or {}).values())  # the public API can only wait for them
    pool.shutdown(wait=False, cancel_futures=True)
    for process in workers:
        process.kill()
    for process in workers:
        process.join(timeout=5)
