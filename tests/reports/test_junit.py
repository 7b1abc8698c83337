import xml.etree.ElementTree as ET

import pytest

from junit_schema import check_counts, check_junit_schema
from reports.junit import render_junit, write_junit


def row(method, rule, verdict, value=0.1, threshold=0.05, op="<=", interval=None, reason=None):
    return {
        "method": method,
        "rule": rule,
        "probe": "equivalence.per_example",
        "op": op,
        "threshold": threshold,
        "value": value,
        "interval": interval,
        "verdict": verdict,
        "reason": reason or f"{method} {rule} is {verdict}",
    }


def synthetic(method="finetune", rule="mia.auc <= 0.55"):
    return {
        "created": "2026-01-02T03:04:05+00:00",
        "spec": {"audit": {"name": "tiny"}},
        "manifest": {"spec_digest": "abc123"},
        "verdict": "FAIL",
        "verdict_reason": f"{method} fails the policy",
        "verdicts": [
            row("identity", "fraction_different <= 0.05", "FAIL", value=0.14583333, reason="0.1458 fails <= 0.05"),
            row("identity", rule, "PASS", value=0.5),
            row("retrain", "fraction_different <= 0.05", "PASS", value=0.0),
            row("retrain", rule, "PASS", value=0.5),
            row(method, "fraction_different <= 0.05", "FAIL", value=0.8263888, interval=[0.7, 0.9]),
            row(method, rule, "INCONCLUSIVE", value=0.5575, reason="interval [0.5373, 0.5812] contains 0.55"),
            row(method, "tost.UA", "PASS", value="equivalent", threshold="equivalent", op="=="),
        ],
        "method_verdicts": {
            "identity": {"verdict": "FAIL", "control": "identity", "expected": "FAIL", "control_problem": None},
            "retrain": {"verdict": "PASS", "control": "retrain", "expected": "PASS", "control_problem": None},
            method: {"verdict": "FAIL", "control": None, "expected": None, "control_problem": None},
        },
    }


def parse(results) -> ET.Element:
    return ET.fromstring(render_junit(results))


def test_counts_and_testcases():
    root = parse(synthetic())
    assert root.tag == "testsuites"
    assert root.get("name") == "salun: tiny"
    assert [s.get("name") for s in root] == ["identity", "retrain", "finetune", "audit"]
    assert (root.get("tests"), root.get("failures"), root.get("skipped"), root.get("errors")) == ("9", "1", "1", "0")
    check_counts(root)
    finetune = root.find("testsuite[@name='finetune']")
    assert (finetune.get("tests"), finetune.get("failures"), finetune.get("skipped")) == ("3", "1", "1")
    assert finetune.get("timestamp") == "2026-01-02T03:04:05+00:00"
    for case in root.iter("testcase"):
        assert case.get("classname") and case.get("name") and case.get("time") == "0.000"  # no wall_time_s recorded
    assert {c.get("classname") for c in finetune.iter("testcase")} == {"salun.finetune"}


def test_failure_skipped_and_pass_content():
    root = parse(synthetic())
    failure = root.find("testsuite[@name='finetune']/testcase[@name='fraction_different <= 0.05']/failure")
    assert failure.get("type") == "FAIL"
    message = failure.get("message")
    assert "value 0.8264" in message and "threshold <= 0.05" in message
    assert "finetune fraction_different <= 0.05 is FAIL" in message
    assert "finetune fraction_different <= 0.05 is FAIL" in failure.text and "interval [0.7, 0.9]" in failure.text
    skipped = root.find("testsuite[@name='finetune']/testcase[@name='mia.auc <= 0.55']/skipped")
    assert skipped.get("message") == "INCONCLUSIVE: interval [0.5373, 0.5812] contains 0.55"
    passed = root.find("testsuite[@name='finetune']/testcase[@name='tost.UA']")
    assert len(passed.findall("failure")) == len(passed.findall("skipped")) == 0
    assert passed.findtext("system-out") == "finetune tost.UA is PASS"
    identity = root.find("testsuite[@name='identity']/testcase[@name='fraction_different <= 0.05']")
    assert identity.find("failure") is None  # the control fails the rule as it must: a passing case
    assert identity.findtext("system-out") == ("the identity control FAILs this rule, as a sound policy must: "
                                               "value 0.1458, threshold <= 0.05: 0.1458 fails <= 0.05")


