"""A Markdown table of an audit's metrics, from results.json alone (for READMEs and tickets).

Every string from results.json (labels, names, the scope) is literal text: it cannot add a
cell or a row, nor open code, a link or HTML (see reports.text.markdown_text)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from audit.core.files import write_text_atomic
from reports.numbers import summary
from reports.text import markdown_text as md
from reports.text import rendering

COLUMNS = ("UA", "RA", "TA", "MIA")


GENERATION_COLUMNS = (("UA", "UA", True), ("P(c)", "forgotten_probability", True),
                      ("class accuracy", "retained_accuracy", True), ("FID", "FID", False))


def render_markdown(results: dict[str, Any]) -> str:
    with rendering(results, "report.md"):
        if results["scope"].get("task") == "generation":
            return _generation_markdown(results)
        return _classification_markdown(results)


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
