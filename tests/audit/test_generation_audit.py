"""A generation audit end to end (tiny generators), its spec checks, and its per-model numbers."""

from __future__ import annotations

import re

import numpy as np
import pytest

from audit.core.errors import SalunInputError
from audit.tasks.generation.results import sample_metrics
from audit.results.document import without_timings
from helpers import small_config, write_toml

GENERATION = {
    "task": {"kind": "generation"},
    "forget": {"kind": "class", "classes": [3], "fraction": None},
    "generation": {"width": 32, "steps": 20, "epochs": 2, "samples": 12, "grid": 3},
    "relearn": {"run": ["retain"], "steps": 10, "checkpoints": 2, "lr": 1e-3},
    "train": {"epochs": 3},
    "attacks": None,
    "unlearners": {"identity": {}, "retrain": {}, "salun": {"iterations": 5}, "dimum": {"iterations": 5}},
}


def generation_config(tmp_path, **overrides) -> dict:
    config = small_config(**{**GENERATION, **overrides})
    config["audit"]["store"] = str(tmp_path / "store")
    return config


@pytest.fixture(scope="module")
def generation_audit(tmp_path_factory):
    from audit.pipeline import run_audit
    from audit.config.spec import spec_from_dict

    folder = tmp_path_factory.mktemp("generation")
    spec = spec_from_dict(generation_config(folder))
    return run_audit(spec, folder / "out", show_progress=False), spec, folder


def test_identity_generators_are_judged_exactly_as_the_originals(generation_audit):
    results, _, _ = generation_audit
    for name in ("UA", "forgotten_probability", "retained_accuracy", "FID"):
        assert results["metrics"]["identity"][name]["per_seed"] == results["populations"]["original"][name]["per_seed"]
    assert results["metrics"]["retrain"]["UA"]["n"] == 2


def test_the_results_carry_dimra_equivalence_grids_and_a_verdict_per_rule(generation_audit):
    results, spec, _ = generation_audit
    assert results["scope"]["task"] == "generation" and results["mia"] == {}
    judge = results["generation"]["judge"]
    assert judge["n_forgotten_class"] > 0 and 0 <= judge["forgotten_class_accuracy"] <= 1
    assert results["relearn"]["measure"] == "forgotten_rate" and results["relearn"]["steps"] == [0, 5, 10]
    for label in spec.unlearners:
        assert results["relearn"]["methods"][label]["n_models"] == 2
        assert set(results["equivalence"][label]["tost"]) == {"UA", "forgotten_probability", "retained_accuracy"}
    rules = {(row["method"], row["rule"]) for row in results["verdicts"]}
    assert ("salun", 'equivalence.tost.forgotten_probability == "equivalent"') in rules
    assert ("dimum", "relearn.recovery <= 0.05") in rules
    grids = results["generation"]["grids"]
    assert np.asarray(grids["original"]).shape == (10, 3, 1, 8, 8)
    assert np.asarray(grids["methods"]["salun"]["attacked"]).shape == (3, 1, 8, 8)
    low, high = grids["pixel_range"]  # the sampler clamps x0 to the data's range
    assert low - 1e-3 <= np.min(grids["original"]) and np.max(grids["original"]) <= high + 1e-3


def test_the_report_draws_the_grids_and_a_rerun_is_served_from_the_store(generation_audit, caplog):
    from audit.pipeline import run_audit
    from audit.config.spec import spec_from_dict
    from reports.markdown import render_markdown

    results, spec, folder = generation_audit
    html = (folder / "out" / "report.html").read_text()
    assert html.count("data:image/png;base64") == 3 + 2 * len(spec.unlearners)  # original, retrain (+ attacked), methods (+ attacked)
    assert "salun: after DiMRA" in html and "The judge" in html
    table = render_markdown(results)
    assert "| salun |" in table and "DiMRA recovery" in table
    with caplog.at_level("DEBUG", logger="salun"):
        again = run_audit(spec_from_dict(generation_config(folder)), folder / "again", show_progress=True)
    assert not [line for line in caplog.messages if re.match(r"\[\S+\] done ", line)]
    assert sum("cache hit:" in line for line in caplog.messages) == 1 + 2 * (4 + 2 * 4) + 2 * 5  # judge; per seed 2 generators, 4 methods, each sampled; DiMRA on 5
    assert without_timings(again["metrics"]) == without_timings(results["metrics"])


