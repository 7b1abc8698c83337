"""Policy rules: parsing, the three verdicts with their reasons, and the controls."""

import pytest

from audit.core.errors import SalunInputError
from audit.config.policy import (DEFAULT_RULES, FAIL, INCONCLUSIVE, PASS, apply_policy, evaluate_rule, overall_verdict,
                          parse_rule)
from audit.stats.tost import tost_decision, tost_welch


def judge(text, namespace):
    return evaluate_rule(parse_rule(text), namespace)


def test_rules_parse_into_path_operator_and_threshold():
    rule = parse_rule("  mia.ulira.auc<=0.55 ")
    assert (rule.path, rule.op, rule.threshold) == (("mia", "ulira", "auc"), "<=", 0.55)
    rule = parse_rule("equivalence.tost.UA == 'equivalent'")
    assert (rule.op, rule.threshold) == ("==", "equivalent")
    assert rule.holds("equivalent") and not rule.holds("different")
    for text in DEFAULT_RULES:
        parse_rule(text)
    with pytest.raises(SalunInputError, match="policy.rules: threshold must be finite"):
        parse_rule("metrics.UA >= nan")


@pytest.mark.parametrize(("interval", "expected"), [
    ([0.57, 0.63], FAIL), ([0.52, 0.58], INCONCLUSIVE), ([0.48, 0.53], PASS)])
def test_a_number_with_an_interval_decides_only_when_the_whole_interval_agrees(interval, expected):
    namespace = {"mia": {"ulira": {"auc": {"value": sum(interval) / 2, "ci95": interval}}}}
    row = judge("mia.ulira.auc <= 0.55", namespace)
    assert row["verdict"] == expected and row["interval"] == interval and row["threshold"] == 0.55
    assert f"[{interval[0]:.4g}, {interval[1]:.4g}]" in row["reason"]


def test_lower_bound_rules_read_the_interval_from_the_other_end():
    namespace = {"metrics": {"TA": {"mean": 0.95, "ci95": [0.93, 0.97], "n": 5}}}
    assert judge("metrics.TA >= 0.9", namespace)["verdict"] == PASS
    assert judge("metrics.TA >= 0.94", namespace)["verdict"] == INCONCLUSIVE
    assert judge("metrics.TA > 0.98", namespace)["verdict"] == FAIL


def test_an_epsilon_bound_below_what_alike_populations_give_is_inconclusive_not_failed():
    neurips = {"eps_median": 1.7, "null": {"eps_median": 1.61}}
    namespace = {"equivalence": {"neurips2023": neurips}}
    row = judge("equivalence.neurips2023.eps_median <= 1.0", namespace)
    assert row["verdict"] == INCONCLUSIVE and "1.61" in row["reason"] and "below what they resolve" in row["reason"]
    assert judge("equivalence.neurips2023.eps_median <= 1.65", namespace)["verdict"] == FAIL
    assert judge("equivalence.neurips2023.eps_median <= 2.0", namespace)["verdict"] == PASS


def test_a_certified_bound_that_could_never_exceed_the_threshold_cannot_pass():
    namespace = {"equivalence": {"high_confidence": {"median": 0.0, "max_certifiable": 0.9}}}
    row = judge("equivalence.high_confidence.median <= 1.0", namespace)
    assert row["verdict"] == INCONCLUSIVE and "0.9" in row["reason"]
    assert judge("equivalence.high_confidence.median <= 0.5", namespace)["verdict"] == PASS
    namespace["equivalence"]["high_confidence"]["median"] = 0.7
    assert judge("equivalence.high_confidence.median <= 0.5", namespace)["verdict"] == FAIL


def test_a_per_example_test_that_cannot_flag_anything_passes_nothing():
    ks = {"fraction_different": 0.0, "alpha": 0.05, "min_p_value": 0.1}
    namespace = {"equivalence": {"per_example": {"ks": ks}}}
    row = judge("equivalence.per_example.ks.fraction_different <= 0.05", namespace)
    assert row["verdict"] == INCONCLUSIVE and "smallest p-value is 0.1" in row["reason"]
    ks["min_p_value"] = 1e-5
    assert judge("equivalence.per_example.ks.fraction_different <= 0.05", namespace)["verdict"] == PASS
    ks["fraction_different"] = 0.2
    assert judge("equivalence.per_example.ks.fraction_different <= 0.05", namespace)["verdict"] == FAIL


