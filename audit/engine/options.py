"""Where an audit's jobs run: the executor and its options, from the spec's [audit] table with what
the command line overrides. None of it enters a job's key or the spec's digest, so every executor
computes the same artifacts and the same results.json (the manifest records which one ran).
"""

from __future__ import annotations

from dataclasses import dataclass

from audit.config.sections import AuditSection
from audit.core.errors import SalunInputError


@dataclass(frozen=True)
class ExecutorOptions:
    """The resolved choice: `executor` is a name registered in EXECUTORS."""

    executor: str = "local"
    workers: int = 1  # processes: the pool's size; ray: the CPUs of the cluster it starts
    jobs_per_gpu: int = 1
    ray_address: str | None = None  # None: start a local Ray cluster
    ray_max_in_flight: int | None = None  # None: twice the cluster's job slots
    ray_store: str | None = None  # None: the workers return each artifact and this process writes it


@dataclass(frozen=True)
class ExecutorChoice:
    """What a command line asks for; None leaves it to the spec's [audit] table."""

    executor: str | None = None
    workers: int = 1
    ray_address: str | None = None

    def resolve(self, audit: AuditSection) -> ExecutorOptions:
        """The options a run uses. `--workers N` (N > 1) with no executor named, or with the spec's
        `local`, runs `processes`, as it always has."""
        name = self.executor or audit.executor
        if name == "local" and self.workers > 1:
            if self.executor == "local":
                raise SalunInputError(f"--workers: the local executor runs one job at a time in this process; "
                                      f"for {self.workers} workers name --executor processes")
            name = "processes"
        if name == "gpu" and self.workers > 1:
            raise SalunInputError("--workers: the gpu executor runs one worker per GPU, each running "
                                  "audit.jobs_per_gpu jobs at once; set that instead")
        if self.ray_address is not None and name != "ray":
            raise SalunInputError(f"--ray-address: only the ray executor joins a cluster, and this run uses {name}; "
                                  "add --executor ray")
        address = self.ray_address or audit.ray_address
        if name == "ray" and address is not None and self.workers > 1:
            raise SalunInputError(f"--workers: sets the CPUs of the Ray cluster salun starts; the cluster at "
                                  f"{address} (audit.ray_address) has its own")
        return ExecutorOptions(executor=name, workers=self.workers, jobs_per_gpu=audit.jobs_per_gpu,
                               ray_address=address, ray_max_in_flight=audit.ray_max_in_flight,
                               ray_store=audit.ray_store)
