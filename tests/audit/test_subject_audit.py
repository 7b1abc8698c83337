"""Auditing checkpoints trained and unlearned outside salun ([subject])."""

from __future__ import annotations

import hashlib
import pickle

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch.nn import functional as F

from audit.data.datasets import prepare_data
from audit.core.errors import SalunInputError
from audit.nn.models import build_model
from audit.pipeline import run_audit
from audit.config.spec import spec_from_dict
from helpers import small_config

HIDDEN = [32]


def plain_training(model, x, y, epochs, seed):
    """A plain PyTorch loop, as a team would train outside salun."""
    g = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=g)
        for start in range(0, len(x), 64):
            batch = order[start:start + 64]
            optimizer.zero_grad()
            F.cross_entropy(model(x[batch]), y[batch]).backward()
            optimizer.step()
    return model


def subject_config(folder, original, unlearned, **overrides):
    sections = {
        "audit": {"seeds": 4, "store": str(folder / "store")},
        "forget": {"kind": "indices", "indices_file": str(folder / "forget.txt"), "fraction": None},
        "model": {"hidden": HIDDEN},
        "attacks": {"run": ["threshold", "lira"], "lira": {"shadows": 6}, "bootstrap": 100},
        "relearn": {"run": ["retain"], "steps": 20, "checkpoints": 2, "aux_size": 100},
        "unlearners": {"identity": {}, "retrain": {}},
    }
    config = small_config(**{**sections, **overrides})
    config["subject"] = {"original": str(original), "unlearned": {"team_finetune": str(unlearned)}}
    return config


def write_forget_request(folder):
    """60 random pool points as dataset indices in folder/forget.txt: (the data, their pool positions)."""
    data = prepare_data(spec_from_dict(small_config(forget={"kind": "random", "fraction": 0.05})))
    forget = np.random.default_rng(0).choice(len(data.pool), 60, replace=False)
    (folder / "forget.txt").write_text("\n".join(str(int(i)) for i in data.pool_index[forget]) + "\n")
    return data, forget


def new_mlp(data, seed, hidden=HIDDEN):
    return build_model("mlp", {"hidden": hidden}, data.input_shape, data.num_classes,
                       torch.Generator().manual_seed(seed), torch.device("cpu"))


@pytest.fixture(scope="module")
def outside(tmp_path_factory):
    """An original trained and a copy fine-tuned on the retain set, both with plain PyTorch, and
    the forget request as dataset indices."""
    folder = tmp_path_factory.mktemp("outside")
    data, forget = write_forget_request(folder)
    retain = np.setdiff1d(np.arange(len(data.pool)), forget)
    model = new_mlp(data, seed=7)
    plain_training(model, data.pool.x, data.pool.y, 20, seed=7)
    save_file(model.state_dict(), str(folder / "original.safetensors"))
    plain_training(model, data.pool.x[retain], data.pool.y[retain], 5, seed=8)
    torch.save(model.state_dict(), folder / "unlearned.pt")
    return folder


@pytest.fixture(scope="module")
def audited(outside):
    config = subject_config(outside, outside / "original.safetensors", outside / "unlearned.pt")
    return run_audit(spec_from_dict(config), outside / "out", show_progress=False)


def test_both_checkpoints_are_audited_with_verdicts_and_their_digests(audited, outside):
    results = audited
    assert results["method_verdicts"]["team_finetune"]["verdict"] in ("PASS", "FAIL", "INCONCLUSIVE")
    rules = [row for row in results["verdicts"] if row["method"] == "team_finetune"]
    assert any(row["probe"] == "equivalence.per_example.consistency.fraction_different" for row in rules)
    subject = results["manifest"]["subject"]
    for name, entry in (("original.safetensors", subject["original"]), ("unlearned.pt", subject["unlearned"]["team_finetune"])):
        assert entry["sha256"] == hashlib.sha256((outside / name).read_bytes()).hexdigest()
    assert results["metrics"]["team_finetune"]["UA"]["n"] == 1
    assert results["relearn"]["methods"]["team_finetune"]["recovery"]["n"] == 4  # against each retrained model
    assert "lira_offline" in results["mia"]["methods"]["team_finetune"]


def test_the_consistency_test_tells_the_original_from_a_retrained_model(audited):
    consistency = {label: audited["equivalence"][label]["per_example"]["consistency"]
                   for label in ("identity", "retrain", "team_finetune")}
    assert consistency["identity"]["fraction_different"] > consistency["retrain"]["fraction_different"]
    assert consistency["identity"]["fraction_higher"] >= consistency["identity"]["fraction_lower"]
    assert consistency["retrain"]["n_reference_models"] == 4


def test_the_report_names_the_probes_a_single_model_cannot_support(audited, outside):
    limitations = " ".join(audited["limitations"])
    for probe in ("competition ε", "KS and permutation", "TOST", "U-LiRA"):
        assert probe in limitations
    html = (outside / "out" / "report.html").read_text()
    assert "Consistency with retraining" in html and "could not run" in html


def test_a_checkpoint_that_would_run_code_is_refused_and_nothing_runs(outside, tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    with open(tmp_path / "evil.pt", "wb") as handle:
        pickle.dump({"body.1.weight": Payload()}, handle)
    config = subject_config(outside, outside / "original.safetensors", tmp_path / "evil.pt")
    config["audit"]["store"] = str(tmp_path / "store")
    with pytest.raises(SalunInputError, match=r"subject.unlearned.team_finetune: refused to load .*evil.pt"):
        run_audit(spec_from_dict(config), tmp_path / "out", show_progress=False)
    assert not marker.exists()


def test_a_checkpoint_of_another_shape_names_the_parameter(outside, tmp_path):
    data = prepare_data(spec_from_dict(small_config()))
    other = new_mlp(data, seed=0, hidden=[16])
    torch.save(other.state_dict(), tmp_path / "narrow.pt")
    config = subject_config(outside, outside / "original.safetensors", tmp_path / "narrow.pt")
    config["audit"]["store"] = str(tmp_path / "store")
    with pytest.raises(SalunInputError, match=r"body.1.weight: shape \(16, 64\) in the checkpoint, \(32, 64\)"):
        run_audit(spec_from_dict(config), tmp_path / "out", show_progress=False)


def test_a_missing_checkpoint_and_ulira_are_named_before_anything_trains(outside, tmp_path):
    config = subject_config(outside, tmp_path / "nowhere.safetensors", outside / "unlearned.pt")
    with pytest.raises(SalunInputError, match="subject.original: checkpoint not found"):
        run_audit(spec_from_dict(config), tmp_path / "out", show_progress=False)
    config = subject_config(outside, outside / "original.safetensors", outside / "unlearned.pt",
                            attacks={"run": ["ulira"]})
    with pytest.raises(SalunInputError, match="attacks.run: U-LiRA needs the unlearning method"):
        spec_from_dict(config)
