"""Choosing where the jobs run (`--executor`, `[audit] executor`), the shared dependency-order
scheduler, and the gpu executor's scheduling on pseudo-devices that name the CPU."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

from audit.config.spec import spec_from_dict
from audit.core.errors import SalunInputError
from audit.engine import gpu_executor
from audit.engine.execute import check_executor
from audit.engine.gpu_executor import run_on_devices
from audit.engine.job import TRAIN, Job
from audit.engine.options import ExecutorChoice, ExecutorOptions
from audit.engine.progress import Progress
from audit.engine.scheduler import PoolSlots, run_in_order
from audit.engine.store import DIGESTS, Store
from audit.engine.timed import timed_job
from audit.results.document import load_results
from helpers import small_config, small_spec, write_toml

ROOT = Path(__file__).resolve().parents[2]
TINY = small_config(audit={"seeds": 2, "reports": []}, train={"epochs": 2},
                    unlearners={"identity": {}, "finetune": {"epochs": 1}})
CPU = torch.device("cpu")


def tiny_spec(folder: Path):
    return spec_from_dict({**TINY, "audit": {**TINY["audit"], "store": str(folder / "store")}}, base_dir=folder)


def tiny_plan(folder: Path):
    from audit.data.datasets import prepare_data
    from audit.tasks.classification.plan import build_plan

    spec = tiny_spec(folder)
    return spec, build_plan(spec, prepare_data(spec), CPU)


def assert_one_line(code: int, err: str, fragment: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith("salun: error: ") and fragment in lines[0], lines[0]


@pytest.mark.parametrize(("choice", "spec_executor", "expected"), [
    (ExecutorChoice(), "local", "local"),
    (ExecutorChoice(workers=2), "local", "processes"),
    (ExecutorChoice(executor="processes", workers=2), "local", "processes"),
    (ExecutorChoice(), "ray", "ray"),
    (ExecutorChoice(workers=3), "ray", "ray"),
    (ExecutorChoice(executor="local"), "ray", "local"),
])
def test_the_command_line_overrides_the_spec_and_workers_alone_still_mean_processes(choice, spec_executor, expected):
    audit = spec_from_dict(small_config(audit={"executor": spec_executor, "jobs_per_gpu": 3})).audit
    options = choice.resolve(audit)
    assert options.executor == expected
    assert options.workers == choice.workers and options.jobs_per_gpu == 3


@pytest.mark.parametrize(("choice", "spec_audit", "fragment"), [
    (ExecutorChoice(executor="local", workers=2), {}, "--workers: the local executor runs one job at a time"),
    (ExecutorChoice(executor="gpu", workers=2), {}, "--workers: the gpu executor runs one worker per GPU"),
    (ExecutorChoice(ray_address="auto", workers=2), {"executor": "ray"}, "(audit.ray_address) has its own"),
    (ExecutorChoice(ray_address="auto"), {}, "--ray-address: only the ray executor joins a cluster"),
])
def test_contradictory_executor_options_are_refused_naming_the_option(choice, spec_audit, fragment):
    with pytest.raises(SalunInputError, match="^--") as error:
        choice.resolve(spec_from_dict(small_config(audit=spec_audit)).audit)
    assert fragment in str(error.value)


def test_a_misspelt_executor_on_the_command_line_names_audit_executor_before_any_work(cli, tmp_path):
    config = write_toml(tmp_path / "a.toml", TINY)
    code, _, err = cli("audit", str(config), "--executor", "rya", cwd=tmp_path)
    assert_one_line(code, err, "audit.executor: unknown executor 'rya' (did you mean 'ray'?); known: gpu, local, "
                               "processes, ray")
    assert not (tmp_path / "salun-report").exists() and not (tmp_path / "store").exists()


def test_a_misspelt_executor_in_the_config_names_audit_executor(cli, tmp_path):
    config = write_toml(tmp_path / "a.toml", small_config(audit={"executor": "proceses"}))
    code, _, err = cli("audit", str(config), cwd=tmp_path)
    assert_one_line(code, err, "audit.executor: unknown executor 'proceses' (did you mean 'processes'?)")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_the_gpu_executor_without_a_gpu_is_one_line_naming_audit_executor(cli, tmp_path):
    code, _, err = cli("audit", str(write_toml(tmp_path / "a.toml", TINY)), "--executor", "gpu", cwd=tmp_path)
    assert_one_line(code, err, "audit.executor: 'gpu' runs the jobs on GPUs, but PyTorch sees none")


def test_the_gpu_executor_refuses_an_audit_on_the_cpu(monkeypatch):
    monkeypatch.setattr(gpu_executor, "visible_devices", lambda: ["cuda:0"])
    with pytest.raises(SalunInputError, match="^audit.executor: 'gpu' runs the jobs on GPUs, but audit.device is cpu"):
        check_executor(ExecutorOptions(executor="gpu"), CPU)
    assert check_executor(ExecutorOptions(executor="gpu"), torch.device("cuda")) is gpu_executor.Gpu


def test_ray_missing_is_one_line_saying_how_to_install_it(cli, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails, as where it is not installed
    code, _, err = cli("audit", str(write_toml(tmp_path / "a.toml", TINY)), "--executor", "ray", cwd=tmp_path)
    assert_one_line(code, err, "audit.executor: 'ray' needs Ray: pip install 'salun[ray]'")


def _imports_of(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_only_the_ray_executor_imports_ray_and_salun_runs_without_loading_it():
    importers = [str(path.relative_to(ROOT)) for package in ("audit", "attacks", "unlearners", "reports")
                 for path in sorted((ROOT / package).rglob("*.py")) if "ray" in _imports_of(path)]
    assert importers == ["audit/engine/ray_executor.py"]
    loaded = subprocess.run([sys.executable, "-c", "import sys, audit.cli, audit.pipeline, audit.verify, "
                             "audit.engine.execute; print('ray' in sys.modules)"],
                            capture_output=True, text=True, timeout=120)
    assert loaded.stdout.strip() == "False", loaded.stderr


def test_where_the_jobs_run_enters_no_job_key_and_no_spec_digest(tmp_path):
    from audit.data.datasets import prepare_data
    from audit.tasks.classification.plan import build_plan

    specs = [small_spec(tmp_path, audit=audit) for audit in
             ({}, {"executor": "ray", "jobs_per_gpu": 4, "ray_address": "auto", "ray_max_in_flight": 8,
                   "ray_store": "/shared/store"})]
    assert specs[0].digest() == specs[1].digest()
    plans = [build_plan(spec, prepare_data(spec), CPU) for spec in specs]
    assert [job.key for job in plans[0].jobs] == [job.key for job in plans[1].jobs]


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    """The tiny audit, run with `salun audit --executor local` from the command line."""
    from audit.cli import main

    folder = tmp_path_factory.mktemp("local-run")
    config = write_toml(folder / "audit.toml", {**TINY, "audit": {**TINY["audit"], "store": str(folder / "store")}})
    assert main(["-q", "audit", str(config), "--out", str(folder / "out"), "--executor", "local"]) == 0
    return folder


def test_the_manifest_records_the_executor(local_run, cli):
    results = load_results(local_run / "out" / "results.json")
    assert results["manifest"]["executor"] == {"name": "local"}
    assert results["spec"]["audit"]["executor"] == "local"
    code, _, err = cli("verify", str(local_run / "out" / "results.json"), "--executor", "gpuu")
    assert_one_line(code, err, "audit.executor: unknown executor 'gpuu' (did you mean 'gpu'?)")


def _artifact_digests(store: Path) -> dict[str, list[str]]:
    """Each artifact's digests of its weights and arrays (meta.json holds timings)."""
    return {folder.name: sorted(line for line in (folder / DIGESTS).read_text().splitlines() if "meta.json" not in line)
            for folder in sorted((store / "objects").glob("*/*"))}