def test_sample_metrics_on_planted_judge_outputs():
    forgotten, classes, n = 1, 3, 4
    labels = np.repeat(np.arange(classes), n)
    logits = np.full((classes * n, classes), -10.0)
    logits[np.arange(classes * n), labels] = 10.0       # the judge sees every sample as its class...
    logits[labels == forgotten] = [10.0, -10.0, -10.0]  # ...except class 1's, all read as 0
    logits[9] = [10.0, -10.0, -10.0]                    # and one class-2 sample in 4, read as 0
    rng = np.random.default_rng(0)
    arrays = {"labels": labels, "logits": logits, "features": rng.normal(size=(classes * n, 2)),
              "real_features": rng.normal(size=(20, 2)), "real_labels": np.tile(np.arange(classes), 7)[:20]}
    values = sample_metrics(arrays, forgotten, classes)
    assert values["UA"] == 1.0
    assert values["forgotten_probability"] == pytest.approx(0.0, abs=1e-8)
    assert values["retained_accuracy"] == pytest.approx((1.0 + 0.75) / 2)
    assert values["FID"] > 0


@pytest.mark.parametrize("override, message", [
    ({"forget": {"kind": "random", "fraction": 0.1, "classes": None}}, "forget: a generation audit forgets one class"),
    ({"forget": {"kind": "class", "classes": [3, 4]}}, "forget.classes = [c]"),
    ({"attacks": {"run": ["threshold"]}}, "attacks.run"),
    ({"backdoor": {"fraction": 0.5}}, "backdoor.fraction"),
    ({"relearn": {"run": ["few_shot"]}}, "relearn.run"),
    ({"unlearners": {"scrub": {}}}, "unlearners.scrub: unknown generation unlearner 'scrub'"),
    ({"generation": {"samples": 4, "grid": 8}}, "generation.grid"),
    ({"unlearners": {"dimum": {"alternative": "class:x"}}}, "unlearners.dimum: alternative must be"),
])
def test_a_generation_spec_names_what_it_cannot_do(tmp_path, override, message):
    from audit.config.spec import spec_from_dict

    config = generation_config(tmp_path)
    for section, values in override.items():
        config[section] = values if section == "unlearners" else {**config.get(section, {}), **values}
    config["forget"] = {k: v for k, v in config["forget"].items() if v is not None}
    with pytest.raises(SalunInputError, match=message.replace("[", r"\[").replace("]", r"\]")):
        spec_from_dict(config)


def test_the_cli_rejects_a_bad_generation_field_with_exit_2(tmp_path, cli):
    config = generation_config(tmp_path)
    config["generation"] = {**config["generation"], "schedule": "quadratic"}
    config["forget"] = {k: v for k, v in config["forget"].items() if v is not None}
    code, _, err = cli("audit", str(write_toml(tmp_path / "bad.toml", config)))
    assert code == 2 and "generation.schedule" in err


def test_salun_verify_reproduces_a_generation_audit_bit_for_bit(generation_audit):
    from audit.verify import verify

    _, _, folder = generation_audit
    outcome = verify(folder / "out" / "results.json")
    assert outcome["identical"], outcome["differences"][:3]


@pytest.mark.slow
def test_on_real_generators_identity_fails_retrain_passes_and_salun_forgets_the_class(tmp_path):
    """Two seeds of the example's generators: the controls separate, and SalUn with a retain
    weight that works at this scale forgets the 3s, keeps the other digits and gives DiMRA
    nothing to bring back."""
    from audit.pipeline import run_audit
    from audit.config.spec import load_spec, spec_from_dict
    from audit.engine.options import ExecutorChoice

    config = load_spec("examples/digits-diffusion.toml").to_dict()
    config["audit"].update(seeds=2, store=str(tmp_path / "store"), reports=["junit"])
    config["generation"].update(samples=50)
    config["unlearners"] = {label: config["unlearners"][label] for label in ("identity", "retrain", "salun_alpha01")}
    results = run_audit(spec_from_dict(config), tmp_path / "out", executor=ExecutorChoice(workers=2),
                        show_progress=False)
    identity, retrain, salun = (results["metrics"][k] for k in ("identity", "retrain", "salun_alpha01"))
    assert identity["UA"]["mean"] < 0.1 and retrain["UA"]["mean"] > 0.9 and salun["UA"]["mean"] > 0.9
    assert salun["retained_accuracy"]["mean"] > 0.9
    relearn = results["relearn"]["methods"]
    assert relearn["identity"]["recovery"]["value"] > 0.5 and relearn["salun_alpha01"]["recovery"]["value"] < 0.05
    assert results["method_verdicts"]["identity"]["verdict"] == "FAIL"
    assert results["method_verdicts"]["retrain"]["verdict"] != "FAIL"


def test_the_unet_denoiser_runs_the_same_audit(tmp_path):
    from audit.pipeline import run_audit
    from audit.config.spec import spec_from_dict

    config = generation_config(tmp_path, generation={**GENERATION["generation"], "arch": "unet", "width": 8},
                               relearn={"run": []}, unlearners={"identity": {}, "salun": {"iterations": 3}})
    config["audit"]["reports"] = []
    results = run_audit(spec_from_dict(config), tmp_path / "out", show_progress=False)
    assert results["scope"]["model"] == "DDPM (unet)" and results["relearn"] == {}
    assert results["metrics"]["salun"]["UA"]["n"] == 2 and not results["metrics"]["salun"]["failures"]