@pytest.mark.parametrize(("decision", "expected"), [
    ("equivalent", PASS), ("different", FAIL), ("undecided", INCONCLUSIVE)])
def test_equivalence_decisions_map_to_verdicts_with_the_tests_reason(decision, expected):
    namespace = {"equivalence": {"tost": {"MIA": {"decision": decision, "why": f"because {decision}"}}}}
    row = judge('equivalence.tost.MIA == "equivalent"', namespace)
    assert row["verdict"] == expected and row["value"] == decision and row["reason"] == f"because {decision}"


def test_tost_decision_separates_equivalent_different_and_underpowered():
    close = [0.50, 0.51, 0.49, 0.50, 0.505, 0.495]
    far = [0.60, 0.61, 0.59, 0.60, 0.605, 0.595]
    noisy = [0.3, 0.7, 0.45, 0.62, 0.38, 0.55]

    def decide(u, r):
        tests = {"welch": tost_welch(u, r, 0.02), "bootstrap": tost_welch(u, r, 0.02)}
        return tost_decision(tests, 0.02, 0.05)

    assert decide(close, close)["decision"] == "equivalent"
    assert decide(far, close)["decision"] == "different"
    underpowered = decide(noisy, close)
    assert underpowered["decision"] == "undecided" and "underpowered" in underpowered["why"]
    assert decide([0.5], close)["decision"] == "undecided"


def test_numbers_that_were_not_computed_are_inconclusive_and_say_why():
    assert "attacks.run is empty" in judge("mia.ulira.auc <= 0.55", {"mia": None})["reason"]
    row = judge("mia.ulira.auc <= 0.55", {"mia": {"lira_offline": {}}})
    assert row["verdict"] == INCONCLUSIVE and row["reason"] == "no number at mia.ulira; known: lira_offline"
    told = evaluate_rule(parse_rule("mia.ulira.auc <= 0.55"), {"mia": {"lira_offline": {}}},
                         explain=lambda path: f"{path[1]} was not run" if path[1] == "ulira" else None)
    assert told["verdict"] == INCONCLUSIVE and told["reason"] == "ulira was not run"  # the probe knows why
    row = judge("equivalence.neurips2023.eps_medain <= 2", {"equivalence": {"neurips2023": {"eps_median": 1.0}}})
    assert row["verdict"] == INCONCLUSIVE and "did you mean 'eps_median'?" in row["reason"]


def diverged_metrics(failed, usable):
    """A method's metrics table as results.json holds it: per-seed numbers of the usable models, and the failures."""
    summary = {"mean": 0.5 if usable else None, "std": None, "ci95": None, "n": usable, "per_seed": [0.5] * usable}
    return {"UA": summary, "runtime_s": summary, "failures": [{"seed": s, "reason": "non-finite loss"} for s in range(failed)]}


def test_a_method_whose_models_all_diverged_is_inconclusive_because_they_diverged_not_for_want_of_attacks():
    namespace = {"mia": None, "equivalence": None, "metrics": diverged_metrics(failed=3, usable=0)}
    for rule in ("mia.ulira.auc <= 0.55", 'equivalence.tost.UA == "equivalent"'):
        row = judge(rule, namespace)
        assert row["verdict"] == INCONCLUSIVE
        assert "every model of this method diverged (3 of 3 seeds" in row["reason"]
        assert "attacks.run is empty" not in row["reason"]


def test_a_method_with_some_diverged_models_names_how_many_beside_the_missing_test():
    row = judge('equivalence.tost.UA == "equivalent"', {"equivalence": None, "metrics": diverged_metrics(4, 1)})
    assert row["reason"] == ("no retrain-equivalence tests: they need at least 2 usable models on each side "
                             "(4 of this method's 5 models diverged)")