def timed_and_noted(job: Job, spec, store_root: str) -> tuple[float, str]:
    """The job as a worker runs it, noting when and on which device it ran."""
    started = time.time()
    seconds, status = timed_job(job, spec, store_root)
    line = {"label": job.label, "device": gpu_executor.worker_device, "pid": os.getpid(), "start": started,
            "end": time.time()}
    with open(Path(store_root).parent / "timeline.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps(line) + "\n")
    return seconds, status


def _written(artifact: Path) -> float:
    """When the artifact's last file was written (file times lag the clock, never lead it)."""
    return max(path.stat().st_mtime for path in artifact.iterdir())


def _most_at_once(rows: list[dict]) -> int:
    edges = sorted([(row["start"], 1) for row in rows] + [(row["end"], -1) for row in rows])
    running = most = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    return most


def test_the_gpu_scheduler_on_two_pseudo_devices_keeps_order_and_its_bound_and_computes_the_local_artifacts(
        local_run, tmp_path):
    spec, plan = tiny_plan(tmp_path)
    progress = Progress(len(plan.jobs), enabled=False)
    run_on_devices(plan.jobs, spec, Store(spec.audit.store), progress, ["cpu:0", "cpu:1"], jobs_per_gpu=2,
                   task=timed_and_noted)
    assert progress.done == len(plan.jobs) and progress.cached == 0
    local = _artifact_digests(local_run / "store")
    assert _artifact_digests(tmp_path / "store") == local and len(local) == len(plan.jobs)

    rows = {row["label"]: row for row in map(json.loads, (tmp_path / "timeline.jsonl").read_text().splitlines())}
    assert set(rows) == {job.label for job in plan.jobs}
    assert sum(len(job.inputs) for job in plan.jobs) > len(plan.jobs) // 2, "the plan should have dependencies"
    store = Store(tmp_path / "store")
    for job in plan.jobs:  # an input is ready once its artifact is in the store, which its worker may still be noting
        assert all(rows[job.label]["start"] >= _written(store.path(key)) for key in job.inputs), job.label
    for device in ("cpu:0", "cpu:1"):
        on_device = [row for row in rows.values() if row["device"] == device]
        assert on_device, f"no job ran on {device}"
        assert _most_at_once(on_device) <= 2 and len({row["pid"] for row in on_device}) <= 2


def _jobs(count: int) -> list[Job]:
    return [Job(kind=TRAIN, params={"device": "cpu", "n": n}, inputs=(), label=f"job {n}") for n in range(count)]


class _Pool:
    """A stand-in for a process pool: runs each call on a thread."""

    def __init__(self):
        self.threads = ThreadPoolExecutor(4)
        self.calls = 0

    def submit(self, task, *args) -> Future:
        self.calls += 1
        return self.threads.submit(task, *args)

    def shutdown(self, wait=True, cancel_futures=False):
        self.threads.shutdown(wait=wait, cancel_futures=cancel_futures)


def test_each_job_goes_to_the_device_with_the_fewest_jobs_running(tmp_path):
    gate = threading.Event()

    def held(job, spec, root):
        gate.wait(10)
        return 0.0, "ok"

    pools = [_Pool(), _Pool()]
    slots = PoolSlots(pools, 2, held, None, str(tmp_path), "fewer")
    jobs = _jobs(4)
    futures = [slots.submit(job) for job in jobs]
    assert [pool.calls for pool in pools] == [2, 2] and slots.running == [2, 2] and slots.capacity == 4
    gate.set()
    assert slots.collect(jobs[1], futures[1]) == (0.0, "ok")
    assert slots.running == [2, 1]
    slots.submit(jobs[1])
    assert [pool.calls for pool in pools] == [2, 3]
    for pool in pools:
        pool.shutdown()


class _ThreadSlots:
    """Slots on threads whose jobs store a bare artifact, counting how many run at once."""

    def __init__(self, store: Store, capacity: int):
        self.store, self.capacity = store, capacity
        self.threads = ThreadPoolExecutor(8)
        self.lock = threading.Lock()
        self.now = self.most = 0
        self.order: list[str] = []

    def _run(self, job: Job) -> tuple[float, str]:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
            self.order.append(f"start {job.label}")
        time.sleep(0.2)
        with self.lock:  # the end is noted before the artifact appears: a job that reads it starts after
            self.now -= 1
            self.order.append(f"end {job.label}")
            self.store.put(job.key, {"label": job.label})
        return 0.2, "ok"

    def submit(self, job: Job) -> Future:
        return self.threads.submit(self._run, job)

    def collect(self, job: Job, future: Future) -> tuple[float, str]:
        return future.result()

    def stop(self) -> None:
        self.threads.shutdown(cancel_futures=True)

    def close(self) -> None:
        self.threads.shutdown()


def test_the_scheduler_runs_no_more_than_capacity_at_once_and_each_job_after_its_inputs(tmp_path):
    store = Store(tmp_path / "store")
    ready = _jobs(5)
    last = Job(kind=TRAIN, params={"device": "cpu"}, inputs=(ready[3].key, ready[4].key), label="last")
    slots = _ThreadSlots(store, capacity=2)
    run_in_order([*ready, last], store, Progress(6, enabled=False), slots)
    assert slots.most == 2
    assert slots.order.index("start last") > max(slots.order.index("end job 3"), slots.order.index("end job 4"))
    assert slots.order.index("start job 2") > min(slots.order.index("end job 0"), slots.order.index("end job 1"))


def test_a_failed_job_stops_every_slot_and_raises_its_error(tmp_path):
    stopped = []

    class FailingSlots:
        capacity = 2

        def __init__(self):
            self.threads = ThreadPoolExecutor(2)

        def submit(self, job):
            def fail():
                raise SalunInputError(f"{job.label} failed")

            return self.threads.submit(fail)

        def collect(self, job, future):
            return future.result()

        def stop(self):
            stopped.append(True)

        def close(self):
            raise AssertionError("closed after a failure")

    first = _jobs(2)
    jobs = [*first, Job(kind=TRAIN, params={"device": "cpu"}, inputs=(first[0].key,), label="reads job 0")]
    with pytest.raises(SalunInputError, match="job . failed"):
        run_in_order(jobs, Store(tmp_path / "store"), Progress(len(jobs), enabled=False), FailingSlots())
    assert stopped == [True]
