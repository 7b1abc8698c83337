"""`salun compare` on two tiny audits of one request that differ only in one method's
hyperparameters: it names that method and the numbers that moved, leaves the others unchanged,
judges noise by the per-seed values paired by seed, and exits 0, 1 or 2."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from helpers import small_config
from reports.compare import compare

RULES = ['equivalence.tost.UA == "equivalent"', "metrics.RA >= 0.9"]
EPOCHS = {"before": 2, "after": 6}  # finetune's epochs; nothing else differs


@pytest.fixture(scope="module")
def audits(tmp_path_factory) -> dict[str, Path]:
    """Two audits sharing a store and seeds (about 20 s on an idle CPU: the second trains only finetune)."""
    from audit.config.spec import spec_from_dict
    from audit.pipeline import run_audit

    folder = tmp_path_factory.mktemp("compare")
    paths = {}
    for name, epochs in EPOCHS.items():
        config = small_config(audit={"seeds": 3, "store": str(folder / "store"), "reports": []}, attacks={"run": []},
                              policy={"rules": RULES},
                              unlearners={"finetune": {"epochs": epochs}, "grad_ascent": {"epochs": 2}})
        run_audit(spec_from_dict(config), folder / name, show_progress=False)
        paths[name] = folder / name / "results.json"
    return paths


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def _saved(results: dict, path: Path) -> str:
    path.write_text(json.dumps(results))
    return str(path)


def _paired(before: list[float], after: list[float]) -> tuple[float, float, float]:
    moved = np.subtract(after, before)
    half = stats.t.ppf(0.975, len(moved) - 1) * moved.std(ddof=1) / math.sqrt(len(moved))
    return moved.mean(), moved.mean() - half, moved.mean() + half


def test_compare_names_the_changed_method_and_the_numbers_that_moved_and_nothing_else(audits, cli):
    before, after = _load(audits["before"]), _load(audits["after"])
    for population in ("original", "reference_retrain"):  # the shared store gives both audits the same models
        assert before["populations"][population] == after["populations"][population]
    code, out, _ = cli("compare", str(audits["before"]), str(audits["after"]))
    lines = out.splitlines()
    assert [line for line in lines if "grad_ascent" in line] == ["unchanged: grad_ascent"]
    assert any(line.startswith("finetune: ") and "changed" in line for line in lines)
    old, new = (r["equivalence"]["finetune"]["tost"]["UA"]["welch"]["difference"] for r in (before, after))
    assert f"    {old:.4f} (90 % [" in out and f"-> {new:.4f} (90 % [" in out
    mean, low, high = _paired(before["metrics"]["finetune"]["UA"]["per_seed"],
                              after["metrics"]["finetune"]["UA"]["per_seed"])
    assert f"change {mean:+.4f} [{low:+.4f}, {high:+.4f}] over 3 paired seeds: beyond noise, better" in out
    # six epochs bring finetune's UA nearer the retrains' and raise its RA: better on both rules, so
    # the reverse comparison is the one in which a method got worse
    assert abs(new) < abs(old) and (low > 0 or high < 0)
    assert after["metrics"]["finetune"]["RA"]["mean"] > before["metrics"]["finetune"]["RA"]["mean"]
    assert code == 0 and "no method got worse" in out
    code, out, _ = cli("compare", str(audits["after"]), str(audits["before"]))
    assert code == 1 and "1 method(s) got worse: finetune" in out
    assert "beyond noise, worse" in out and "unchanged: grad_ascent" in out


def test_an_audit_compared_with_itself_has_nothing_changed(audits, cli):
    code, out, _ = cli("compare", str(audits["after"]), str(audits["after"]))
    assert code == 0
    assert "unchanged: finetune, grad_ascent" in out and "seeds: the same 3 in both" in out
    assert "A change is beyond noise when" in out  # the legend says how


def _with_per_seed(results: dict, method: str, metric: str, values: list[float]) -> dict:
    """`results` with the method's per-seed metric replaced, its mean and the rule reading it too."""
    edited = copy.deepcopy(results)
    summary = edited["metrics"][method][metric]
    summary["per_seed"], summary["mean"] = values, float(np.mean(values))
    for row in edited["verdicts"]:
        if row["method"] == method and row["probe"] == f"metrics.{metric}":
            row["value"] = summary["mean"]
    return edited


