"""Whole audits: repeatability, resuming after a kill, and the controls on the default example."""

import logging
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from audit.engine.options import ExecutorChoice
from audit.pipeline import run_audit
from audit.results.document import load_results, without_timings
from audit.config.spec import default_spec, load_spec, spec_from_dict
from helpers import small_config, write_toml

RUN = small_config(audit={"seeds": 3}, train={"epochs": 40})


def audit_in(folder: Path, monkeypatch, workers: int = 1) -> dict:
    """The RUN spec audited from `folder`, with its store at the same relative path every time."""
    folder.mkdir(parents=True, exist_ok=True)
    monkeypatch.chdir(folder)
    spec = load_spec(write_toml(folder / "audit.toml", RUN))
    run_audit(spec, "out", executor=ExecutorChoice(workers=workers), show_progress=False)
    return load_results(folder / "out" / "results.json")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    with pytest.MonkeyPatch.context() as monkeypatch:
        return audit_in(tmp_path_factory.mktemp("reference"), monkeypatch)


def test_two_runs_of_one_spec_give_identical_results(reference, tmp_path, monkeypatch):
    again = audit_in(tmp_path / "again", monkeypatch)
    assert without_timings(again) == without_timings(reference)
    assert again["created"] and again["metrics"]["finetune"]["runtime_s"]["mean"] > 0


def test_results_carry_the_manifest_and_every_metric_with_its_uncertainty(reference):
    manifest = reference["manifest"]
    assert reference["schema"] == "salun.results/1"
    assert len(manifest["spec_digest"]) == 64 and len(manifest["data_digest"]) == 64
    assert manifest["seeds"] == [0, 1, 2]
    assert len(manifest["artifacts"]["original"]) == 3
    assert {p["name"] for p in manifest["plugins"]} >= {"digits", "mlp", "finetune", "identity"}
    assert manifest["environment"]["device"] == "cpu"
    for method, row in reference["metrics"].items():
        for name in ("UA", "RA", "TA", "MIA", "avg_gap", "runtime_s"):
            assert row[name]["n"] == 3 and len(row[name]["per_seed"]) == 3
            assert row[name]["ci95"][0] <= row[name]["mean"] <= row[name]["ci95"][1]
        for name in ("UA", "RA", "TA", "MIA", "avg_gap"):
            assert 0 <= row[name]["mean"] <= 1
    rows = [v for v in reference["verdicts"] if v["rule"] in reference["policy"]["rules"]]
    assert reference["policy"]["default"] and len(rows) == len(reference["metrics"]) * len(reference["policy"]["rules"])
    for row in rows:
        if row["probe"].startswith("equivalence.per_example"):  # 3 models per side: KS p >= 0.1
            assert row["verdict"] == "INCONCLUSIVE" and "smallest p-value is 0.1" in row["reason"]
        if row["probe"].startswith("mia."):
            assert row["verdict"] == "INCONCLUSIVE" and "attacks.run is empty" in row["reason"]
    assert reference["method_verdicts"]["identity"]["verdict"] == "FAIL"
    assert {p["method"] for p in reference["probes"]} == set(RUN["unlearners"])


def _artifacts(store: Path) -> set[str]:
    objects = store / "objects"
    return {p.name for p in objects.glob("*/*")} if objects.exists() else set()


