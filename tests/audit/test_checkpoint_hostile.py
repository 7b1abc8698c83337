"""Checkpoints that are not what [subject] expects: each is refused in one line naming the field
and the file, and a model that is degenerate but valid (all weights zero) is audited to the end."""

from __future__ import annotations

import json
import os
import pickle
import re
import struct
import zipfile

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from attacks.mia.roc import histogram
from audit.nn.checkpoints import checkpoint_sha256, load_checkpoint
from audit.cli import main
from audit.core.errors import SalunInputError
from audit.pipeline import run_audit
from audit.config.spec import spec_from_dict
from helpers import write_toml
from test_subject_audit import new_mlp, subject_config, write_forget_request

FIELD = "subject.unlearned.team_finetune"


@pytest.fixture(scope="module")
def request_and_data(tmp_path_factory):
    """A folder holding the forget request, and the data it indexes."""
    folder = tmp_path_factory.mktemp("hostile")
    data, _ = write_forget_request(folder)
    return folder, data


def _state(data, **changed):
    state = new_mlp(data, seed=3).state_dict()
    return {**state, **{name.replace("__", "."): change(state[name.replace("__", ".")])
                        for name, change in changed.items()}}


def _write_bytes(content):
    return lambda folder, data: _written(folder / "model.pt", content)


def _written(path, content):
    path.write_bytes(content)
    return path


def _symlink_to_passwd(folder, data):
    link = folder / "passwd.pt"
    link.symlink_to("/etc/passwd")
    return link


def _zip_without_torch(folder, data):
    with zipfile.ZipFile(folder / "archive.pt", "w") as archive:
        archive.writestr("notes.txt", "not a checkpoint")
    return folder / "archive.pt"


def _fifo(folder, data):
    os.mkfifo(folder / "pipe.pt")
    return folder / "pipe.pt"


def _folder(folder, data):
    (folder / "weights.pt").mkdir()
    return folder / "weights.pt"


def _safetensors_header(length):
    return lambda folder, data: _written(folder / "model.safetensors", struct.pack("<Q", length) + b"{}")


def _saved(name, state_of):
    def make(folder, data):
        torch.save(state_of(data), folder / name)
        return folder / name
    return make


def _safetensors(state_of):
    def make(folder, data):
        save_file(state_of(data), str(folder / "model.safetensors"))
        return folder / "model.safetensors"
    return make


def _pickled(value):
    def make(folder, data):
        with open(folder / "pickled.pt", "wb") as handle:
            pickle.dump(value, handle, protocol=4)
        return folder / "pickled.pt"
    return make


def _nan_at_one(tensor):
    tensor = tensor.clone()
    tensor.view(-1)[0] = float("nan")
    return tensor


HOSTILE = {
    "symlink to /etc/passwd": (_symlink_to_passwd, r"is not a PyTorch checkpoint \(neither a zip archive"),
    "random bytes": (_write_bytes(bytes(np.random.default_rng(0).integers(0, 0x7f, 4096, dtype=np.uint8))),
                     r"is not a PyTorch checkpoint \(neither a zip archive"),
    "random bytes after a pickle's first byte": (
        _write_bytes(b"\x80\x02" + bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8))),
        r"refused to load .*: it is a pickle that the safe loader .* cannot read"),
    "an empty file": (_write_bytes(b""), r"is not a PyTorch checkpoint \(an empty file\)"),
    "a zip that torch did not write": (_zip_without_torch, r"a zip archive, but not one torch.save wrote"),
    "a FIFO": (_fifo, r"is not a regular file \(a FIFO\)"),
    "a folder": (_folder, r"is a folder, not a file"),
    "a safetensors header of 2^63 bytes": (_safetensors_header(2 ** 63),
                                           r"not a readable safetensors file \(.*too large"),
    "a safetensors header longer than the file": (_safetensors_header(10 ** 6), r"not a readable safetensors file"),
    "int64 weights of the right names and shapes": (
        _saved("int.pt", lambda data: {k: v.to(torch.int64) for k, v in _state(data).items()}),
        r"body.1.weight: dtype int64 in the checkpoint, float32 in the architecture"),
    "float64 weights": (_safetensors(lambda data: {k: v.double() for k, v in _state(data).items()}),
                        r"body.1.weight: dtype float64 in the checkpoint, float32"),
    "a nan weight": (_saved("nan.pt", lambda data: _state(data, body__1__weight=_nan_at_one)),
                     r"non-finite weights.*body.1.weight: 1 of 2048 values are not finite"),
    "an infinite bias": (_safetensors(lambda data: _state(data, body__1__bias=lambda t: torch.full_like(t, np.inf))),
                         r"body.1.bias: 32 of 32 values are not finite"),
    "a state dict nested in a training checkpoint": (
        _saved("nested.pt", lambda data: {"state_dict": _state(data), "epoch": torch.tensor(3)}),
        r"not a state dict of tensors: its entry 'state_dict' is a dict"),
    "a list of tensors": (_saved("list.pt", lambda data: list(_state(data).values())),
                          r"holds a list, not a state dict"),
    "a plain pickle of numbers": (_pickled({"body.1.weight": [1.0, 2.0]}), r"refused to load"),
}


