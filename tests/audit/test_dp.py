"""[train.dp]: DP training through opacus, its accountant's ε, and the audit that checks it."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

import attacks.dp_probe  # noqa: F401  (registers the dp probe)
from audit.core.contracts import Subset
from audit.core.errors import SalunInputError
from audit.core.seeds import torch_generator
from audit.engine.options import ExecutorChoice
from audit.nn import dp as dp_mode
from audit.nn.dp import DpRecipe
from audit.nn.models import build_model
from audit.nn.training import fit
from audit.pipeline import run_audit
from audit.results.document import load_results
from helpers import small_config, small_spec, write_toml

RECIPE = SimpleNamespace(optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=0.0, schedule="cosine",
                         batch_size=20, epochs=2)


def _data() -> Subset:
    g = torch_generator("dp test data")
    return Subset(torch.randn(100, 1, 8, 8, generator=g), torch.randint(0, 10, (100,), generator=g))


def _trained(dp: DpRecipe | None, seed: int = 0):
    model = build_model("mlp", {"hidden": (16,)}, (1, 8, 8), 10, torch_generator("init", seed), torch.device("cpu"))
    log = fit(model, _data(), RECIPE, torch_generator("order", seed), dp=dp)
    return model, log


def test_dp_training_records_the_epsilon_opacus_accountant_gives_for_its_steps():
    from opacus.accountants import RDPAccountant

    _, log = _trained(DpRecipe(max_grad_norm=1.0, delta=1e-5, noise_multiplier=1.1))
    privacy = log.privacy
    assert privacy["steps"] == 2 * 5 and privacy["sample_rate"] == pytest.approx(20 / 100)
    assert privacy["accountant"] == "rdp" and privacy["sampling"] == "poisson" and privacy["opacus"]
    accountant = RDPAccountant()
    accountant.history = [(1.1, 0.2, 10)]
    assert privacy["epsilon"] == pytest.approx(accountant.get_epsilon(1e-5), rel=1e-12)
    _, more = _trained(DpRecipe(max_grad_norm=1.0, delta=1e-5, noise_multiplier=0.7))
    assert more.privacy["epsilon"] > privacy["epsilon"]  # less noise, more ε


def test_a_target_epsilon_is_reached_within_opacus_tolerance():
    _, log = _trained(DpRecipe(max_grad_norm=1.0, delta=1e-5, target_epsilon=3.0, accountant="prv"))
    assert log.privacy["target_epsilon"] == 3.0 and log.privacy["accountant"] == "prv"
    assert 3.0 - 0.05 <= log.privacy["epsilon"] <= 3.0 + 1e-9


def test_the_same_seed_gives_the_same_dp_weights_and_another_seed_other_noise():
    dp = DpRecipe(max_grad_norm=1.0, delta=1e-5, noise_multiplier=1.0)
    a, b, c = _trained(dp)[0], _trained(dp)[0], _trained(dp, seed=1)[0]
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(a.state_dict()["head.weight"], c.state_dict()["head.weight"])
    plain = _trained(None)[0]
    assert not torch.equal(a.state_dict()["head.weight"], plain.state_dict()["head.weight"])


def test_a_batchnorm_model_is_refused_naming_the_field(tmp_path, cli):
    with pytest.raises(SalunInputError, match=r"^model\.arch: 'resnet18' cannot train with differential privacy"):
        dp_mode.check_compatible(build_model("resnet18", {"width": 4}, (1, 8, 8), 10, torch_generator("s")),
                                 "resnet18")
    config = small_config(model={"arch": "resnet18", "width": 4, "hidden": None},
                          train={"dp": {"noise_multiplier": 1.0}})
    code, _, err = cli("audit", str(write_toml(tmp_path / "audit.toml", config)), "--out", str(tmp_path / "out"))
    assert code == 2 and err.strip().splitlines()[-1].endswith(
        "model.arch: 'resnet18' cannot train with differential privacy ([train.dp]): BatchNorm cannot support training "
        "with differential privacy; choose a model without BatchNorm (mlp, cnn)")


def test_the_spec_refuses_what_dp_cannot_do(tmp_path):
    with pytest.raises(SalunInputError, match="exactly one of train.dp.noise_multiplier and train.dp.target_epsilon"):
        small_spec(tmp_path, train={"dp": {"noise_multiplier": 1.0, "target_epsilon": 2.0}})
    with pytest.raises(SalunInputError, match=r"^train\.dp: the vectorised trainer"):
        small_spec(tmp_path, train={"trainer": "vectorised", "dp": {"noise_multiplier": 1.0}})
    with pytest.raises(SalunInputError, match=r"^train\.dp\.canaries: 5 is odd"):
        small_spec(tmp_path, train={"dp": {"noise_multiplier": 1.0, "canaries": 5}})


def test_without_dp_no_job_carries_a_dp_parameter_and_with_a_sweep_only_dp_jobs_do(tmp_path):
    from audit.data.datasets import prepare_data
    from audit.tasks.classification.plan import build_plan

    plain = small_spec(tmp_path)
    data = prepare_data(plain)
    assert not any("dp" in job.params for job in build_plan(plain, data, torch.device("cpu")).jobs)
    swept = small_spec(tmp_path, train={"dp": {"noise_multiplier": [0.5, 2.0], "canaries": 16}})
    plan = build_plan(swept, data, torch.device("cpu"))
    plain_keys = {job.key for job in build_plan(plain, data, torch.device("cpu")).jobs}
    assert set(plan.originals) <= plain_keys and set(plan.retrains) <= plain_keys  # the audit's own, unchanged
    assert list(plan.dp) == ["original", "σ=0.5", "σ=2"]
    noises = {job.params["dp"]["noise_multiplier"] for job in plan.jobs if "dp" in job.params}
    assert noises == {0.5, 2.0}
    assert len(plan.dp["σ=2"]["models"]) == 2 and len(plan.dp["original"]["canary_models"]) == 2
    # "DP training alone": each level's DP originals stand among the methods, compared with the retrains
    assert plan.unlearned["dp_training σ=2"] == plan.dp["σ=2"]["models"] and "dp_training original" not in plan.unlearned


def _audit(tmp_path, **train) -> dict:
    spec = small_spec(tmp_path, model={"hidden": [64]}, train={"epochs": 20, "lr": 0.1, **train}, attacks={"run": []},
                      unlearners={"identity": {}}, policy={"rules": ["dp.epsilon_gap >= 0"]})
    run_audit(spec, tmp_path / "out", executor=ExecutorChoice(workers=1), show_progress=False)
    return load_results(tmp_path / "out" / "results.json")


@pytest.mark.slow
def test_an_accountant_that_claims_far_less_than_it_spent_fails_the_rule(tmp_path, monkeypatch):
    """Nearly no noise and a clipping norm no gradient reaches: the models memorise their canaries,
    so the one-run audit certifies an ε near what a plain model gives. An audit of this size
    certifies at most about ln(canaries), so only an accountant that is far off can be caught: this
    one reports a millionth of its ε."""
    dp = {"noise_multiplier": 0.05, "max_grad_norm": 10.0, "canaries": 128}
    honest = _audit(tmp_path / "honest", dp=dp)
    assert honest["dp"]["epsilon_gap"]["value"] > 0
    assert honest["method_verdicts"]["identity"]["verdict"] == "PASS"
    true_epsilon = dp_mode.accountant_epsilon
    monkeypatch.setattr(dp_mode, "accountant_epsilon", lambda engine, delta: true_epsilon(engine, delta) * 1e-6)
    broken = _audit(tmp_path / "broken", dp=dp)
    population = broken["dp"]["populations"]["original"]
    assert population["largest_audited"]["value"] > population["accountant_epsilon"]["value"]
    assert broken["dp"]["epsilon_gap"]["value"] < 0
    row = next(v for v in broken["verdicts"] if v["rule"] == "dp.epsilon_gap >= 0")
    assert row["verdict"] == "FAIL" and broken["method_verdicts"]["identity"]["verdict"] == "FAIL"
    probes = {p["method"]: p for p in broken["probes"] if p["id"] == "dp"}
    assert probes["identity"]["verdict"] == "FAIL" and probes["identity"]["stats"]["epsilon_gap"] < 0
    assert probes["population:original"]["verdict"] == "REPORTED"
    assert probes["population:original"]["stats"]["accountant_epsilon"] == population["accountant_epsilon"]["value"]