def test_a_killed_audit_resumes_from_every_finished_job(reference, tmp_path, monkeypatch, caplog):
    folder = tmp_path / "killed"
    folder.mkdir()
    write_toml(folder / "audit.toml", RUN)
    command = [sys.executable, "-m", "audit.cli", "-q", "audit", "audit.toml", "--out", "out", "--workers", "2"]
    process = subprocess.Popen(command, cwd=folder, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while len(_artifacts(folder / ".salun-store")) < 8 and time.time() < deadline and process.poll() is None:
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the audit ended before it could be killed"
    finished = _artifacts(folder / ".salun-store")
    assert len(finished) >= 8

    with caplog.at_level(logging.DEBUG, logger="salun"):
        resumed = audit_in(folder, monkeypatch)
    hits = {line.split("[")[-1].rstrip("]") for line in caplog.messages if "cache hit:" in line}
    ran = [line for line in caplog.messages if re.match(r"\[\S+\] done ", line)]
    assert {key[:12] for key in finished} == hits
    assert len(ran) == len(_artifacts(folder / ".salun-store")) - len(finished) > 0
    assert without_timings(resumed) == without_timings(reference)


def test_a_diverging_method_fails_with_its_reason_instead_of_crashing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = small_config(audit={"seeds": 2, "store": "s"},
                          unlearners={"identity": {}, "grad_ascent": {"lr": 100.0, "epochs": 3}})
    results = run_audit(load_spec(write_toml(tmp_path / "a.toml", config)), "out", show_progress=False)
    failures = results["metrics"]["grad_ascent"]["failures"]
    assert [f["seed"] for f in failures] == [0, 1]
    assert all("non-finite" in f["reason"] or "loss became" in f["reason"] for f in failures)
    assert results["verdict"] == "FAIL" and "grad_ascent" in results["verdict_reason"]
    assert results["metrics"]["identity"]["failures"] == []
    assert "failed on 2 seed(s)" in (tmp_path / "out" / "report.html").read_text()


def test_the_default_example_shows_what_unlearning_should_and_should_not_look_like(default_example):
    results, out = default_example
    sizes = results["scope"]
    metrics, original = results["metrics"], results["populations"]["original"]

    def mean(row, name):
        return row[name]["mean"]

    def binomial_se(p, *counts):
        return math.sqrt(max(p * (1 - p), 1e-4) * sum(1 / n for n in counts))

    for retrained in (metrics["retrain"], results["populations"]["reference_retrain"]):
        test_error = 1 - mean(retrained, "TA")
        assert abs(mean(retrained, "UA") - test_error) <= 3 * binomial_se(test_error, sizes["forget_size"], sizes["test_size"])
    training_error = (mean(original, "UA") * sizes["forget_size"]
                      + (1 - mean(original, "RA")) * sizes["retain_size"]) / sizes["pool"]
    assert abs(mean(metrics["identity"], "UA") - training_error) <= 3 * binomial_se(training_error, sizes["forget_size"])
    identity_gap, retrain_gap = metrics["identity"]["avg_gap"], metrics["retrain"]["avg_gap"]
    assert identity_gap["ci95"][0] > retrain_gap["ci95"][1]
    assert identity_gap["mean"] > 2 * retrain_gap["mean"]
    assert {p.name for p in out.iterdir()} >= {"results.json", "report.html", "report.pdf", "junit.xml"}
    controls = results["method_verdicts"]
    assert controls["identity"]["verdict"] == "FAIL" and controls["identity"]["control_problem"] is None
    # 10 models per side cannot give the per-example rule the power to pass anything: the retrain
    # control is INCONCLUSIVE, and says how many models would decide it
    assert controls["retrain"]["verdict"] == "INCONCLUSIVE"
    assert "models per side would reach 80%" in controls["retrain"]["undecided_reason"]
    assert results["verdict"] == "FAIL" and "salun" in results["verdict_reason"]
    for attack, summary in results["mia"]["methods"]["retrain"].items():  # a clean null
        if "epsilon_lower_bound" in summary:
            assert summary["epsilon_lower_bound"]["value"] == 0.0, attack


@pytest.mark.slow
def test_with_enough_models_the_policy_passes_the_retrain_control_and_fails_identity(tmp_path):
    config = default_spec().to_dict()
    config["audit"].update(seeds=40, store=str(tmp_path / "store"), reports=[])
    config["unlearners"] = {"identity": {"method": "identity"}, "retrain": {"method": "retrain"}}
    results = run_audit(spec_from_dict(config, base_dir=tmp_path), tmp_path / "out", show_progress=False)
    controls = results["method_verdicts"]
    assert controls["identity"]["verdict"] == "FAIL"
    assert controls["retrain"]["verdict"] == "PASS", [r["reason"] for r in results["verdicts"]
                                                     if r["method"] == "retrain" and r["verdict"] != "PASS"]
    assert results["verdict"] == "PASS"


@pytest.mark.slow
def test_worker_processes_give_the_same_results_as_one_process(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = default_spec()
    resolved = spec.to_dict()
    in_process = run_audit(spec, "one", show_progress=False)
    resolved["audit"]["store"] = "second-store"
    in_workers = run_audit(spec_from_dict(resolved), "two", executor=ExecutorChoice(workers=2), show_progress=False)
    for results in (in_process, in_workers):
        results["spec"]["audit"].pop("store")
    assert without_timings(in_workers) == without_timings(in_process)
