"""report.md: an audit as a pull-request comment, from results.json alone: the verdict, one line
per method with the rule that decided it, the metrics table folded below, and the other reports
named. It stays within GitHub's comment limit (65,536 characters): past it the metrics are left
out, and the comment says so.

Every string from results.json (labels, names, the scope) is literal text: it cannot add a
cell or a row, nor open code, a link or HTML (see reports.text.markdown_text)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from audit.core.files import write_text_atomic
from reports.numbers import summary
from reports.summary import audited_sentence, short_rule
from reports.text import markdown_text as md
from reports.text import rendering

COLUMNS = ("UA", "RA", "TA", "MIA")
COMMENT_LIMIT = 65_536  # GitHub's limit on a comment's body, in characters
MARK = {"PASS": "✅ PASS", "FAIL": "❌ FAIL", "INCONCLUSIVE": "⚠️ INCONCLUSIVE"}
OTHER_REPORTS = ("report.html", "report.pdf", "junit.xml", "results.json")


GENERATION_COLUMNS = (("UA", "UA", True), ("P(c)", "forgotten_probability", True),
                      ("class accuracy", "retained_accuracy", True), ("FID", "FID", False))


def render_markdown(results: dict[str, Any]) -> str:
    with rendering(results, "report.md"):
        table = (_generation_markdown if results["scope"].get("task") == "generation" else _classification_markdown)(results)
        head = _verdict_lines(results)
        links = ["", "The full audit is in the same folder: " + ", ".join(f"`{name}`" for name in OTHER_REPORTS) + "."]
        comment = "\n".join([*head, "", "<details><summary>Metrics against retraining</summary>", "", table,
                             "</details>", *links]) + "\n"
        if len(comment) > COMMENT_LIMIT:
            note = (f"The metrics table is left out: this comment would pass GitHub's limit of {COMMENT_LIMIT:,} "
                    "characters; it is in `report.html`.")
            preamble = head.index("|---|---|---|") + 1  # the lines before the first method's row
            while len("\n".join([*head, "", note, *links])) > COMMENT_LIMIT - 200 and len(head) > preamble:
                head.pop()
            shown = len(head) - preamble
            total = len(results.get("method_verdicts", {}))
            if shown < total:
                note += f" Only the first {shown} of {total} methods are listed."
            comment = "\n".join([*head, "", note, *links]) + "\n"
        return comment


def _deciding(results: dict[str, Any], label: str, verdict: str) -> str:
    """The rule that decided a method's verdict, with its number and reason."""
    rows = [row for row in results.get("verdicts", []) if row.get("method") == label]
    if verdict == "PASS":
        return f"every rule passes ({len(rows)})"
    deciding = next((row for row in rows if row.get("verdict") == verdict), None)
    if deciding is None:
        return md(results["method_verdicts"][label].get("undecided_reason") or "no rule decided")
    more = sum(row.get("verdict") == verdict for row in rows) - 1
    return (f"{md(short_rule(str(deciding.get('rule'))))}: {md(deciding.get('reason') or deciding.get('value'))}"
            + (f" (and {more} more)" if more > 0 else ""))


def _clipped(text: str, limit: int = 1000) -> str:
    return text if len(text) <= limit else text[:limit] + " …"


def _verdict_lines(results: dict[str, Any]) -> list[str]:
    verdict = results.get("verdict")
    lines = [f"## salun audit {md(results['spec']['audit']['name'])}: {MARK.get(verdict, md(verdict))}", "",
             f"{md(_clipped(results.get('verdict_reason') or ''))}.", "", f"Audited: {md(audited_sentence(results))}", "",
             "| method | verdict | deciding rule |", "|---|---|---|"]
    for label, entry in results.get("method_verdicts", {}).items():
        name = md(label) + (f" (control: must {md(entry.get('expected'))})" if entry.get("control") else "")
        method_verdict = str(entry.get("verdict"))
        shown = MARK.get(method_verdict, md(method_verdict))
        if entry.get("control") and not entry.get("control_problem"):
            shown = f"✔️ {md(method_verdict)}, as it must"
        lines.append(f"| {name} | {shown} | "
                     f"{_deciding(results, label, method_verdict)} |")
    return lines


def _diverged(row: dict[str, Any]) -> str:
    return f" ({len(row['failures'])} diverged)" if row.get("failures") else ""


def _classification_markdown(results: dict[str, Any]) -> str:
    scope = results["scope"]
    lines = [
        f"{md(scope['dataset'])}, {md(scope['forget_kind'])} forgetting of {md(scope['forget_size'])} points, "
        f"augmentation {md(results['spec']['train']['augmentation'])}; "
        f"percent, mean ± std over {md(scope['models_per_population'])} seeds; RTE in seconds.",
        "",
        "| method | UA | RA | TA | MIA-Efficacy | Avg. Gap | RTE (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, population in results["populations"].items():
        lines.append(f"| *{md(name)}* | " + " | ".join(summary(population.get(m)) for m in COLUMNS) + " | | |")
    for label, row in results["metrics"].items():
        cells = [summary(row.get(m)) for m in (*COLUMNS, "avg_gap")] + [summary(row.get("runtime_s"), percent=False)]
        lines.append(f"| {md(label)}{_diverged(row)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _generation_markdown(results: dict[str, Any]) -> str:
    scope, relearn = results["scope"], results.get("relearn") or {}
    attacked = bool(relearn.get("methods"))
    headers = [h for h, _, _ in GENERATION_COLUMNS] + (["DiMRA recovery"] if attacked else []) + ["RTE (s)"]
    lines = [
        f"{md(scope['dataset'])}, forgetting class {md(', '.join(map(str, scope['forget_classes'])))} in a "
        f"{md(scope['model'])} generator, judged by a {md(scope['judge'])} classifier on "
        f"{md(results['generation']['samples_per_class'])} samples per class; percent, mean ± std over "
        f"{md(scope['models_per_population'])} seeds"
        + (f"; DiMRA recovery after {md(relearn['steps'][-1])} steps, over the retrained generators' under the "
           "same attack"
           if attacked else "") + "; RTE in seconds.",
        "",
        "| generators | " + " | ".join(headers) + " |",
        "|---" * (len(headers) + 1) + "|",
    ]

    def cells(row: dict[str, Any]) -> list[str]:
        return [summary(row.get(key), percent) for _, key, percent in GENERATION_COLUMNS]

    for name, population in results["populations"].items():
        lines.append(f"| *{md(name)}* | " + " | ".join(cells(population) + [""] * (len(headers) - 4)) + " |")
    for label, row in results["metrics"].items():
        extra = []
        if attacked:
            recovery = relearn["methods"][label].get("recovery")
            extra.append(summary({"mean": recovery["value"], "std": None}) if recovery else "–")
        lines.append(f"| {md(label)}{_diverged(row)} | "
                     + " | ".join(cells(row) + extra + [summary(row.get("runtime_s"), False)]) + " |")
    return "\n".join(lines) + "\n"


def write_markdown(results: dict[str, Any], path: Path) -> Path:
    write_text_atomic(path, render_markdown(results))
    return path