@pytest.mark.parametrize(("moved", "status", "worse"), [
    ([0.002, -0.003, 0.004], "within noise", False),   # the interval of the mean change covers 0
    ([-0.05, -0.06, -0.04], "changed", True),           # down on every seed, against a >= rule
    ([0.05, 0.06, 0.04], "changed", False),             # up: beyond noise, but better
])
def test_a_rules_number_is_judged_by_its_per_seed_change(audits, moved, status, worse):
    before = _load(audits["after"])
    values = before["metrics"]["grad_ascent"]["RA"]["per_seed"]
    after = _with_per_seed(before, "grad_ascent", "RA", list(np.add(values, moved)))
    comparison = compare(before, after)
    method = next(m for m in comparison.methods if m.method == "grad_ascent")
    assert (method.status, method.worse, comparison.worse) == (status, worse, worse)
    rule = next(r for r in method.rules if r.rule == "metrics.RA >= 0.9")
    mean, low, high = _paired(values, list(np.add(values, moved)))
    assert (rule.delta, rule.delta_low, rule.delta_high) == pytest.approx((mean, low, high))
    assert rule.units == "3 paired seeds"
    row = comparison.frame().set_index(["method", "rule"]).loc[("grad_ascent", "metrics.RA >= 0.9")]
    assert (row["delta"], bool(row["worse"])) == (rule.delta, worse) and row["old_value"] == pytest.approx(np.mean(values))
    assert next(m for m in comparison.methods if m.method == "finetune").status == "unchanged"


@pytest.mark.parametrize(("old", "new", "beyond"), [
    ((0.50, 0.46, 0.54), (0.62, 0.58, 0.66), True),
    ((0.50, 0.46, 0.54), (0.53, 0.49, 0.57), False),
])
def test_a_number_without_per_seed_values_is_beyond_noise_when_the_intervals_are_disjoint(audits, old, new, beyond):
    pair = []
    for value, low, high in (old, new):
        results = _load(audits["after"])
        results["verdicts"].append({"method": "finetune", "rule": "mia.ulira.auc <= 0.55", "probe": "mia.ulira.auc",
                                    "op": "<=", "threshold": 0.55, "value": value, "interval": [low, high],
                                    "verdict": "INCONCLUSIVE", "reason": "edited"})
        pair.append(results)
    comparison = compare(*pair)
    rule = next(r for m in comparison.methods for r in m.rules if r.rule == "mia.ulira.auc <= 0.55")
    assert rule.test == "disjoint intervals" and rule.beyond_noise is beyond and rule.worse is beyond
    assert comparison.worse is beyond


def test_methods_in_one_audit_only_are_listed_as_added_and_removed(audits, cli, tmp_path):
    results = _load(audits["after"])
    renamed = copy.deepcopy(results)
    for section in ("metrics", "method_verdicts", "equivalence"):
        renamed[section]["grad_ascent_v2"] = renamed[section].pop("grad_ascent")
    for row in renamed["verdicts"]:
        row["method"] = "grad_ascent_v2" if row["method"] == "grad_ascent" else row["method"]
    verdict = results["method_verdicts"]["grad_ascent"]["verdict"]
    code, out, _ = cli("compare", str(audits["after"]), _saved(renamed, tmp_path / "renamed.json"))
    assert code == 0
    assert f"added: grad_ascent_v2 ({verdict})" in out and f"removed: grad_ascent ({verdict})" in out


def test_audits_of_different_requests_are_refused_unless_forced(audits, cli, tmp_path):
    other = _load(audits["after"])
    other["scope"]["forget_digest"] = "0" * 64
    path = _saved(other, tmp_path / "other.json")
    code, _, err = cli("compare", str(audits["after"]), path)
    [line] = err.strip().splitlines()
    assert code == 2 and "audit different requests: scope.forget_digest is" in line and "--force" in line
    code, out, _ = cli("compare", str(audits["after"]), path, "--force")
    assert code == 0 and "compared anyway (--force)" in out and "scope.forget_digest" in out
    (tmp_path / "notes.json").write_text('{"schema": "something else"}')
    code, _, err = cli("compare", str(tmp_path / "notes.json"), str(audits["after"]))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "notes.json" in err


def test_the_markdown_comparison_is_a_table_written_where_asked(audits, cli, tmp_path):
    target = tmp_path / "compare.md"
    code, out, _ = cli("compare", str(audits["after"]), str(audits["before"]), "--format", "markdown",
                       "--out", str(target))
    assert code == 1 and out.strip() == f"wrote {target}"
    text = target.read_text()
    assert "| method | verdict | change |" in text
    assert "| grad_ascent | " in text and " | unchanged |" in text
    assert "**changed, worse**" in text and '| finetune | equivalence.tost.UA == "equivalent" |' in text
