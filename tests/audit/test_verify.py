"""salun verify: an audit rerun from scratch reproduces its results.json, and differences are named."""

import copy
import json
from pathlib import Path

import pytest

import audit.verify
from audit.core.errors import SalunInputError
from audit.pipeline import run_audit
from audit.config.spec import default_spec, spec_from_dict
from audit.engine.options import ExecutorChoice
from audit.engine.store import CorruptArtifact
from audit.verify import GPU_ATOL, GPU_RTOL, compare, format_differences, verify
from helpers import small_config

RESULTS = {
    "schema": "salun.results/1",
    "created": "2024-01-01T00:00:00+00:00",
    "command": "salun audit small.toml",
    "manifest": {"environment": {"python": "3.11.7", "torch": "2.3.0", "platform": "Linux-a", "device": "cpu",
                                 "cpu_threads_per_job": 1}},
    "spec": {"audit": {"seeds": 2, "store": "/a/store"}},
    "metrics": {"salun": {"UA": {"mean": 0.25, "per_seed": [0.2, 0.3]}, "runtime_s": {"mean": 1.5}}},
    "verdicts": [{"value": 1, "verdict": "PASS"}, {"value": 2, "verdict": "FAIL"}],
}


def edited(**changes):
    """RESULTS with `path=value` changes (dotted paths, `__` for dots, list indices as ints)."""
    results = copy.deepcopy(RESULTS)
    for path, value in changes.items():
        *parents, last = [int(p) if p.isdigit() else p for p in path.split("__")]
        target = results
        for key in parents:
            target = target[key]
        target[last] = value
    return results


def test_compare_finds_nothing_between_equal_results():
    assert compare(RESULTS, copy.deepcopy(RESULTS)) == []


def test_compare_names_a_changed_number_by_its_dotted_path():
    assert compare(RESULTS, edited(metrics__salun__UA__mean=0.26)) == [
        {"path": "metrics.salun.UA.mean", "expected": 0.25, "actual": 0.26}]


def test_compare_names_list_elements_by_index():
    assert compare(RESULTS, edited(verdicts__1__value=3, metrics__salun__UA__per_seed__0=0.1)) == [
        {"path": "metrics.salun.UA.per_seed[0]", "expected": 0.2, "actual": 0.1},
        {"path": "verdicts[1].value", "expected": 2, "actual": 3}]
    shorter = edited(verdicts=RESULTS["verdicts"][:1])
    assert compare(RESULTS, shorter) == [
        {"path": "verdicts[1]", "expected": RESULTS["verdicts"][1], "actual": "<missing>"}]


def test_compare_reports_a_key_on_one_side_only():
    fewer = copy.deepcopy(RESULTS)
    del fewer["metrics"]["salun"]["UA"]["mean"]
    assert compare(RESULTS, fewer) == [{"path": "metrics.salun.UA.mean", "expected": 0.25, "actual": "<missing>"}]
    assert compare(fewer, RESULTS) == [{"path": "metrics.salun.UA.mean", "expected": "<missing>", "actual": 0.25}]


def test_compare_respects_rtol_and_atol():
    near = edited(metrics__salun__UA__mean=0.25 + 1e-9)
    assert compare(RESULTS, near) != []  # exact by default: bit-identical or different
    assert compare(RESULTS, near, atol=1e-8) == []
    assert compare(RESULTS, near, rtol=1e-7) == []
    assert compare(RESULTS, edited(metrics__salun__UA__mean=0.2501), rtol=GPU_RTOL, atol=GPU_ATOL) != []
    assert compare(RESULTS, edited(verdicts__0__verdict="FAIL"), rtol=1, atol=1) != []  # strings stay exact


def test_compare_ignores_timings_the_command_the_machine_and_the_store():
    other = edited(created="2025-06-01T12:00:00+00:00", command="salun audit --workers 4",
                   manifest__environment__python="3.12.1", manifest__environment__torch="2.5.0",
                   manifest__environment__platform="Linux-b", spec__audit__store="/tmp/fresh")
    other["metrics"]["salun"]["runtime_s"] = {"mean": 99.0}
    assert compare(RESULTS, other) == []
    assert compare(RESULTS, edited(manifest__environment__device="cuda")) != []  # the device is kept


def test_format_differences_truncates_long_lists():
    differences = [{"path": f"eps[{i}]", "expected": 0.5, "actual": "<missing>"} for i in range(25)]
    lines = format_differences(differences, limit=3)
    assert lines == ["eps[0]: expected 0.5, got <missing>", "eps[1]: expected 0.5, got <missing>",
                     "eps[2]: expected 0.5, got <missing>", "... and 22 more"]
    assert format_differences([]) == []


