"""The ray executor on a local two-CPU Ray cluster (one per module): the local executor's results
and artifacts, artifacts written by the workers into a shared store, a job's error raised as the
job raised it, and a run whose driver was killed resumed from every finished job."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from audit.config.spec import load_spec, spec_from_dict
from audit.core.errors import SalunInputError
from audit.data.datasets import prepare_data
from audit.engine.execute import execute
from audit.engine.job import TRAIN, Job
from audit.engine.options import ExecutorChoice
from audit.engine.store import DIGESTS, Store
from audit.pipeline import run_audit
from audit.results.document import load_results
from audit.tasks.classification.plan import build_plan
from audit.verify import compare
from helpers import processes_where, small_config, write_toml

ray = pytest.importorskip("ray")

RUN = small_config(audit={"seeds": 2, "reports": []}, train={"epochs": 30},
                   unlearners={"identity": {}, "finetune": {"epochs": 1}})
RAY = ExecutorChoice(executor="ray")
STORE = ".salun-store"


@pytest.fixture(scope="module")
def cluster():
    """A local Ray cluster of two CPUs, which the executor joins instead of starting its own."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    yield
    ray.shutdown()


def audited(folder: Path, executor: ExecutorChoice = ExecutorChoice()) -> dict:
    """RUN audited from `folder`, with its store at the same relative path every time."""
    folder.mkdir(parents=True, exist_ok=True)
    write_toml(folder / "audit.toml", RUN)
    cwd = Path.cwd()
    os.chdir(folder)
    try:
        run_audit(load_spec(folder / "audit.toml"), "out", executor=executor, show_progress=False)
    finally:
        os.chdir(cwd)
    return load_results(folder / "out" / "results.json")


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[dict, Path]:
    folder = tmp_path_factory.mktemp("local")
    return audited(folder), folder


def _digests(store: Path) -> dict[str, str]:
    """Each artifact's digests of its weights and arrays (its meta.json holds timings)."""
    return {folder.name: "".join(line for line in (folder / DIGESTS).read_text().splitlines(True)
                                 if "meta.json" not in line)
            for folder in (store / "objects").glob("*/*")}


def _spec(tmp_path: Path, train: dict | None = None, **audit):
    return spec_from_dict({**RUN, "audit": {**RUN["audit"], "store": str(tmp_path / "store"), **audit},
                           "train": {**RUN["train"], **(train or {})}}, base_dir=tmp_path)


def test_a_ray_run_gives_the_local_runs_results_and_artifacts(cluster, reference, tmp_path):
    local, folder = reference
    results = audited(tmp_path, RAY)
    assert compare(local, results) == []
    assert _digests(tmp_path / STORE) == _digests(folder / STORE)
    executor = results["manifest"]["executor"]
    assert executor["name"] == "ray" and executor["artifacts_written_by"] == "the driver"
    assert executor["max_retries"] == 3 and executor["ray"] == ray.__version__
    assert local["manifest"]["executor"] == {"name": "local"}
    assert results["manifest"]["spec_digest"] == local["manifest"]["spec_digest"]


def test_with_a_shared_store_the_workers_write_the_artifacts(cluster, reference, tmp_path):
    spec = _spec(tmp_path, ray_store=str(tmp_path / "store"), ray_max_in_flight=1)
    plan = build_plan(spec, prepare_data(spec), torch.device("cpu"))
    execute(plan.jobs, spec, Store(spec.audit.store), RAY.resolve(spec.audit))
    assert _digests(tmp_path / "store") == _digests(reference[1] / STORE)


def test_a_job_that_fails_on_a_worker_raises_its_own_error_here(cluster, tmp_path):
    spec = _spec(tmp_path)
    store = Store(spec.audit.store)
    broken = Job(kind=TRAIN, params={"device": "cpu"}, inputs=(), label="train without a seed")
    with pytest.raises(KeyError) as error:
        execute([broken], spec, store, RAY.resolve(spec.audit))
    assert error.value.args == ("seed",)
    diverging = _spec(tmp_path, train={"lr": 100.0})
    job = build_plan(diverging, prepare_data(diverging), torch.device("cpu")).jobs[0]
    with pytest.raises(SalunInputError) as error:
        execute([job], diverging, store, RAY.resolve(diverging.audit))
    assert str(error.value).startswith(f"train: {job.label} diverged") and "\n" not in str(error.value)


def _artifacts(store: Path) -> set[str]:
    objects = store / "objects"
    return {path.name for path in objects.glob("*/*")} if objects.exists() else set()


@pytest.mark.slow
def test_a_ray_run_whose_driver_is_killed_resumes_from_every_finished_job(cluster, reference, tmp_path, caplog):
    write_toml(tmp_path / "audit.toml", RUN)
    command = [sys.executable, "-m", "audit.cli", "-q", "audit", "audit.toml", "--out", "out", "--executor", "ray",
               "--workers", "2"]
    process = subprocess.Popen(command, cwd=tmp_path, start_new_session=True, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while len(_artifacts(tmp_path / STORE)) < 4 and time.time() < deadline and process.poll() is None:
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)  # the driver and the Ray cluster it started
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the audit ended before it could be killed"
    finished = _artifacts(tmp_path / STORE)
    assert 4 <= len(finished) < len(_digests(reference[1] / STORE))

    with caplog.at_level(logging.DEBUG, logger="salun"):
        resumed = audited(tmp_path, RAY)
    hits = {line.split("[")[-1].rstrip("]") for line in caplog.messages if "cache hit:" in line}
    ran = [line for line in caplog.messages if re.match(r"\[\S+\] done ", line)]
    assert {key[:12] for key in finished} == hits
    assert len(ran) == len(_artifacts(tmp_path / STORE)) - len(finished) > 0
    assert compare(reference[0], resumed) == []


def _in_group(pgid: int) -> list[int]:
    """Live processes of the process group `pgid`."""
    return processes_where(2, pgid, live_only=True)


@pytest.mark.slow
@pytest.mark.parametrize("stop", ["ctrl-c", "sigterm"])
def test_an_interrupted_ray_run_stops_its_cluster_promptly_with_one_line(tmp_path, stop):
    write_toml(tmp_path / "audit.toml", RUN)
    command = [sys.executable, "-m", "audit.cli", "-q", "audit", "audit.toml", "--out", "out", "--executor", "ray"]
    process = subprocess.Popen(command, cwd=tmp_path, start_new_session=True, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 300
        while not _artifacts(tmp_path / STORE) and time.time() < deadline and process.poll() is None:
            time.sleep(0.05)
        assert process.poll() is None, "the audit ended before the test could interrupt it"
        started = time.time()
        if stop == "ctrl-c":
            os.killpg(process.pid, signal.SIGINT)
        else:
            os.kill(process.pid, signal.SIGTERM)  # Ray's own SIGTERM handler would abort with a stack dump
        _, stderr = process.communicate(timeout=60)
        assert time.time() - started < 20 and process.returncode == 130
        assert stderr.strip().splitlines() == [
            "salun: interrupted; finished jobs are kept in the store and a rerun resumes"]
        deadline = time.time() + 10
        while _in_group(process.pid) and time.time() < deadline:
            time.sleep(0.2)
        assert _in_group(process.pid) == [], "the Ray cluster outlived the audit that started it"
    finally:
        if _in_group(process.pid):
            os.killpg(process.pid, signal.SIGKILL)
