"""`salun report` on a results.json that is hostile or degenerate: labels that try to break out
of their cell or run as code, values that are nan, null or empty, sections that are missing, and
files that are not results at all. Every report is still written, or one line says why not."""

from __future__ import annotations

import copy
import json
import math
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from attacks.mia.roc import histogram, roc_curve, roc_plot_data
from audit.results import document as results_module
from audit.pipeline import run_audit
from audit.config.spec import spec_from_dict
from helpers import small_config
from junit_schema import check_junit_schema
from reports.plots import histogram_figure
from reports.text import xml_safe

LABELS = ["<script>alert(1)</script>", "a|b", "line\nbreak", r"$\notacommand{x}^2$", "nul\x00byte",
          "long" * 1000, "ünïcødé 😀 文字 \u202eright-to-left",
          "back`tick` and [link](https://example.org) \\|"]
PER_METHOD = ("metrics", "method_verdicts", "equivalence")
PER_METHOD_NESTED = ("mia", "relearn", "backdoor")


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    """One small audit with every figure a report draws: ROC and histograms, ε, relearning. Its
    policy leaves out the KS rule, whose power analysis would take most of the time."""
    folder = tmp_path_factory.mktemp("hostile-report")
    config = small_config(audit={"seeds": 2, "store": str(folder / "store"), "reports": ["junit"]},
                          train={"epochs": 3},
                          policy={"rules": ['equivalence.tost.UA == "equivalent"', "mia.lira_offline.auc <= 0.6"]},
                          attacks={"run": ["threshold", "lira"], "lira": {"shadows": 6}, "bootstrap": 20},
                          relearn={"run": ["retain"], "steps": 6, "checkpoints": 2, "aux_size": 40},
                          unlearners={"identity": {}, "retrain": {}, "finetune": {"epochs": 1}})
    return json.loads(json.dumps(run_audit(spec_from_dict(config), folder / "out", show_progress=False)))


def labelled(results, labels, drawn=None):
    """The results with their methods renamed to `labels`, each a copy of an audited method in turn;
    only those in `drawn` (all by default) keep the sections a report draws figures of."""
    out = copy.deepcopy(results)
    sources = list(results["metrics"])
    chosen = {label: sources[i % len(sources)] for i, label in enumerate(labels)}

    def relabel(entries):
        return {label: copy.deepcopy(entries[source]) for label, source in chosen.items() if source in entries}

    for section in PER_METHOD:
        out[section] = relabel(results[section])
    for section in PER_METHOD_NESTED:
        if results.get(section, {}).get("methods"):
            out[section]["methods"] = relabel(results[section]["methods"])
    out["verdicts"] = [{**row, "method": label} for label, source in chosen.items()
                       for row in results["verdicts"] if row["method"] == source]
    out["scope"]["methods"] = list(labels)
    for label in set(labels) - set(labels if drawn is None else drawn):
        for section in ("mia", "relearn"):
            out[section]["methods"].pop(label, None)
        out["equivalence"].pop(label, None)
    return out


def every_float(value, new):
    if isinstance(value, dict):
        return {k: every_float(v, new) for k, v in value.items()}
    if isinstance(value, list):
        return [every_float(v, new) for v in value]
    return new if isinstance(value, float) else value


def every_list_emptied(value):
    if isinstance(value, dict):
        return {k: every_list_emptied(v) for k, v in value.items()}
    return [] if isinstance(value, list) else value


def without_optional_sections(results):
    optional = ("mia", "equivalence", "relearn", "backdoor", "method", "limitations", "policy", "probes",
                "verdict_reason", "created")
    return {k: v for k, v in results.items() if k not in optional}


def report(cli, results, folder, formats="html,junit,markdown"):
    """`salun report` on `results` written as a file (nan and inf as JSON allows them): (code, stderr)."""
    folder.mkdir(exist_ok=True)
    (folder / "results.json").write_text(json.dumps(results))
    code, _, err = cli("report", str(folder / "results.json"), "--format", formats, "--out", str(folder))
    return code, err


def unescaped_cells(line):
    """The cells of a Markdown table row, split on the pipes that a backslash does not escape."""
    cells, cell, escaped = [], "", False
    for char in line.strip()[1:-1]:
        if char == "|" and not escaped:
            cells.append(cell)
            cell = ""
        else:
            cell += char
        escaped = char == "\\" and not escaped
    return cells + [cell]