def test_a_retrain_control_that_fails_a_rule_is_a_failure():
    results = synthetic()
    results["verdicts"][2] = row("retrain", "fraction_different <= 0.05", "FAIL", value=0.2)
    results["method_verdicts"]["retrain"].update(verdict="FAIL", control_problem="stricter than retraining")
    root = parse(results)
    assert root.find("testsuite[@name='retrain']/testcase[@name='fraction_different <= 0.05']/failure") is not None
    assert root.find("testsuite[@name='audit']/testcase[@name='control retrain must PASS']/failure") is not None


def test_audit_suite():
    results = synthetic()
    audit = parse(results).find("testsuite[@name='audit']")
    assert audit.find("properties/property[@name='spec_digest']").get("value") == "abc123"
    names = [c.get("name") for c in audit.findall("testcase")]
    assert names == ["control identity must FAIL", "control retrain must PASS"]  # a FAIL is its failing rules
    assert audit.findtext("system-out") == "verdict FAIL: finetune fails the policy"
    assert audit.find("properties/property[@name='verdict']").get("value") == "FAIL"
    assert audit.findall(".//failure") == []

    results["verdict"], results["verdict_reason"] = "INCONCLUSIVE", "undecided"
    results["method_verdicts"]["retrain"].update(verdict="FAIL", control_problem="retrain control failed: MIA")
    root = parse(results)
    audit = root.find("testsuite[@name='audit']")
    assert audit.find("testcase[@name='overall verdict']/skipped").get("message") == "INCONCLUSIVE: undecided"
    failure = audit.find("testcase[@name='control retrain must PASS']/failure")
    assert failure.get("message") == "retrain control failed: MIA"
    assert (audit.get("tests"), audit.get("failures"), audit.get("skipped")) == ("3", "1", "1")
    check_counts(root)

    results["method_verdicts"]["retrain"].update(verdict="INCONCLUSIVE", control_problem="too few models")
    skipped = parse(results).find("testsuite[@name='audit']/testcase[@name='control retrain must PASS']/skipped")
    assert skipped.get("message") == "INCONCLUSIVE: too few models"

    results["verdict"] = "PASS"
    overall = parse(results).find("testsuite[@name='audit']/testcase[@name='overall verdict']")
    assert [child.tag for child in overall] == ["system-out"]


def test_schema_synthetic():
    check_junit_schema(parse(synthetic()))


def test_schema_checker_rejects_bad_shapes():
    bad = parse(synthetic())
    bad.find("testsuite/testcase").append(ET.Element("testcase", classname="x", name="y", time="0"))
    with pytest.raises(AssertionError):
        check_junit_schema(bad)
    missing = parse(synthetic())
    del missing.find("testsuite/testcase").attrib["classname"]
    with pytest.raises(AssertionError):
        check_junit_schema(missing)


def test_schema_of_the_default_example(default_example):
    results, out = default_example
    root = ET.parse(out / "junit.xml").getroot()
    check_junit_schema(root)
    check_counts(root)
    assert int(root.get("tests")) == len(results["verdicts"]) + (results["verdict"] != "FAIL") + sum(
        1 for entry in results["method_verdicts"].values() if entry["control"] is not None
    )


def _failing_audited_rules(results):
    audited = {label for label, entry in results["method_verdicts"].items() if entry["control"] is None}
    return sorted((f"salun.{r['method']}", r["rule"]) for r in results["verdicts"]
                  if r["method"] in audited and r["verdict"] == "FAIL")


def _failures(results):
    return sorted((case.get("classname"), case.get("name")) for case in parse(results).iter("testcase")
                  if case.find("failure") is not None)


