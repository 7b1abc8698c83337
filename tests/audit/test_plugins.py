"""Third-party plugins: the example package in examples/plugin, installed into a temporary
folder, seen by `salun list`, checked by `salun check-plugin`, run by an audit, recorded in
the manifest and kept out by `audit.plugins`."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from audit.core.errors import SalunInputError
from audit.data.datasets import prepare_data
from audit.core.registry import ATTACKS, UNLEARNERS, allow_plugins, reload_plugins
from helpers import small_spec
from audit.core.contracts import Task, Unlearner

PLUGIN_SOURCE = Path(__file__).resolve().parents[2] / "examples" / "plugin"
PACKAGE = "salun_example_plugin"
UNLEARNER, DATASET, MODEL = "example_finetune_last_layer", "example_blobs", "example_tiny_mlp"
ATTACK = "example_logit_margin"
PLUGINS = {"unlearner": UNLEARNER, "dataset": DATASET, "model": MODEL}
ENTRY_POINTS = {"unlearner": f"salun.unlearners:{UNLEARNER}", "dataset": f"salun.datasets:{DATASET}",
                "model": f"salun.models:{MODEL}"}


@pytest.fixture(scope="module")
def installed_plugin(tmp_path_factory) -> Path:
    """The example package pip-installed into a temporary folder on sys.path; the folder."""
    folder = tmp_path_factory.mktemp("plugin")
    source = shutil.copytree(PLUGIN_SOURCE, folder / "source")  # a build writes next to its source
    target = folder / "site"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                          "--no-build-isolation", "--target", str(target), str(source)],
                         capture_output=True, text=True)
    assert pip.returncode == 0, pip.stderr
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(target))
        reload_plugins()
        yield target
    allow_plugins(None)
    for module in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
        del sys.modules[module]
    reload_plugins()


@pytest.fixture(autouse=True)
def every_plugin_allowed():
    yield
    allow_plugins(None)


@dataclass
class ChangesItsInput(Unlearner):
    """Broken on purpose: perturbs the model it was given before copying it."""

    scale: float = 0.01

    def unlearn(self, model: nn.Module, task: Task) -> nn.Module:
        with torch.no_grad():
            for weights in model.parameters():
                weights.add_(self.scale)
        return self.copy(model)


@pytest.fixture
def broken_unlearner():
    UNLEARNERS.register("changes_its_input")(ChangesItsInput)
    yield "changes_its_input"
    UNLEARNERS.unregister("changes_its_input")


def plugin_config(**overrides) -> dict:
    return {"data": {"dataset": DATASET}, "model": {"arch": MODEL, "hidden": 16},
            "unlearners": {"identity": {}, "retrain": {}, UNLEARNER: {"epochs": 2}}, **overrides}


def test_list_names_each_plugin_with_its_distribution_and_version(cli, installed_plugin):
    code, out, _ = cli("list")
    assert code == 0
    for name in [*PLUGINS.values(), ATTACK]:
        line = next((l for l in out.splitlines() if l.split()[:1] == [name]), None)
        assert line is not None, name
        assert "salun-example-plugin 0.1.0" in line


def test_check_plugin_passes_the_example_unlearner(cli, installed_plugin):
    code, out, _ = cli("check-plugin", UNLEARNER)
    assert code == 0, out
    assert f"{UNLEARNER}: salun-example-plugin 0.1.0" in out
    assert "pass  leaves the input model untouched" in out and "FAIL" not in out


def test_check_plugin_fails_an_unlearner_that_changes_its_input(cli, broken_unlearner):
    code, out, _ = cli("check-plugin", broken_unlearner)
    assert code == 1
    assert "FAIL  leaves the input model untouched" in out


def test_check_plugin_with_an_unknown_name_is_bad_input(cli):
    code, _, err = cli("check-plugin", "no_such_method")
    assert code == 2
    assert "check-plugin: unknown unlearner 'no_such_method'" in err


def test_an_audit_records_each_plugin_with_its_distribution_and_digest(installed_plugin, tmp_path):
    from audit.pipeline import run_audit

    spec = small_spec(tmp_path, audit={"reports": ["junit"]}, train={"epochs": 4}, **plugin_config())
    run_audit(spec, tmp_path / "out", show_progress=False)
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    recorded = {row["kind"]: row for row in results["manifest"]["plugins"] if row["name"] in PLUGINS.values()}
    assert set(recorded) == set(PLUGINS)
    for kind, row in recorded.items():
        module = row["module"].split(".")[-1]
        source = installed_plugin / PACKAGE / f"{module}.py"
        assert (row["name"], row["distribution"], row["version"]) == (PLUGINS[kind], "salun-example-plugin", "0.1.0")
        assert row["entry_point"] == ENTRY_POINTS[kind]
        assert row["file_sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    identity = next(row for row in results["manifest"]["plugins"] if row["name"] == "identity")
    assert identity["distribution"] == "salun"


def test_a_plugin_missing_from_the_allow_list_is_not_loaded(cli, installed_plugin, tmp_path):
    listed = [ENTRY_POINTS["dataset"], ENTRY_POINTS["model"]]
    sys.modules.pop(f"{PACKAGE}.unlearner", None)
    expected = (f"unlearners.{UNLEARNER}: unlearner '{UNLEARNER}' is installed (salun-example-plugin 0.1.0) "
                f"but not in audit.plugins; add '{ENTRY_POINTS['unlearner']}'")
    with pytest.raises(SalunInputError, match=re.escape(expected)):
        small_spec(tmp_path, **plugin_config(audit={"plugins": listed}))
    assert f"{PACKAGE}.unlearner" not in sys.modules
    line = next(l for l in cli("list")[1].splitlines() if l.split()[:1] == [UNLEARNER])
    assert "not in audit.plugins" in line

    listed.append(ENTRY_POINTS["unlearner"])
    assert small_spec(tmp_path, **plugin_config(audit={"plugins": listed})).unlearners[UNLEARNER].method == UNLEARNER


@pytest.mark.parametrize(("entry", "message"), [
    (f"salun.unlearners:{UNLEARNER}s", f"audit.plugins: 'salun.unlearners:{UNLEARNER}s' matches no installed "
                                       f"entry point (did you mean 'salun.unlearners:{UNLEARNER}'?)"),
    (UNLEARNER, "audit.plugins: expected '<group>:<name>' with the group one of salun.unlearners"),
])
def test_an_allow_list_entry_naming_no_installed_entry_point_is_bad_input(installed_plugin, entry, message):
    with pytest.raises(SalunInputError, match=re.escape(message)):
        allow_plugins([entry])


def test_the_example_package_imports_only_from_audit_api():
    for source in (PLUGIN_SOURCE / PACKAGE).glob("*.py"):
        imported = {line.split()[1] for line in source.read_text().splitlines()
                    if line.startswith(("from audit", "import audit", "from unlearners", "from attacks"))}
        assert imported <= {"audit.api"}, (source.name, imported)


def _margin(logits: np.ndarray) -> np.ndarray:
    """Top logit minus the runner-up, written out here independently of the plugin."""
    ordered = np.sort(logits, axis=1)
    return ordered[:, -1] - ordered[:, -2]


def test_an_audit_runs_the_plugin_attack_on_every_target_and_reports_it(installed_plugin, tmp_path):
    from attacks.mia.roc import auc
    from audit.engine.store import Store
    from audit.pipeline import run_audit

    spec = small_spec(tmp_path, audit={"reports": ["html"]}, train={"epochs": 4},
                      attacks={"run": ["threshold", ATTACK], "bootstrap": 20}, **plugin_config())
    results = run_audit(spec, tmp_path / "out", show_progress=False)
    mia = results["mia"]
    targets = {**mia["populations"], **mia["methods"]}
    assert set(targets) == {"original", "reference_retrain", "identity", "retrain", UNLEARNER}
    for attacks in targets.values():
        entry = attacks[ATTACK]
        assert (entry["version"], entry["n_target_models"], entry["n_shadow_models"]) == ("1", 2, 0)
        assert (entry["n_members"], entry["n_nonmembers"]) == (2 * mia["n_forget"], 2 * mia["n_test"])
        assert entry["auc"]["ci95"] != attacks["threshold_loss"]["auc"]["ci95"]
        assert set(entry["per_class_auc"]) and len(entry["most_exposed"]) == 10
        assert entry["auc"]["ci95"][0] <= entry["auc"]["value"] <= entry["auc"]["ci95"][1]
    # the originals' AUC is the margin of their own stored logits, forget set against test set
    store, artifacts = Store(spec.audit.store), results["manifest"]["artifacts"]
    observed = [store.arrays(artifacts["observation_of"][key]) for key in artifacts["original"]]
    data = prepare_data(spec)
    members = np.concatenate([_margin(o["pool_logits"][data.forget]) for o in observed])
    nonmembers = np.concatenate([_margin(o["test_logits"][data.eval_test_mask]) for o in observed])
    expected = auc(np.concatenate([members, nonmembers]),
                   np.r_[np.ones(len(members), bool), np.zeros(len(nonmembers), bool)])
    assert mia["populations"]["original"][ATTACK]["auc"]["value"] == pytest.approx(expected)
    probed = {probe["method"] for probe in results["probes"] if probe["id"] == f"mia.{ATTACK}"}
    assert probed == {"population:original", "population:reference_retrain", "identity", "retrain", UNLEARNER}
    html = (tmp_path / "out" / "report.html").read_text()
    assert html.count(f"<tr><td>{ATTACK}</td>") == len(targets)
    recorded = next(row for row in results["manifest"]["plugins"] if row["name"] == ATTACK)
    assert (recorded["kind"], recorded["distribution"]) == ("attack", "salun-example-plugin")


def test_an_unknown_attack_is_one_line_with_a_close_match(installed_plugin, tmp_path):
    with pytest.raises(SalunInputError, match=re.escape(f"attacks.run: unknown attack 'example_logit_margn' "
                                                        f"(did you mean '{ATTACK}'?)")):
        small_spec(tmp_path, attacks={"run": ["example_logit_margn"]})


class _NoScores:
    version = "1"
    needs_shadows = False


class _Calibrated:
    """Needs shadows: the mean of each example's OUT shadows' top logit, subtracted."""

    version = "2"
    needs_shadows = True

    def scores(self, logits, labels, shadows):
        out = shadows.out[..., None]
        reference = (shadows.logits * out).sum(axis=0) / out.sum(axis=0)
        return logits.max(axis=-1) - reference.max(axis=-1)


@pytest.fixture
def registered_attacks():
    ATTACKS.register("no_scores")(_NoScores)
    ATTACKS.register("calibrated_top_logit")(_Calibrated)
    yield
    ATTACKS.unregister("no_scores")
    ATTACKS.unregister("calibrated_top_logit")


def test_a_registered_attack_without_scores_is_bad_input(registered_attacks, tmp_path):
    with pytest.raises(SalunInputError, match=r"attacks.run: attack 'no_scores' .* does not implement "
                                              r"audit.api.MembershipAttack \(missing: scores\)"):
        small_spec(tmp_path, attacks={"run": ["no_scores"]})


def test_an_attack_that_needs_shadows_gets_them(registered_attacks, tmp_path):
    from audit.pipeline import run_audit

    spec = small_spec(tmp_path, audit={"reports": []}, train={"epochs": 2},
                      attacks={"run": ["calibrated_top_logit"], "bootstrap": 0, "lira": {"shadows": 6}},
                      unlearners={"identity": {}})
    assert spec.attacks.needs_shadows
    results = run_audit(spec, tmp_path / "out", show_progress=False)
    entry = results["mia"]["methods"]["identity"]["calibrated_top_logit"]
    assert (entry["version"], entry["n_shadow_models"]) == ("2", 6)
    assert results["mia"]["references_per_example"] == {"forget": 3, "test": 3}
