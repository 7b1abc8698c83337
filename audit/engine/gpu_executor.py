"""The "gpu" executor: the jobs spread over every GPU PyTorch sees (CUDA_VISIBLE_DEVICES decides
which), `audit.jobs_per_gpu` at once on each, in dependency order (audit.engine.scheduler).

Each GPU gets its own pool of `jobs_per_gpu` worker processes, each pinned to it with
`torch.cuda.set_device`, so a job's `device` stays "cuda" and its key names no GPU. Processes rather
than threads: a small model's training is bound by Python's per-step work, which threads sharing one
interpreter lock cannot overlap, and a CUDA error (out of memory, an illegal access) spoils the
context of the whole process, here one job's. Each worker prepares the spec's data once, keeps the
subsets the jobs copy to the GPU there already, and runs cuDNN and cuBLAS deterministically
(CUDA_DETERMINISM, recorded in the manifest).

The device list is a parameter of `run_on_devices`, so the scheduling runs on a machine without a
GPU with pseudo-devices that name the CPU.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from audit.config.spec import Spec
from audit.core.errors import SalunInputError
from audit.core.registry import EXECUTORS, allow_plugins
from audit.data.datasets import AuditData, prepare_data
from audit.engine.job import Job
from audit.engine.options import ExecutorOptions
from audit.engine.progress import Progress
from audit.engine.scheduler import PoolSlots, Task, run_in_order, spawn_pool
from audit.engine.store import Store
from audit.engine.timed import timed_job
from audit.engine.worker_lifetime import bind_to_parent

CUBLAS_WORKSPACE = ":4096:8"  # what cuBLAS needs to pick deterministic kernels
CUDA_DETERMINISM = {
    "cudnn_deterministic": True,
    "cudnn_benchmark": False,
    "deterministic_algorithms": "warn_only",  # an op with no deterministic kernel warns instead of failing the job
    "CUBLAS_WORKSPACE_CONFIG": CUBLAS_WORKSPACE,
}
ON_DEVICE = ("forget_set", "retain_set", "eval_test_set")  # the subsets jobs copy to their device whole

worker_device: str | None = None  # in a worker process: the device it is pinned to


def visible_devices() -> list[str]:
    """One device name per GPU PyTorch sees, in its order."""
    return [f"cuda:{index}" for index in range(torch.cuda.device_count())]


def make_cuda_deterministic() -> None:
    """CUDA_DETERMINISM, before this process's first cuBLAS call."""
    os.environ["CUBLAS_WORKSPACE_CONFIG"] = CUBLAS_WORKSPACE
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True, warn_only=True)


def keep_on_device(data: AuditData, device: torch.device) -> AuditData:
    """`data` with the subsets the jobs copy to `device` held there, so each job's copy is a no-op.

    The pool and the test set stay in host memory: their labels are read as numpy arrays."""
    for name in ON_DEVICE:
        vars(data)[name] = getattr(data, name).to(device)  # the cached properties' slots
    return data


def start_device_worker(parent_pid: int, device: str, spec: Spec) -> None:
    """Pool initializer: die with the parent, pin this process to `device`, prepare the data once."""
    global worker_device
    bind_to_parent(parent_pid)
    worker_device = device
    allow_plugins(spec.audit.plugins)
    data = prepare_data(spec)  # cached for the process: every job it runs reuses it
    if torch.device(device).type == "cuda":
        make_cuda_deterministic()
        torch.cuda.set_device(torch.device(device))
        keep_on_device(data, torch.device("cuda"))


def run_on_devices(pending: list[Job], spec: Spec, store: Store, progress: Progress, devices: list[str],
                   jobs_per_gpu: int, task: Task = timed_job) -> None:
    """Run `pending` in dependency order, `jobs_per_gpu` at once on each of `devices`."""
    pools = [spawn_pool(jobs_per_gpu, start_device_worker, device, spec) for device in devices]
    slots = PoolSlots(pools, jobs_per_gpu, task, spec, str(store.root), "try a smaller audit.jobs_per_gpu")
    run_in_order(pending, store, progress, slots)


@EXECUTORS.register("gpu")
class Gpu:
    """One worker per visible GPU, running audit.jobs_per_gpu jobs at once, each in its own process."""

    @staticmethod
    def check(options: ExecutorOptions, device: torch.device) -> None:
        if not visible_devices():
            shown = os.environ.get("CUDA_VISIBLE_DEVICES")
            where = f" (CUDA_VISIBLE_DEVICES={shown!r})" if shown is not None else ""
            raise SalunInputError(f"audit.executor: 'gpu' runs the jobs on GPUs, but PyTorch sees none{where}; "
                                  "use local or processes")
        if device.type != "cuda":
            raise SalunInputError(f"audit.executor: 'gpu' runs the jobs on GPUs, but audit.device is {device.type}; "
                                  "set audit.device to cuda or auto")

    @staticmethod
    def describe(options: ExecutorOptions, device: torch.device) -> dict[str, Any]:
        return {"gpus": len(visible_devices()), "jobs_per_gpu": options.jobs_per_gpu,
                "cuda_determinism": CUDA_DETERMINISM}

    @staticmethod
    def run(pending: list[Job], spec: Spec, store: Store, options: ExecutorOptions, progress: Progress) -> None:
        run_on_devices(pending, spec, store, progress, visible_devices(), options.jobs_per_gpu)

