"""A JUnit XML report of an audit's verdicts, from results.json alone, for CI dashboards.

One testsuite per method with one testcase per policy rule, and an "audit" suite with the
control checks and the overall verdict. An audited method's FAIL is a <failure>, INCONCLUSIVE a
<skipped> (the `--gate` exit code 3 carries it), PASS a plain testcase. A control that behaves
as a sound policy needs (identity FAILs a rule) is a passing case that says so; only a control
that misbehaves is a failure. So a passing audit has no failure at all, and a failing one
exactly one per failing rule of an audited method: its overall verdict is then told in the
audit suite's output, not as one more failure. GitLab, GitHub test reporters and Jenkins read
this shape. A rule's case takes the seconds results.json records for building the section
its path reads (`wall_time_s`), a suite the sum of its cases. ElementTree escapes every user
string; characters XML 1.0 cannot hold at all are replaced by U+FFFD.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from audit.core.files import write_text_atomic
from reports.text import rendering, xml_safe


def _text(value: Any) -> str:
    if isinstance(value, float):
        value = f"{value:.4g}"
    return xml_safe(value)


def _seconds(value: float) -> str:
    return f"{value:.3f}"


def _section_seconds(results: dict[str, Any], row: dict[str, Any]) -> float:
    """The recorded wall time of the section the rule's path reads; 0 where none was recorded."""
    seconds = (results.get("wall_time_s") or {}).get(str(row.get("probe") or "").split(".")[0], 0.0)
    return float(seconds) if isinstance(seconds, (int, float)) and seconds >= 0 else 0.0


def _case(suite: ET.Element, classname: str, name: str, verdict: str, message: str, detail: str,
          seconds: float = 0.0) -> None:
    case = ET.SubElement(suite, "testcase", classname=_text(classname), name=_text(name), time=_seconds(seconds))
    if verdict == "FAIL":
        ET.SubElement(case, "failure", message=_text(message), type="FAIL").text = _text(detail)
    elif verdict == "INCONCLUSIVE":
        ET.SubElement(case, "skipped", message=_text(f"INCONCLUSIVE: {message}"))
    elif detail:
        ET.SubElement(case, "system-out").text = _text(detail)


def _rule_case(suite: ET.Element, method: str, row: dict[str, Any], expected: str | None, seconds: float) -> None:
    """`expected`: the verdict a control must get (identity: FAIL); None for an audited method."""
    reason, verdict = row.get("reason") or "", row.get("verdict")
    detail = reason
    if row.get("interval"):
        low, high = row["interval"]
        detail += f"\ninterval [{_text(low)}, {_text(high)}]"
    message = reason
    if verdict == "FAIL":
        message = f"value {_text(row.get('value'))}, threshold {row.get('op')} {_text(row.get('threshold'))}: {reason}"
    if verdict == "FAIL" and expected == "FAIL":
        verdict, detail = "PASS", f"the {method} control FAILs this rule, as a sound policy must: {message}"
    _case(suite, f"salun.{method}", row["rule"], verdict, message, detail, seconds)


def _count(element: ET.Element) -> None:
    cases = element.findall(".//testcase")
    element.set("tests", str(len(cases)))
    element.set("failures", str(sum(len(c.findall("failure")) for c in cases)))
    element.set("errors", "0")
    element.set("skipped", str(sum(len(c.findall("skipped")) for c in cases)))
    element.set("time", _seconds(sum(float(c.get("time")) for c in cases)))


def render_junit(results: dict[str, Any]) -> str:
    with rendering(results, "junit.xml"):
        return _junit(results)


def _junit(results: dict[str, Any]) -> str:
    root = ET.Element("testsuites", name=_text(f"salun: {results['spec']['audit']['name']}"))
    methods = results.get("method_verdicts", {})
    rows: dict[str, list[dict[str, Any]]] = {label: [] for label in methods}
    for row in results.get("verdicts", []):
        rows.setdefault(row["method"], []).append(row)
    for method, method_rows in rows.items():
        suite = ET.SubElement(root, "testsuite", name=_text(method))
        expected = (methods.get(method) or {}).get("expected")
        for row in method_rows:
            _rule_case(suite, method, row, expected, _section_seconds(results, row))
    audit = ET.SubElement(root, "testsuite", name="audit")
    properties = ET.SubElement(audit, "properties")
    digest = results.get("manifest", {}).get("spec_digest", "")
    ET.SubElement(properties, "property", name="spec_digest", value=_text(digest))
    ET.SubElement(properties, "property", name="verdict", value=_text(results.get("verdict") or ""))
    reason = results.get("verdict_reason") or ""
    failed = results.get("verdict") == "FAIL"  # then its failing rules are the failures above
    if not failed:
        _case(audit, "salun.audit", "overall verdict", results.get("verdict"), reason, reason)
    for label, entry in methods.items():
        if entry.get("control") is None:
            continue
        problem = entry.get("control_problem")
        name = f"control {label} must {entry.get('expected')}"
        # a control that cannot decide (too few models) is undecided, not wrong
        verdict = "PASS" if problem is None else "INCONCLUSIVE" if entry.get("verdict") == "INCONCLUSIVE" else "FAIL"
        detail = problem if problem is not None else f"{label} is {entry.get('verdict')} as expected"
        _case(audit, "salun.audit", name, verdict, problem or "", detail)
    if failed:
        ET.SubElement(audit, "system-out").text = _text(f"verdict FAIL: {reason}")
    for suite in root:
        _count(suite)
        suite.set("timestamp", _text(results.get("created", "")))
    _count(root)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def write_junit(results: dict[str, Any], path: Path) -> Path:
    write_text_atomic(path, render_junit(results))
    return path