@pytest.mark.parametrize("padding", [40_000, 1_000_000])
def test_a_rule_padded_with_spaces_is_parsed_or_refused_in_linear_time(padding, monkeypatch):
    import time

    from audit.config import policy

    started = time.perf_counter()
    rule = parse_rule(" " * padding + "mia.ulira.auc <= 0.55" + " " * padding)
    assert (rule.text, rule.threshold) == ("mia.ulira.auc <= 0.55", 0.55)
    with pytest.raises(SalunInputError, match="a rule has at most 500"):
        parse_rule("mia.ulira.auc <= 0.55" + " " * padding + "x")
    monkeypatch.setattr(policy, "MAX_RULE_LENGTH", 10 * padding)  # the pattern itself, without the bound
    with pytest.raises(SalunInputError, match="is neither a number"):
        parse_rule("mia.ulira.auc <= 0.55" + " " * padding + "x")  # quadratic once: 20 s at 40,000
    assert time.perf_counter() - started < 5  # linear takes milliseconds


def test_a_rule_without_a_threshold_says_what_a_rule_looks_like():
    with pytest.raises(SalunInputError, match="expected `<path> <op> <threshold>`"):
        parse_rule("mia.ulira.auc <=")


def test_a_malformed_rule_is_quoted_short_on_one_line():
    with pytest.raises(SalunInputError) as raised:
        parse_rule("mia.ulira.auc ~ " + "x\n" * 200)
    assert "\n" not in str(raised.value) and len(str(raised.value)) < 200


def method(verdict, control=None):
    return {"verdict": verdict, "control": control}


def controls(identity, retrain):
    from audit.config.policy import _control_problem
    out = {}
    for name, verdict in (("identity", identity), ("retrain", retrain)):
        out[name] = {**method(verdict, name), "control_problem": _control_problem(name, verdict)}
    return out


def test_the_overall_verdict_trusts_a_pass_only_when_the_policy_fails_the_identity_control():
    assert overall_verdict({**controls(FAIL, PASS), "salun": method(PASS)})[0] == PASS
    verdict, reason = overall_verdict({**controls(PASS, PASS), "salun": method(PASS)})
    assert verdict == INCONCLUSIVE and "does not fail the identity control" in reason
    verdict, reason = overall_verdict({**controls(FAIL, FAIL), "salun": method(FAIL)})
    assert verdict == INCONCLUSIVE and "stricter than retraining" in reason
    assert overall_verdict({**controls(FAIL, PASS), "salun": method(FAIL), "ft": method(PASS)}) == \
        (FAIL, "salun fail the policy")
    assert overall_verdict({**controls(FAIL, PASS), "salun": method(INCONCLUSIVE)})[0] == INCONCLUSIVE
    verdict, reason = overall_verdict({"salun": method(PASS)})
    assert verdict == PASS and "no identity or retrain control" in reason


def test_apply_policy_evaluates_every_rule_on_every_method():
    good = {"mia": {"ulira": {"auc": {"value": 0.5, "ci95": [0.48, 0.52]}}}}
    leaky = {"mia": {"ulira": {"auc": {"value": 0.6, "ci95": [0.58, 0.62]}}}}
    decided = apply_policy(("mia.ulira.auc <= 0.55", "mia.ulira.auc >= 0.4"),
                           {"identity": leaky, "retrain": good, "salun": good},
                           {"identity": "identity", "retrain": "retrain", "salun": "salun"})
    assert len(decided["verdicts"]) == 6
    assert {label: m["verdict"] for label, m in decided["methods"].items()} == \
        {"identity": FAIL, "retrain": PASS, "salun": PASS}
    assert decided["verdict"] == PASS


