"""report.md as a pull-request comment: the verdict, each method's deciding rule, GitHub's limit."""

import copy

from reports.markdown import COMMENT_LIMIT, render_markdown
from reports.summary import short_rule


def test_the_comment_gives_the_verdict_and_each_methods_deciding_rule(default_example):
    results, _ = default_example
    comment = render_markdown(results)
    assert comment.startswith(f"## salun audit {results['spec']['audit']['name']}: ❌ FAIL")
    table = comment.split("| method | verdict | deciding rule |\n|---|---|---|\n", 1)[1].split("\n\n", 1)[0]
    rows = {line.split(" | ")[0][2:].split(" (control")[0]: line for line in table.splitlines()}
    assert len(rows) == len(results["method_verdicts"])
    for label, entry in results["method_verdicts"].items():
        row = rows[label]
        if entry["verdict"] == "FAIL" and entry["control"] is None:
            first = next(v for v in results["verdicts"] if v["method"] == label and v["verdict"] == "FAIL")
            assert "❌ FAIL" in row and short_rule(first["rule"]) in row
    assert "✔️ FAIL, as it must" in rows["identity"]
    assert "<details><summary>Metrics against retraining</summary>" in comment and "`report.html`" in comment
    assert len(comment) <= COMMENT_LIMIT


def test_a_comment_past_githubs_limit_leaves_out_what_does_not_fit_and_says_so(default_example):
    results = copy.deepcopy(default_example[0])
    for k in range(2000):  # methods with long labels
        label = f"method-{k}-" + "x" * 40
        results["metrics"][label] = results["metrics"]["salun"]
        results["method_verdicts"][label] = results["method_verdicts"]["salun"]
        results["verdicts"] += [{**v, "method": label} for v in results["verdicts"] if v["method"] == "salun"]
    comment = render_markdown(results)
    assert len(comment) <= COMMENT_LIMIT
    assert "The metrics table is left out" in comment and "of 2006 methods are listed" in comment
