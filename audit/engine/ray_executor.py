"""The "ray" executor: each job a Ray task, in dependency order (audit.engine.scheduler), on a local
cluster of `--workers` CPUs that lives as long as the run, or on the cluster `audit.ray_address`
names. Only this module imports Ray, and only when the executor runs: salun works without it.

A task asks for one CPU, and a CUDA job also for 1/`audit.jobs_per_gpu` of a GPU; at most
`audit.ray_max_in_flight` tasks are submitted at once (by default twice the cluster's job slots),
and a task lost with its worker or node is retried RAY_MAX_RETRIES times. The spec and the prepared
data go into Ray's object store once; each worker keeps the data it was sent for the tasks after.

The workers need not see the store: each task is sent its input artifacts and returns the one it
computed (audit.engine.memory_store), which this process writes with the store's atomic writes, so
a killed run loses at most the jobs in flight and a rerun resumes. With `audit.ray_store`, the
store's path on a filesystem every node shares, the workers read and write the store themselves.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import logging
import signal
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

import torch

from audit.config.spec import Spec
from audit.core.errors import SalunEnvironmentError, SalunInputError
from audit.core.registry import EXECUTORS
from audit.data.datasets import AuditData, prepare_data
from audit.engine.gpu_executor import CUDA_DETERMINISM, make_cuda_deterministic
from audit.engine.job import Job
from audit.engine.memory_store import Artifact, MemoryStore, read_artifact
from audit.engine.options import ExecutorOptions
from audit.engine.progress import Progress
from audit.engine.scheduler import run_in_order
from audit.engine.store import Store
from audit.engine.timed import RESUME_HINT, run_timed, store_writes

RAY_MAX_RETRIES = 3
NEEDS_RAY = "audit.executor: 'ray' needs Ray: pip install 'salun[ray]'"
WORKER_DATA_KEPT = 2  # prepared data sets a worker keeps (one per audit it has served lately)

_worker_data: dict[str, AuditData] = {}  # in a Ray worker: object id -> the data sent under it


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise SalunInputError(NEEDS_RAY) from None
    return ray


def _data_on_worker(ray: Any, ref: Any) -> AuditData:
    if ref.hex() not in _worker_data:
        if len(_worker_data) >= WORKER_DATA_KEPT:
            _worker_data.pop(next(iter(_worker_data)))
        _worker_data[ref.hex()] = ray.get(ref)
    return _worker_data[ref.hex()]


def run_on_worker(job: Job, spec: Spec, data_box: list[Any], inputs: dict[str, Any],
                  shared_store: str | None) -> tuple[float, str, dict[str, Artifact] | None]:
    """The Ray task: run `job`; its seconds, its status and, without a shared store, what it wrote."""
    ray = _ray()
    data = _data_on_worker(ray, data_box[0])  # in a list, so that Ray hands over the reference
    if job.params.get("device") == "cuda":
        make_cuda_deterministic()
    if shared_store is not None:
        return (*run_timed(job, spec, Store(shared_store), shared_store, data), None)
    store = MemoryStore(dict(zip(inputs, ray.get(list(inputs.values())))))
    seconds, status = run_timed(job, spec, store, "a Ray worker's memory", data)
    return seconds, status, store.written


class RaySlots:
    """Ray tasks as the scheduler's slots."""

    def __init__(self, ray: Any, pending: list[Job], spec: Spec, store: Store, options: ExecutorOptions):
        self.ray, self.store, self.shared = ray, store, options.ray_store
        self.task = ray.remote(run_on_worker)
        self.gpu_share = 1.0 / options.jobs_per_gpu
        self.spec_ref = ray.put(spec)
        self.data_box = [ray.put(prepare_data(spec))]
        self.uses = Counter(key for job in pending for key in job.inputs)  # waiting jobs that read each input
        self.sent: dict[str, Any] = {}  # input key -> its artifact in the object store
        self.refs: dict[Future, Any] = {}
        self.capacity = options.ray_max_in_flight or 2 * self._job_slots(pending, options.jobs_per_gpu)

    def _job_slots(self, pending: list[Job], jobs_per_gpu: int) -> int:
        resources = self.ray.cluster_resources()
        if not any(job.params.get("device") == "cuda" for job in pending):
            return max(1, int(resources.get("CPU", 1)))
        if resources.get("GPU", 0) < 1:
            raise SalunInputError("audit.executor: the audit's jobs run on cuda, but the Ray cluster has no GPU")
        return max(1, int(resources["GPU"] * jobs_per_gpu))

    def submit(self, job: Job) -> Future:
        inputs = {} if self.shared else {key: self._sent(key) for key in job.inputs}
        for key in job.inputs:  # the task holds what it was sent; drop what no waiting job reads
            self.uses[key] -= 1
            if self.uses[key] == 0:
                self.sent.pop(key, None)
        gpus = self.gpu_share if job.params.get("device") == "cuda" else 0
        ref = self.task.options(num_cpus=1, num_gpus=gpus, max_retries=RAY_MAX_RETRIES).remote(
            job, self.spec_ref, self.data_box, inputs, self.shared)
        future = ref.future()
        self.refs[future] = ref
        return future

    def _sent(self, key: str) -> Any:
        if key not in self.sent:
            self.sent[key] = self.ray.put(read_artifact(self.store, key))
        return self.sent[key]

    def collect(self, job: Job, future: Future) -> tuple[float, str]:
        self.refs.pop(future)
        try:
            seconds, status, written = future.result()
        except self.ray.exceptions.RayTaskError as error:  # the job raised: raise what it raised
            raise (getattr(error, "cause", None) or error) from error
        except self.ray.exceptions.RayError as error:
            raise SalunEnvironmentError(f"Ray lost {job.label} {RAY_MAX_RETRIES + 1} times ({type(error).__name__}: "
                                        f"a worker or a node died); {RESUME_HINT}") from None
        with store_writes(job, str(self.store.root)):
            for key, artifact in (written or {}).items():
                artifact.write(self.store, key)
        return seconds, status

    def stop(self) -> None:
        for ref in self.refs.values():
            try:
                self.ray.cancel(ref, force=True)
            except Exception:  # a task that finished or died meanwhile needs no cancelling
                pass

    def close(self) -> None:
        self.sent.clear()


