"""A policy's rules are checked against the numbers the audit's sections declare, when the spec is
validated; the declarations match what an audit writes."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from helpers import small_spec, write_toml, small_config

from attacks.mia.rule_paths import mia_why_absent
from audit.config.policy import DEFAULT_RULES, parse_rule
from audit.config.rule_paths import ANY, NUMBER_KEYS, check_rule_paths
from audit.config.spec import default_spec, load_spec
from audit.core.errors import SalunInputError
from audit.core.probes import declared_rule_paths
from audit.core.registry import ATTACKS

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("**/*.toml") if p.name != "pyproject.toml")


def rules(*texts: str) -> dict:
    return {"rules": list(texts)}


def test_a_misspelt_path_exits_2_from_validate_with_the_closest_number(cli, tmp_path):
    config = small_config(attacks={"run": ["threshold", "ulira"]})
    config["policy"] = rules("metrics.UA <= 0.5", "equivalence.tost.UA == \"equivalent\"", "mia.threshold_loss.auc <= 1",
                             "mia.ulria.auc <= 0.55")
    code, _, err = cli("validate", str(write_toml(tmp_path / "audit.toml", config)))
    assert code == 2
    assert err.strip() == ("salun: error: policy.rules[3]: 'mia.ulria.auc' is not a number this audit produces; "
                           "did you mean 'mia.ulira.auc'?")


@pytest.mark.parametrize("rule, suggestion", [
    ("equivalence.per_example.ks.fraction_diferent <= 0.05", "equivalence.per_example.ks.fraction_different"),
    ("metrics.UA.meen <= 0.5", "metrics.UA.mean"),
    ("relearn.recovry <= 0.05", "relearn.recovery"),
    ('backdoor.verdikt == "deleted"', "backdoor.verdict"),
    ("mia.ulira.per_class_auc <= 0.6", "mia.ulira.per_class_auc.<key>"),
])
def test_each_section_suggests_its_own_closest_number(tmp_path, rule, suggestion):
    with pytest.raises(SalunInputError, match=re.escape(f"did you mean {suggestion!r}?")):
        small_spec(tmp_path, policy=rules(rule))


def test_a_path_far_from_any_number_lists_what_its_section_holds(tmp_path):
    with pytest.raises(SalunInputError, match=r"'metrics\.zzz\.q' is not a number.*what metrics holds there: MIA, RA"):
        small_spec(tmp_path, policy=rules("metrics.zzz.q <= 1"))


@pytest.mark.parametrize("rule", ["mia.lira_offline.per_class_auc.3 <= 0.6", "mia.ulira.auc.value <= 0.6",
                                  "mia.svc_entropy.mia_efficacy <= 0.5", "relearn.few_shot == \"not faster\"",
                                  "equivalence.per_example.consistency.fraction_different <= 0.05",
                                  "metrics.runtime_s.mean <= 100"])
def test_numbers_of_sections_not_run_or_keyed_by_class_are_valid(tmp_path, rule):
    assert small_spec(tmp_path, policy=rules(rule)).policy.rules == (rule,)  # attacks, relearn: none run


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_example_config_validates(path):
    assert load_spec(path).policy.rules


def test_the_default_policies_validate():
    assert default_spec().policy.rules == DEFAULT_RULES


class _Margin:
    version, needs_shadows = "1", False

    def scores(self, logits, labels, shadows):
        return np.sort(logits, axis=2)[..., -1] - np.sort(logits, axis=2)[..., -2]


@pytest.fixture
def margin_attack():
    ATTACKS.register("margin_test")(_Margin)
    yield "margin_test"
    ATTACKS.unregister("margin_test")


def test_a_plugin_attack_gives_rules_its_numbers(tmp_path, margin_attack):
    spec = small_spec(tmp_path, attacks={"run": ["threshold", margin_attack]},
                      policy=rules(f"mia.{margin_attack}.auc <= 0.6"))
    assert spec.policy.rules == (f"mia.{margin_attack}.auc <= 0.6",)
    with pytest.raises(SalunInputError, match=re.escape(f"did you mean 'mia.{margin_attack}.auc'?")):
        small_spec(tmp_path, attacks={"run": [margin_attack]}, policy=rules("mia.margin_tset.auc <= 0.6"))


def test_a_section_that_declares_nothing_is_read_as_it_comes():
    check_rule_paths([("dp", "epsilon_gap")], {"mia": {"mia.ulira.auc"}})
    check_rule_paths([("mia", "anything")], {"mia": None})
    with pytest.raises(SalunInputError, match=r"policy.rules\[1\]: 'mia.ulira.acu'"):
        check_rule_paths([("mia", "ulira", "auc"), ("mia", "ulira", "acu")], {"mia": {"mia.ulira.auc"}})


def test_an_absent_number_says_what_to_add_only_when_its_attack_was_not_run(tmp_path):
    spec = small_spec(tmp_path, attacks={"run": ["threshold", "lira", "ulira"]})
    assert "add it to attacks.run" in mia_why_absent(spec, ("mia", "rmia_offline", "auc"))
    assert "from attack 'rmia'" in mia_why_absent(spec, ("mia", "rmia_offline", "auc"))
    assert "diverged" in mia_why_absent(spec, ("mia", "ulira", "auc"))
    assert mia_why_absent(spec, ("mia", "ulria", "auc")) is None  # not an attack's: the lookup's own hint


def test_a_rule_on_an_attack_not_run_says_to_add_it_after_the_run(tmp_path):
    from audit.pipeline import run_audit

    spec = small_spec(tmp_path, audit={"reports": []}, train={"epochs": 2},
                      attacks={"run": ["threshold"], "bootstrap": 10},
                      policy=rules("mia.threshold_loss.auc <= 1", "mia.rmia_offline.auc <= 0.6"),
                      unlearners={"identity": {}, "retrain": {}})
    rows = [row for row in run_audit(spec, tmp_path / "out", show_progress=False)["verdicts"]
            if row["rule"].startswith("mia.rmia")]
    assert rows and all(row["verdict"] == "INCONCLUSIVE" for row in rows)
    assert all("rmia_offline comes from attack 'rmia', which was not run; add it to attacks.run" == row["reason"]
               for row in rows)


def _numbers(node, path: tuple[str, ...], out: set[tuple[str, ...]]) -> None:
    """The paths a rule could read in one method's namespace: scalars other than text, decisions, and
    tables the policy reads as a number."""
    if isinstance(node, dict):
        if any(key in node for key in NUMBER_KEYS):
            out.add(path)
        for key, value in node.items():
            _numbers(value, path + (str(key),), out)
    elif isinstance(node, (int, float)) or path[-1] in ("decision", "verdict"):
        out.add(path)


def _matches(pattern: str, path: tuple[str, ...]) -> bool:
    parts = pattern.split(".")
    return len(parts) == len(path) and all(p in (ANY, q) for p, q in zip(parts, path))


@pytest.mark.slow
def test_the_declared_numbers_are_those_an_audit_writes(tmp_path):
    from audit.pipeline import run_audit

    spec = small_spec(tmp_path, audit={"reports": []}, train={"epochs": 4},
                      attacks={"run": ["threshold", "svc", "lira", "rmia", "ulira"], "bootstrap": 10,
                               "lira": {"shadows": 6}},
                      relearn={"run": ["retain", "few_shot"], "steps": 10, "checkpoints": 2, "shots": 5,
                               "max_steps": 10, "aux_size": 50},
                      backdoor={"fraction": 0.5, "target": 0, "queries": 50},
                      unlearners={"identity": {}, "retrain": {}})
    results = run_audit(spec, tmp_path / "out", show_progress=False)
    written: set[tuple[str, ...]] = set()
    for label in results["metrics"]:
        namespace = {"metrics": results["metrics"][label], "equivalence": results["equivalence"].get(label),
                     **{name: results[name]["methods"].get(label) for name in ("mia", "relearn", "backdoor")}}
        for section, entry in namespace.items():
            _numbers(entry, (section,), written)
    declared = declared_rule_paths(spec)
    check_rule_paths(sorted(path for path in written if len(path) > 1), declared)  # every number written is declared
    single_model = {"consistency", "n_reference_models"}  # what one model against the retrains gives instead
    never_written = [pattern for section, patterns in declared.items() if section != "dp"  # no [train.dp] here
                     for pattern in patterns
                     if not any(_matches(pattern, path) for path in written)
                     and not single_model & set(pattern.split(".")[1:3])]
    assert never_written == []
    assert parse_rule("mia.ulira.auc <= 0.55").path in written