@pytest.mark.parametrize("make, message", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_checkpoint_is_refused_in_one_line_naming_the_field_and_file(request_and_data, tmp_path, make,
                                                                               message):
    _, data = request_and_data
    path = make(tmp_path, data)
    with pytest.raises(SalunInputError) as refused:
        checkpoint_sha256(path, FIELD)  # what the plan checks: the file itself
        load_checkpoint(path, new_mlp(data, seed=0), FIELD, "mlp")
    text = str(refused.value)
    assert text.startswith(f"{FIELD}: ") and str(path) in text and "\n" not in text
    assert re.search(message, text), text


def test_a_dangling_symlink_is_not_found(tmp_path):
    (tmp_path / "gone.pt").symlink_to(tmp_path / "nowhere.pt")
    with pytest.raises(SalunInputError, match=f"{FIELD}: checkpoint not found: .*gone.pt"):
        checkpoint_sha256(tmp_path / "gone.pt", FIELD)


def test_a_checkpoint_that_fits_loads_its_weights(request_and_data, tmp_path):
    _, data = request_and_data
    save_file(_state(data), str(tmp_path / "fine.safetensors"))
    model = load_checkpoint(tmp_path / "fine.safetensors", new_mlp(data, seed=0), FIELD, "mlp")
    assert all(torch.equal(model.state_dict()[k], v) for k, v in _state(data).items())


def test_the_cli_refuses_a_non_pickle_checkpoint_in_one_line_with_exit_code_2(request_and_data, tmp_path, capsys):
    folder, data = request_and_data
    save_file(_state(data), str(tmp_path / "original.safetensors"))
    config = subject_config(folder, tmp_path / "original.safetensors", _symlink_to_passwd(tmp_path, data),
                            audit={"seeds": 2, "store": str(tmp_path / "store")})
    code = main(["--quiet", "audit", str(write_toml(tmp_path / "audit.toml", config)), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert f"{FIELD}: {tmp_path / 'passwd.pt'} is not a PyTorch checkpoint" in err


def test_scores_too_close_for_their_bins_are_counted_on_a_unit_around_them():
    scores = np.full(10, 2.302585092994046) + np.arange(10) * 4e-16  # a constant model's losses, rounded apart
    counts = histogram(scores, np.arange(10) % 2 == 0, bins=30)
    assert len(counts["edges"]) == 31 and counts["edges"][0] < scores.min() <= scores.max() < counts["edges"][-1]
    assert sum(counts["members"]) == 5 and sum(counts["nonmembers"]) == 5
    assert histogram(np.linspace(0, 1, 11), np.arange(11) % 2 == 0, bins=10)["edges"][::10] == [0.0, 1.0]


def test_an_all_zero_model_is_audited_to_a_results_file_and_every_report(request_and_data, tmp_path):
    """A constant model (every weight zero) gives constant scores: each attack on it is at chance,
    and the histograms, ROC curves and reports are still drawn."""
    folder, data = request_and_data
    zero = {name: torch.zeros_like(tensor) for name, tensor in _state(data).items()}
    save_file(zero, str(tmp_path / "zero.safetensors"))
    config = subject_config(folder, tmp_path / "zero.safetensors", tmp_path / "zero.safetensors",
                            audit={"seeds": 2, "store": str(tmp_path / "store"), "reports": ["junit"]},
                            attacks={"run": ["threshold"]},
                            train={"epochs": 3}, relearn={"run": ["retain"], "steps": 6, "checkpoints": 2,
                                                          "aux_size": 40},
                            unlearners={}, policy={"rules": ["mia.threshold_loss.auc <= 0.6"]})
    results = run_audit(spec_from_dict(config), tmp_path / "out", show_progress=False)
    threshold = results["mia"]["methods"]["team_finetune"]["threshold_loss"]
    assert threshold["auc"]["value"] == 0.5 and sum(threshold["histogram"]["members"]) == threshold["n_members"]
    assert json.loads((tmp_path / "out" / "results.json").read_text())["verdict"] == results["verdict"]
    code = main(["report", str(tmp_path / "out" / "results.json"), "--format", "html,pdf,junit,markdown"])
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "junit.xml", "report.html", "report.md", "report.pdf", "results.json"]
    assert "team_finetune" in (tmp_path / "out" / "report.md").read_text()