def _join_or_start(ray: Any, options: ExecutorOptions) -> bool:
    """Connect to the cluster; True when this run started it (and so ends it)."""
    if ray.is_initialized():
        return False
    quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR}
    with _signal_handlers_kept():
        try:
            if options.ray_address is None:
                ray.init(num_cpus=options.workers, **quiet)
            else:
                ray.init(address=options.ray_address, **quiet)
        except (ConnectionError, ValueError, RuntimeError) as error:
            where = options.ray_address or "a local cluster"
            raise SalunInputError(f"audit.ray_address: cannot start or join {where}: "
                                  f"{' '.join(str(error).split())[:300]}") from None
    return True


@contextlib.contextmanager
def _signal_handlers_kept() -> Iterator[None]:
    """Ray's core installs its own SIGTERM handler, which aborts the process with a stack dump;
    the command line's (stop the jobs, one line, exit 130) is put back."""
    kept = {}
    if threading.current_thread() is threading.main_thread():
        kept = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for number, handler in kept.items():
            if handler is not None:
                signal.signal(number, handler)


@EXECUTORS.register("ray")
class Ray:
    """Ray tasks, on a local cluster of --workers CPUs or on the one audit.ray_address names."""

    @staticmethod
    def check(options: ExecutorOptions, device: torch.device) -> None:
        if importlib.util.find_spec("ray") is None:
            raise SalunInputError(NEEDS_RAY)

    @staticmethod
    def describe(options: ExecutorOptions, device: torch.device) -> dict[str, Any]:
        record: dict[str, Any] = {
            "ray": importlib.metadata.version("ray") if importlib.util.find_spec("ray") else None,
            "cluster": options.ray_address or "local",  # local: started with --workers CPUs
            **({"cpus": options.workers} if options.ray_address is None else {}),
            "max_in_flight": options.ray_max_in_flight,  # null: twice the cluster's job slots
            "max_retries": RAY_MAX_RETRIES,
            "artifacts_written_by": "the workers, into audit.ray_store" if options.ray_store else "the driver",
        }
        if device.type == "cuda":
            record.update(jobs_per_gpu=options.jobs_per_gpu, cuda_determinism=CUDA_DETERMINISM)
        return record

    @staticmethod
    def run(pending: list[Job], spec: Spec, store: Store, options: ExecutorOptions, progress: Progress) -> None:
        ray = _ray()
        started = _join_or_start(ray, options)
        try:
            run_in_order(pending, store, progress, RaySlots(ray, pending, spec, store, options))
        finally:
            if started:
                ray.shutdown()
