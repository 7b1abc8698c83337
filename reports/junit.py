"""A JUnit XML report of an audit's verdicts, from results.json alone, for CI dashboards.

One testsuite per method with one testcase per policy rule, and an "audit" suite with the
overall verdict and the control checks. FAIL is a <failure>, INCONCLUSIVE a <skipped> (the
`--gate` exit code 3 carries it), PASS a plain testcase. GitLab, GitHub test reporters and
Jenkins read this shape. ElementTree escapes every user string; characters XML 1.0 cannot
hold at all are replaced by U+FFFD.
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


def _case(suite: ET.Element, classname: str, name: str, verdict: str, message: str, detail: str) -> None:
    case = ET.SubElement(suite, "testcase", classname=_text(classname), name=_text(name), time="0")
    if verdict == "FAIL":
        ET.SubElement(case, "failure", message=_text(message), type="FAIL").text = _text(detail)
    elif verdict == "INCONCLUSIVE":
        ET.SubElement(case, "skipped", message=_text(f"INCONCLUSIVE: {message}"))
    elif detail:
        ET.SubElement(case, "system-out").text = _text(detail)


def _rule_case(suite: ET.Element, method: str, row: dict[str, Any]) -> None:
    reason, verdict = row.get("reason") or "", row.get("verdict")
    detail = reason
    if row.get("interval"):
        low, high = row["interval"]
        detail += f"\ninterval [{_text(low)}, {_text(high)}]"
    message = reason
    if verdict == "FAIL":
        message = f"value {_text(row.get('value'))}, threshold {row.get('op')} {_text(row.get('threshold'))}: {reason}"
    _case(suite, f"salun.{method}", row["rule"], verdict, message, detail)


def _count(element: ET.Element) -> None:
    cases = element.findall(".//testcase")
    element.set("tests", str(len(cases)))
    element.set("failures", str(sum(len(c.findall("failure")) for c in cases)))
    element.set("errors", "0")
    element.set("skipped", str(sum(len(c.findall("skipped")) for c in cases)))
    element.set("time", "0")


def render_junit(results: dict[str, Any]) -> str:
    with rendering(results, "junit.xml"):
        return _junit(results)


def _junit(results: dict[str, Any]) -> str:
    root = ET.Element("testsuites", name=_text(f"salun: {results['spec']['audit']['name']}"))
    rows: dict[str, list[dict[str, Any]]] = {label: [] for label in results.get("method_verdicts", {})}
    for row in results.get("verdicts", []):
        rows.setdefault(row["method"], []).append(row)
    for method, method_rows in rows.items():
        suite = ET.SubElement(root, "testsuite", name=_text(method))
        for row in method_rows:
            _rule_case(suite, method, row)
    audit = ET.SubElement(root, "testsuite", name="audit")
    properties = ET.SubElement(audit, "properties")
    digest = results.get("manifest", {}).get("spec_digest", "")
    ET.SubElement(properties, "property", name="spec_digest", value=_text(digest))
    reason = results.get("verdict_reason") or ""
    _case(audit, "salun.audit", "overall verdict", results.get("verdict"), reason, reason)
    for label, entry in results.get("method_verdicts", {}).items():
        if entry.get("control") is None:
            continue
        problem = entry.get("control_problem")
        name = f"control {label} must {entry.get('expected')}"
        verdict = "FAIL" if problem is not None else "PASS"
        detail = problem if problem is not None else f"{label} is {entry.get('verdict')} as expected"
        _case(audit, "salun.audit", name, verdict, problem or "", detail)
    for suite in root:
        _count(suite)
        suite.set("timestamp", _text(results.get("created", "")))
    _count(root)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def write_junit(results: dict[str, Any], path: Path) -> Path:
    write_text_atomic(path, render_junit(results))
    return path