def test_a_failing_audit_has_one_failure_per_failing_rule_and_a_passing_one_none(default_example):
    from audit.config.policy import overall_verdict

    results, _ = default_example
    assert results["verdict"] == "FAIL"
    assert _failures(results) == _failing_audited_rules(results) != []
    # the controls that behave as they must (identity FAILs), judged alone by the policy: a PASS
    controls = {label: entry for label, entry in results["method_verdicts"].items()
                if entry["control"] is not None and entry["control_problem"] is None}
    passing = {**results, "method_verdicts": controls,
               "verdicts": [r for r in results["verdicts"] if r["method"] in controls]}
    passing["verdict"], passing["verdict_reason"] = overall_verdict(controls)
    assert passing["verdict"] == "PASS" and any(r["verdict"] == "FAIL" for r in passing["verdicts"])
    assert _failures(passing) == []


def test_user_strings_escaped_and_round_trip():
    hostile = "<script>alert(1)</script>&\"'"
    results = synthetic(method=f"m{hostile}", rule=f"r{hostile}")
    results["spec"]["audit"]["name"] = hostile
    text = render_junit(results)
    assert "<script>" not in text
    root = ET.fromstring(text)
    assert root.get("name") == f"salun: {hostile}"
    suite = root.find("testsuite[3]")
    assert suite.get("name") == f"m{hostile}"
    case = [c for c in suite.findall("testcase") if c.get("name") == f"r{hostile}"]
    assert len(case) == 1
    assert case[0].get("classname") == f"salun.m{hostile}"
    assert case[0].find("skipped") is not None
    assert root.find("testsuite[@name='audit']").findtext("system-out") == f"verdict FAIL: m{hostile} fails the policy"
    check_junit_schema(root)


def test_control_characters_do_not_break_xml():
    results = synthetic(method="bad\x00\x1bname")
    root = parse(results)
    assert root.find("testsuite[3]").get("name") == "bad\ufffd\ufffdname"


def test_write_junit(tmp_path):
    path = tmp_path / "deep" / "junit.xml"
    assert write_junit(synthetic(), path) == path
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites" and root.get("tests") == "9"
    assert list(tmp_path.joinpath("deep").iterdir()) == [path]


def timed(results):
    results = {**results, "wall_time_s": {"equivalence": 1.25, "mia": 3.5, "metrics": 0.0004}}
    results["verdicts"] = [{**r, "probe": "mia.ulira.auc"} if r["rule"] == "mia.auc <= 0.55" else r
                           for r in results["verdicts"]]
    return results


def test_each_rule_case_takes_the_time_of_the_section_it_reads_and_a_suite_their_sum():
    root = parse(timed(synthetic()))
    check_junit_schema(root)
    finetune = root.find("testsuite[@name='finetune']")
    times = {case.get("name"): case.get("time") for case in finetune.iter("testcase")}
    assert times == {"fraction_different <= 0.05": "1.250", "mia.auc <= 0.55": "3.500", "tost.UA": "1.250"}
    assert finetune.get("time") == "6.000"
    audit = root.find("testsuite[@name='audit']")
    assert {case.get("time") for case in audit.iter("testcase")} == {"0.000"}  # decided from the verdicts alone
    assert float(root.get("time")) == pytest.approx(sum(float(s.get("time")) for s in root.findall("testsuite")))


def test_results_without_recorded_times_give_zero():
    root = parse(synthetic())
    assert {case.get("time") for case in root.iter("testcase")} == {"0.000"} and root.get("time") == "0.000"


def test_the_default_example_cases_carry_their_probes_recorded_times(default_example):
    results, out = default_example
    recorded = results["wall_time_s"]
    assert set(recorded) >= {"metrics", "equivalence", "mia"} and all(t > 0 for t in recorded.values())
    rows = {(f"salun.{r['method']}", r["rule"]): r["probe"].split(".")[0] for r in results["verdicts"]}
    cases = [case for case in ET.parse(out / "junit.xml").getroot().iter("testcase")
             if (case.get("classname"), case.get("name")) in rows]
    assert len(cases) == len(rows)
    for case in cases:
        section = rows[(case.get("classname"), case.get("name"))]
        assert float(case.get("time")) > 0 and case.get("time") == f"{recorded[section]:.3f}"
