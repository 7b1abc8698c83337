"""examples/digits-subject: checkpoints made with plain PyTorch outside salun, then audited.

The fast tests run the example's script with two epochs into a temporary folder, validate the
config it writes and load its checkpoints as the audit's import jobs do; the slow one audits
the example as it ships.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import tomllib
from pathlib import Path

import pytest
import torch

from audit.config.spec import load_spec, spec_from_dict
from audit.core.seeds import torch_generator
from audit.data.datasets import prepare_data
from audit.nn.checkpoints import load_checkpoint
from audit.pipeline import run_audit
from audit.tasks.classification.jobs import new_model

EXAMPLE = Path(__file__).parents[2] / "examples" / "digits-subject"
WRITTEN = ("forget.txt", "original.safetensors", "team_finetune.pt", "team_retrain.pt", "audit.toml")


def _script():
    spec = importlib.util.spec_from_file_location("make_checkpoints", EXAMPLE / "make_checkpoints.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def script():
    return _script()


@pytest.fixture(scope="module")
def made(script, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("made")
    assert script.main(["--out", str(folder), "--epochs", "2"]) == 0
    return folder


def _digests(folder: Path) -> dict[str, str]:
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in WRITTEN}


def test_the_written_config_validates_with_the_checkpoints_and_the_recipe(made, cli):
    code, out, err = cli("validate", str(made / "audit.toml"))
    assert code == 0, err
    resolved = json.loads(out)
    assert resolved["subject"] == {"original": "original.safetensors",
                                   "unlearned": {"team_finetune": "team_finetune.pt", "team_retrain": "team_retrain.pt"}}
    assert resolved["train"]["epochs"] == 2
    assert resolved["forget"]["kind"] == "indices"


def test_the_forget_request_is_every_pool_image_of_the_class(made, script):
    data = prepare_data(load_spec(made / "audit.toml"))
    forgotten = set(data.pool.y[torch.from_numpy(data.forget)].tolist())
    assert forgotten == {script.FORGET_CLASS}
    assert len(data.forget) == int((data.pool.y == script.FORGET_CLASS).sum())


def _loaded(spec, data, field: str, value: str):
    model = new_model(spec, data, torch_generator("skeleton"), torch.device("cpu"))
    return load_checkpoint(spec.resolve_path(value), model, field, spec.model.arch).eval()


def _accuracy(model, x, y) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def _distance(a, b) -> float:
    return float(sum((a.state_dict()[k] - b.state_dict()[k]).pow(2).sum() for k in a.state_dict()) ** 0.5)


def test_the_checkpoints_load_as_the_audit_loads_them(made):
    spec = load_spec(made / "audit.toml")
    data = prepare_data(spec)
    original = _loaded(spec, data, "subject.original", spec.subject.original)
    unlearned = {label: _loaded(spec, data, f"subject.unlearned.{label}", path)
                 for label, path in spec.subject.unlearned.items()}
    for model in (original, *unlearned.values()):
        assert _accuracy(model, data.test.x, data.test.y) > 0.5  # ten classes: chance is 0.1
    # fine-tuning starts from the original; the retrain from a fresh initialisation
    assert _distance(unlearned["team_finetune"], original) < _distance(unlearned["team_retrain"], original)
    forget = torch.from_numpy(data.forget)
    assert _accuracy(unlearned["team_retrain"], data.pool.x[forget], data.pool.y[forget]) < 0.05


def test_two_runs_write_identical_files(made, script, tmp_path):
    assert script.main(["--out", str(tmp_path), "--epochs", "2"]) == 0
    assert _digests(tmp_path) == _digests(made)


def test_the_committed_config_is_the_one_the_script_writes(script):
    assert (EXAMPLE / "audit.toml").read_text() == script.audit_toml()
    ignored = (EXAMPLE / ".gitignore").read_text().split()
    assert {"*.safetensors", "*.pt", "forget.txt"} <= set(ignored)


def test_zero_epochs_is_refused_with_exit_2(script, capsys):
    with pytest.raises(SystemExit) as stop:
        script.main(["--epochs", "0", "--out", "unused"])
    assert stop.value.code == 2
    assert "--epochs" in capsys.readouterr().err


@pytest.mark.slow
def test_the_example_audit_fails_the_original_and_passes_both_retrains(tmp_path):
    folder = tmp_path / "example"
    assert _script().main(["--out", str(folder)]) == 0
    raw = tomllib.loads((folder / "audit.toml").read_text())
    raw["audit"]["store"] = str(tmp_path / "store")
    results = run_audit(spec_from_dict(raw, base_dir=folder), tmp_path / "out", show_progress=False)
    verdicts = {label: entry["verdict"] for label, entry in results["method_verdicts"].items()}
    assert verdicts["identity"] == "FAIL"
    assert verdicts["retrain"] == "PASS"
    assert verdicts["team_retrain"] != "FAIL"
    consistency = {label: results["equivalence"][label]["per_example"]["consistency"]["fraction_different"]
                   for label in verdicts}
    assert consistency["identity"] > consistency["team_retrain"]