def test_the_default_policy_reads_every_attack_the_spec_runs():
    from audit.config.policy import BACKDOOR_RULE, RELEARN_RULE
    from audit.config.spec import spec_from_dict
    from helpers import small_config

    assert spec_from_dict(small_config()).policy.rules == DEFAULT_RULES
    spec = spec_from_dict(small_config(relearn={"run": ["retain"]}, backdoor={"fraction": 0.5}))
    assert spec.policy.rules == (*DEFAULT_RULES, RELEARN_RULE, BACKDOOR_RULE)
    explicit = spec_from_dict(small_config(relearn={"run": ["retain"]}, policy={"rules": ["metrics.TA >= 0.9"]}))
    assert explicit.policy.rules == ("metrics.TA >= 0.9",)
    assert spec_from_dict(spec.to_dict()).policy.rules == spec.policy.rules  # the resolved spec keeps them


def ks_namespace(n_models, fraction=0.0):
    return {"equivalence": {"per_example": {"ks": {
        "fraction_different": fraction, "median_statistic": 0.2, "alpha": 0.05, "min_p_value": 1e-5,
        "n_models": n_models, "n_examples": 144, "power_guard": "ks_fraction"}}}}


def test_a_ks_rule_without_power_cannot_pass_and_says_how_many_models_would_decide():
    rule = "equivalence.per_example.ks.fraction_different <= 0.05"
    few = judge(rule, ks_namespace(10))
    assert few["verdict"] == INCONCLUSIVE
    assert "shifted by one standard deviation" in few["reason"] and "models per side would reach 80%" in few["reason"]
    needed = int(few["reason"].split("about ")[1].split(" models")[0])
    assert 16 < needed <= 64
    assert judge(rule, ks_namespace(needed + 8))["verdict"] == PASS
    # a FAIL needs no power: many flagged examples are a finding at any N
    assert judge(rule, ks_namespace(10, fraction=0.3))["verdict"] == FAIL


def test_an_interval_across_the_threshold_says_which_units_would_decide_it():
    def namespace(se_models, se_examples):
        return {"mia": {"ulira": {"auc": {"value": 0.53, "ci95": [0.50, 0.56], "se": 0.015,
                                          "ci95_by_unit": {"models": {"se": se_models}, "examples": {"se": se_examples}}},
                                  "units": {"models": {"members": 10}}}}}
    by_models = judge("mia.ulira.auc <= 0.55", namespace(0.014, 0.004))
    assert by_models["verdict"] == INCONCLUSIVE and "models per population would decide it" in by_models["reason"]
    by_examples = judge("mia.ulira.auc <= 0.55", namespace(0.004, 0.014))
    assert "a larger forget set would" in by_examples["reason"]


def test_a_per_class_auc_decides_on_its_own_interval():
    by_class = {"3": {"value": 0.58, "ci95": [0.45, 0.71], "se": 0.06, "units": {"models": {"members": 10}}},
                "4": {"value": 0.70, "ci95": [0.62, 0.78], "se": 0.04, "units": {"models": {"members": 10}}}}
    namespace = {"mia": {"ulira": {"per_class_auc": by_class}}}
    wide = judge("mia.ulira.per_class_auc.3 <= 0.6", namespace)
    assert wide["verdict"] == INCONCLUSIVE and wide["interval"] == [0.45, 0.71]
    assert "more models or more examples would decide" in wide["reason"]
    assert judge("mia.ulira.per_class_auc.4 <= 0.6", namespace)["verdict"] == FAIL
    assert judge("mia.ulira.per_class_auc.4.value <= 0.75", namespace)["verdict"] == PASS  # the bare value, asked for


def test_a_partial_retrain_that_is_not_failed_makes_the_audit_inconclusive():
    from audit.config.policy import _control_problem
    partial = {"verdict": PASS, "control": "partial_retrain",
               "control_problem": _control_problem("partial_retrain", PASS)}
    verdict, reason = overall_verdict({**controls(FAIL, PASS), "partial": partial, "salun": method(PASS)})
    assert verdict == INCONCLUSIVE and "cannot catch incomplete forgetting" in reason
    partial = {"verdict": FAIL, "control": "partial_retrain", "control_problem": None}
    assert overall_verdict({**controls(FAIL, PASS), "partial": partial, "salun": method(PASS)})[0] == PASS