def markdown_tables(markdown):
    """Each run of table lines in `markdown`."""
    tables, current = [], []
    for line in markdown.splitlines() + [""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables, current = tables + [current], []
    return tables


def check_markdown_table(markdown, rows, methods):
    """The verdict table (a row per method) and the metrics table (`rows` rows), each of one width."""
    verdicts, metrics = markdown_tables(markdown)
    for table, count in ((verdicts, methods), (metrics, rows)):
        widths = {len(unescaped_cells(line)) for line in table}
        assert len(widths) == 1 and len(table) == 2 + count, table
        assert "<" not in "".join(table[2:])
    assert "<script" not in markdown


def check_reports(folder, results):
    html = (folder / "report.html").read_text()
    assert "<script" not in html
    junit = ET.fromstring((folder / "junit.xml").read_text())
    check_junit_schema(junit)
    check_markdown_table((folder / "report.md").read_text(), len(results["populations"]) + len(results["metrics"]),
                         len(results.get("method_verdicts") or {}))
    return html, junit


def test_hostile_labels_are_text_in_every_format(cli, audited, tmp_path):
    hostile = labelled(audited, LABELS, drawn=LABELS[:1] + LABELS[3:4])
    hostile["spec"]["audit"]["name"] = "audit <b>bold</b> | \x07 $y$"
    hostile["verdict_reason"] = LABELS[0]
    code, err = report(cli, hostile, tmp_path)
    assert code == 0, err
    html, junit = check_reports(tmp_path, hostile)
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 2 and "not drawn" not in html
    assert "\x00" not in html and "\x07" not in html
    assert r"$\notacommand{x}^2$" in html.split("<svg", 1)[1]  # a figure title, drawn as typed
    suites = {suite.get("name") for suite in junit.iter("testsuite")}
    assert {xml_safe(label) for label in LABELS} <= suites


@pytest.mark.slow
def test_hostile_labels_print_in_the_pdf(cli, audited, tmp_path):
    hostile = labelled(audited, [LABELS[0], LABELS[3]])
    code, err = report(cli, hostile, tmp_path, "pdf")
    assert code == 0, err
    assert (tmp_path / "report.pdf").read_bytes()[:5] == b"%PDF-"


def test_a_label_with_dollars_is_drawn_as_typed_not_as_mathtext():
    counts = histogram(np.arange(10.0), np.arange(10) % 2 == 0, bins=5)
    svg = str(histogram_figure(counts, r"$\notacommand{x}^2$ and $"))
    assert svg.startswith("<svg") and r"$\notacommand{x}^2$ and $" in svg


def _constant_attack(attack, n=20):
    scores, members = np.full(n, 0.25), np.arange(n) % 2 == 0
    fpr, tpr, _ = roc_curve(scores, members)
    return {**attack, "histogram": histogram(scores, members), "roc": roc_plot_data(fpr, tpr, negatives=n // 2)}


def _single_class_attack(attack):
    counts = attack["histogram"]
    curve = {"fpr": [0.0] * len(attack["roc"]["log"]["fpr"]), "tpr": attack["roc"]["log"]["tpr"]}
    return {**attack, "histogram": {**counts, "nonmembers": [0] * len(counts["nonmembers"])},
            "roc": {**attack["roc"], "log": curve}}


def test_constant_scores_and_a_single_class_are_drawn_or_said_to_be_undrawable(cli, audited, tmp_path):
    degenerate = labelled(audited, ["constant", "single class"])
    for label, change in (("constant", _constant_attack), ("single class", _single_class_attack)):
        degenerate["relearn"]["methods"].pop(label)
        degenerate["equivalence"].pop(label)
        attacks = degenerate["mia"]["methods"][label]
        attacks.update({name: change(attack) for name, attack in attacks.items() if "histogram" in attack})
    code, err = report(cli, degenerate, tmp_path)
    assert code == 0, err
    html, _ = check_reports(tmp_path, degenerate)
    constant = html.split("<h3>constant", 1)[1].split("<h3>", 1)[0]
    assert constant.count('<figure class="mia"><svg') == 2  # the ROC (chance) and the one-bin histogram
    single = html.split("<h3>single class", 1)[1].split("<h3>", 1)[0]
    assert "single class: not drawn (no attack&#39;s ROC has a point with both rates above zero" in single
    assert '<figure class="mia"><svg' in single  # the members' histogram
    assert "single class" in (tmp_path / "report.md").read_text()


DEGENERATE = {
    "nan everywhere": lambda r: every_float(r, math.nan),
    "inf everywhere": lambda r: every_float(r, math.inf),
    "null where every number was": lambda r: every_float(r, None),
    "every list empty": every_list_emptied,
    "no optional section": without_optional_sections,
}


@pytest.mark.parametrize("degrade", DEGENERATE.values(), ids=DEGENERATE.keys())
def test_degenerate_values_give_every_report_with_a_line_for_each_figure_not_drawn(cli, audited, tmp_path, degrade):
    degenerate = degrade(audited)
    code, err = report(cli, degenerate, tmp_path)
    assert code == 0, err
    html, _ = check_reports(tmp_path, degenerate)
    drawn, noted = html.count("<svg"), html.count('class="not-drawn"')
    if degenerate.get("mia"):
        assert drawn + noted >= 2 * len(degenerate["mia"]["methods"]) and noted
    assert "5. Limitations" in html and "6. Reproduction" in html


def _deep(path):
    path.write_text("[" * 100_000 + "]" * 100_000)


def _results_without(key):
    def write(path, audited):
        path.write_text(json.dumps({k: v for k, v in audited.items() if k != key}))
    return write


BAD_FILES = {
    "a folder": (lambda path, audited: path.mkdir(), "is a folder, not a file"),
    "not JSON": (lambda path, audited: path.write_text("<html>results</html>"), "not a results.json file (Expecting"),
    "an empty file": (lambda path, audited: path.write_text(""), "not a results.json file"),
    "binary garbage": (lambda path, audited: path.write_bytes(bytes(range(256)) * 4), "not UTF-8 text"),
    "a JSON array": (lambda path, audited: path.write_text("[1, 2]"), "its JSON is a list, not an object"),
    "a JSON string": (lambda path, audited: path.write_text('"results"'), "its JSON is a str, not an object"),
    "another schema": (lambda path, audited: path.write_text('{"schema": "other/1"}'),
                       "expected schema salun.results/1"),
    "no spec": (_results_without("spec"), "results.json lacks its 'spec' section"),
    "no verdicts": (_results_without("verdicts"), "results.json lacks its 'verdicts' section"),
    "a spec that is a list": (lambda path, audited: path.write_text(json.dumps({**audited, "spec": []})),
                              "results.json's 'spec' is a list, not an object"),
    "JSON nested 100000 deep": (lambda path, audited: _deep(path), "nested too deeply"),
    "a number of 10000 digits": (lambda path, audited: path.write_text("1" * 10_000), "not a results.json file"),
}


@pytest.mark.parametrize("make, message", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_a_file_that_is_not_a_results_file_is_one_line_naming_it(cli, audited, tmp_path, make, message):
    path = tmp_path / "results.json"
    make(path, audited)
    code, _, err = cli("report", str(path), "--format", "junit,markdown", "--out", str(tmp_path / "out"))
    assert code == 2 and err.count("\n") == 1 and str(path) in err and message in err, err
    assert not (tmp_path / "out").exists()


def test_a_results_file_too_large_to_read_is_refused_before_reading(cli, tmp_path, monkeypatch):
    monkeypatch.setattr(results_module, "MAX_RESULTS_BYTES", 1 << 20)
    path = tmp_path / "results.json"
    path.write_bytes(b" " * (2 << 20))
    code, _, err = cli("report", str(path), "--format", "junit")
    assert code == 2 and err.count("\n") == 1 and "2 MiB; salun reads at most 1 MiB" in err, err


def test_a_results_file_missing_what_a_format_reads_names_the_format_and_key(cli, audited, tmp_path):
    lacking = copy.deepcopy(audited)
    del lacking["spec"]["audit"]
    (tmp_path / "results.json").write_text(json.dumps(lacking))
    code, _, err = cli("report", str(tmp_path / "results.json"), "--format", "junit")
    assert code == 2 and err.count("\n") == 1 and "junit.xml: results.json lacks what the report shows ('audit')" in err


def test_an_out_folder_that_is_a_file_is_one_line(cli, audited, tmp_path):
    (tmp_path / "results.json").write_text(json.dumps(audited))
    (tmp_path / "taken").write_text("a file")
    code, _, err = cli("report", str(tmp_path / "results.json"), "--format", "junit", "--out", str(tmp_path / "taken"))
    assert code == 2 and err.count("\n") == 1 and "taken" in err, err
    assert re.search(r"not a (folder|directory)|File exists", err), err
