"""examples/digits-dp.toml end to end: what an audit certifies of models trained with and without DP."""

from __future__ import annotations

from pathlib import Path

import pytest

import attacks.dp_probe  # noqa: F401  (registers the dp probe)
from audit.config.spec import load_spec, spec_from_dict
from audit.engine.options import ExecutorChoice
from audit.pipeline import run_audit

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "digits-dp.toml"


@pytest.mark.slow
def test_models_without_dp_give_a_larger_audited_epsilon_than_the_strongest_noise(tmp_path):
    config = load_spec(EXAMPLE).to_dict()
    config["audit"]["store"] = str(tmp_path / "store")
    results = run_audit(spec_from_dict(config, EXAMPLE.parent), tmp_path / "out",
                        executor=ExecutorChoice(workers=2), show_progress=False)
    populations = results["dp"]["populations"]
    assert list(populations) == ["original", "σ=0.5", "σ=1", "σ=2"]
    plain, strongest = populations["original"], populations["σ=2"]
    assert plain["accountant_epsilon"] is None and not plain["private"]
    assert plain["largest_audited"]["value"] > strongest["largest_audited"]["value"] + 0.5  # 0.90 against 0 measured
    accountant = [populations[f"σ={s}"]["accountant_epsilon"]["value"] for s in ("0.5", "1", "2")]
    assert accountant == sorted(accountant, reverse=True)  # more noise, less ε spent
    assert results["dp"]["epsilon_gap"]["value"] >= 0
    assert results["method_verdicts"]["retrain"]["verdict"] == "PASS"
