"""results.json as tidy DataFrames, and `salun report --format csv`: every frame holds exactly the
numbers of the file, one row per observation, and reads back from its CSV unchanged."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from audit.results.document import check_results
from reports.frames import FRAMES, load_frames

ROOT = Path(__file__).resolve().parents[2]


def test_every_per_seed_value_is_one_row_with_its_seed_and_role(default_example):
    results, out = default_example
    frames = load_frames(out / "results.json")
    metrics = frames["metrics"]
    seeds = results["manifest"]["seeds"]
    tables = {**{(name, name): t for name, t in results["populations"].items()},
              **{(label, "unlearned"): t for label, t in results["metrics"].items()}}
    expected = sum(len(s["per_seed"]) for t in tables.values() for k, s in t.items() if k != "failures")
    assert len(metrics) == expected
    assert set(metrics["role"]) == {"original", "reference_retrain", "unlearned"}
    for (method, role), table in tables.items():
        for metric, summary in table.items():
            if metric == "failures":
                continue
            rows = metrics[(metrics.method == method) & (metrics.role == role) & (metrics.metric == metric)]
            assert list(rows["value"]) == summary["per_seed"]
            assert list(rows["seed"]) == seeds  # no seed of the default audit fails
    means = metrics[metrics.role == "unlearned"].groupby(["method", "metric"])["value"].mean()
    assert means[("finetune", "UA")] == pytest.approx(results["metrics"]["finetune"]["UA"]["mean"])


def test_verdicts_methods_and_equivalence_hold_the_files_numbers(default_example):
    results, _ = default_example
    frames = load_frames(results)
    verdicts = frames["verdicts"]
    assert len(verdicts) == len(results["verdicts"])
    for row, source in zip(verdicts.to_dict("records"), results["verdicts"]):
        assert (row["method"], row["rule"], row["status"]) == (source["method"], source["rule"], source["verdict"])
        if isinstance(source["value"], str):
            assert row["decision"] == source["value"] and pd.isna(row["value"])
        elif source["value"] is not None:
            assert row["value"] == source["value"]
        if source["interval"] is not None:
            assert [row["ci_low"], row["ci_high"]] == source["interval"]
    assert dict(zip(frames["methods"]["method"], frames["methods"]["verdict"])) == \
        {label: entry["verdict"] for label, entry in results["method_verdicts"].items()}
    welch = frames["equivalence"].set_index(["method", "metric", "test"]).loc[("salun", "MIA", "welch")]
    source = results["equivalence"]["salun"]["tost"]["MIA"]["welch"]
    assert welch["difference"] == source["difference"] and [welch["ci_low"], welch["ci_high"]] == source["ci"]
    assert welch["level"] == pytest.approx(1 - 2 * source["alpha"]) and welch["n_unlearned"] == source["n_u"]


def test_membership_statistics_carry_their_interval_and_the_units_behind_them(default_example):
    results, _ = default_example
    mia = load_frames(results)["mia"]
    assert set(mia["target_kind"]) == {"population", "method", "shadows"}
    entry = results["mia"]["methods"]["finetune"]["ulira"]
    row = mia[(mia.target == "finetune") & (mia.attack == "ulira") & (mia.statistic == "auc")].iloc[0]
    assert row["value"] == entry["auc"]["value"] and [row["ci_low"], row["ci_high"]] == entry["auc"]["ci95"]
    units = entry["units"]
    # U-LiRA: unlearned models against retrained ones (distinct), the same forget examples on both sides
    assert row["n_models"] == units["models"]["members"] + units["models"]["nonmembers"]
    assert row["n_examples"] == units["examples"]["members"]
    statistics = set(mia[(mia.target == "finetune") & (mia.attack == "ulira")]["statistic"])
    assert {"auc", "tpr_at_fpr_0.001", "tpr_at_fpr_0.01", "advantage", "epsilon_lower_bound"} <= statistics
    by_class = mia[(mia.target == "original") & (mia.attack == "lira_offline") & (mia.statistic == "auc_class_3")].iloc[0]
    three = results["mia"]["populations"]["original"]["lira_offline"]["per_class_auc"]["3"]
    assert by_class["value"] == three["value"] and [by_class["ci_low"], by_class["ci_high"]] == three["ci95"]
    # the class's forget examples against every test example, on the same models
    assert by_class["n_examples"] == three["units"]["examples"]["members"] + results["mia"]["n_test"]
    assert by_class["n_models"] == three["units"]["models"]["members"]
    efficacy = mia[(mia.target == "finetune") & (mia.attack == "svc_confidence")].iloc[0]
    summary = results["mia"]["methods"]["finetune"]["svc_confidence"]["mia_efficacy"]
    assert efficacy["statistic"] == "mia_efficacy" and efficacy["value"] == summary["mean"]
    assert efficacy["n_models"] == summary["n"]


def test_per_example_epsilon_has_one_row_per_forget_example(default_example):
    results, _ = default_example
    epsilon = load_frames(results)["epsilon"]
    competition = results["equivalence"]["grad_ascent"]["neurips2023"]
    rows = epsilon[epsilon.method == "grad_ascent"]
    assert list(rows["epsilon"]) == competition["eps"]
    assert list(rows["forget_index"]) == competition["forget_indices"]
    assert len(epsilon) == len(results["equivalence"]) * results["scope"]["forget_size"]


def test_sections_the_audit_did_not_compute_give_empty_frames_with_their_columns(default_example):
    results = copy.deepcopy(default_example[0])
    for section in ("mia", "equivalence", "relearn", "backdoor"):
        del results[section]
    frames = load_frames(check_results(results, Path("results.json")))
    for name in ("mia", "equivalence", "epsilon", "relearn"):
        assert frames[name].empty and list(frames[name].columns) == list(FRAMES[name][0])
    assert not frames["metrics"].empty


def test_report_csv_writes_one_file_per_frame_that_reads_back_unchanged(default_example, cli, tmp_path):
    _, out = default_example
    code, printed, _ = cli("report", str(out / "results.json"), "--format", "csv", "--out", str(tmp_path))
    assert code == 0
    frames = load_frames(out / "results.json")
    assert sorted(p.name for p in tmp_path.glob("*.csv")) == sorted(f"{name}.csv" for name in FRAMES)
    for name, frame in frames.items():
        assert f"wrote {tmp_path / (name + '.csv')}" in printed
        back = pd.read_csv(tmp_path / f"{name}.csv", keep_default_na=False, na_values=[""])
        assert list(back.columns) == list(frame.columns)
        assert len(back) == len(frame)
    for name in ("metrics", "mia", "epsilon"):
        back = pd.read_csv(tmp_path / f"{name}.csv")
        pd.testing.assert_frame_equal(back, frames[name], check_dtype=False, check_exact=True)


def test_the_frames_load_without_torch():
    code = ("import sys, reports.frames, reports.compare, reports.compare_text\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == []


@pytest.mark.slow
def test_a_generation_audit_gives_its_metrics_verdicts_and_relearning_curves(tmp_path):
    from audit.config.spec import spec_from_dict
    from audit.pipeline import run_audit
    from helpers import small_config

    config = small_config(task={"kind": "generation"}, forget={"kind": "class", "classes": [3], "fraction": None},
                          generation={"width": 32, "steps": 20, "epochs": 2, "samples": 12, "grid": 3},
                          relearn={"run": ["retain"], "steps": 10, "checkpoints": 2, "lr": 1e-3}, train={"epochs": 3},
                          attacks=None, unlearners={"identity": {}, "retrain": {}, "salun": {"iterations": 5}})
    config["audit"]["store"] = str(tmp_path / "store")
    results = run_audit(spec_from_dict(config), tmp_path / "out", show_progress=False)
    frames = load_frames(tmp_path / "out" / "results.json")
    assert {"forgotten_probability", "retained_accuracy", "FID"} <= set(frames["metrics"]["metric"])
    assert len(frames["verdicts"]) == len(results["verdicts"]) and frames["mia"].empty
    relearn = frames["relearn"]
    curve = relearn[(relearn.method == "salun") & (relearn.side == "unlearned")
                    & (relearn.curve == results["relearn"]["measure"])]
    assert list(curve["step"]) == results["relearn"]["steps"]
    assert list(curve["mean"]) == [s["mean"] for s in results["relearn"]["methods"]["salun"]["unlearned"]]