@pytest.fixture(scope="module")
def audited(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("audited")
    spec = spec_from_dict(small_config(audit={"seeds": 2, "store": str(folder / "store")}), base_dir=folder)
    run_audit(spec, folder / "out", show_progress=False)
    return folder / "out" / "results.json"


def test_verify_retrains_from_scratch_and_reproduces_the_results_bit_for_bit(audited, monkeypatch):
    stores = []

    def spy(spec, out, **kwargs):
        stores.append(Path(spec.audit.store))
        return run_audit(spec, out, **kwargs)

    monkeypatch.setattr(audit.verify, "run_audit", spy)
    report = verify(audited)
    assert report == {"verified": True, "identical": True, "differences": [], "damaged": [],
                      "tolerance": {"rtol": 0.0, "atol": 0.0}, "device": "cpu"}
    assert stores[0] != audited.parent.parent / "store" and not stores[0].exists()  # fresh, then removed


def test_verify_names_the_one_number_that_was_changed(audited, tmp_path):
    results = json.loads(audited.read_text())
    recorded = results["metrics"]["finetune"]["UA"]["mean"]
    results["metrics"]["finetune"]["UA"]["mean"] = recorded + 0.01
    (tmp_path / "results.json").write_text(json.dumps(results))
    # the original store serves the trained models: fast, and the rerun is the same computation
    report = verify(tmp_path / "results.json", store=str(audited.parent.parent / "store"))
    assert not report["identical"] and not report["verified"] and report["damaged"] == []
    assert report["differences"] == [{"path": "metrics.finetune.UA.mean", "expected": recorded + 0.01,
                                      "actual": recorded}]
    assert format_differences(report["differences"])[0].startswith("metrics.finetune.UA.mean: expected ")


def test_verify_fails_when_an_artifact_is_damaged_while_the_rerun_reads_it(audited, monkeypatch):
    def damaged_midway(spec, out, **kwargs):
        raise CorruptArtifact("ab" * 32, "original seed=0", "weights.safetensors is missing", "/store/quarantine/x")

    monkeypatch.setattr(audit.verify, "run_audit", damaged_midway)
    report = verify(audited, store=str(audited.parent.parent / "store"))
    assert not report["verified"] and not report["identical"] and report["differences"] == []
    assert report["damaged"] == [{"key": "ab" * 32, "label": "original seed=0",
                                  "problem": "weights.safetensors is missing"}]


def test_verify_rejects_a_results_file_with_an_invalid_spec(audited, tmp_path):
    results = json.loads(audited.read_text())
    results["spec"]["train"]["lr"] = "fast"
    (tmp_path / "results.json").write_text(json.dumps(results))
    with pytest.raises(SalunInputError, match=r"train\.lr"):
        verify(tmp_path / "results.json")


def test_verify_needs_a_gpu_when_the_audit_ran_on_one(audited, tmp_path, monkeypatch):
    results = json.loads(audited.read_text())
    results["manifest"]["environment"]["device"] = "cuda"
    (tmp_path / "results.json").write_text(json.dumps(results))
    monkeypatch.setattr(audit.verify.torch.cuda, "is_available", lambda: False)
    with pytest.raises(SalunInputError, match="cuda"):
        verify(tmp_path / "results.json")


def test_verify_reports_a_missing_results_file(tmp_path):
    with pytest.raises(SalunInputError, match="not found"):
        verify(tmp_path / "results.json")


@pytest.mark.slow
def test_verify_reproduces_the_default_example(tmp_path):
    raw = default_spec().to_dict()
    raw["audit"]["store"] = str(tmp_path / "store")
    run_audit(spec_from_dict(raw, base_dir=tmp_path), tmp_path / "out", executor=ExecutorChoice(workers=2),
              show_progress=False)
    report = verify(tmp_path / "out" / "results.json", executor=ExecutorChoice(workers=2))
    assert report["identical"], "\n".join(format_differences(report["differences"]))


def test_salun_verify_reproduces_the_default_example(default_example, cli):
    _, out = default_example
    store = str(out.parent / "store")  # its trained models: this checks the comparison, the slow test retrains
    assert cli("verify", str(out / "results.json"), "--store", store)[0] == 0


def test_salun_verify_exits_1_naming_an_edited_number(audited, cli, tmp_path):
    edited = json.loads(audited.read_text())
    edited["equivalence"]["finetune"]["neurips2023"]["eps_median"] += 0.5
    (tmp_path / "results.json").write_text(json.dumps(edited))
    code, printed, _ = cli("verify", str(tmp_path / "results.json"), "--store", str(audited.parent.parent / "store"))
    assert code == 1
    assert "1 number(s)" in printed and "equivalence.finetune.neurips2023.eps_median: expected" in printed
