"""A Markdown table of an audit's metrics, from results.json alone (for READMEs and tickets)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from audit.store import write_text_atomic
from reports.numbers import summary

COLUMNS = ("UA", "RA", "TA", "MIA")


GENERATION_COLUMNS = (("UA", "UA", True), ("P(c)", "forgotten_probability", True),
                      ("class accuracy", "retained_accuracy", True), ("FID", "FID", False))


def render_markdown(results: dict[str, Any]) -> str:
    if results["scope"].get("task") == "generation":
        return _generation_markdown(results)
    scope = results["scope"]
    lines = [
        f"{scope['dataset']}, {scope['forget_kind']} forgetting of {scope['forget_size']} points, "
        f"augmentation {results['spec']['train']['augmentation']}; "
        f"percent, mean ± std over {scope['models_per_population']} seeds; RTE in seconds.",
        "",
        "| method | UA | RA | TA | MIA-Efficacy | Avg. Gap | RTE (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, population in results["populations"].items():
        lines.append(f"| *{name}* | " + " | ".join(summary(population[m]) for m in COLUMNS) + " | | |")
    for label, row in results["metrics"].items():
        cells = [summary(row[m]) for m in (*COLUMNS, "avg_gap")] + [summary(row["runtime_s"], percent=False)]
        failed = f" ({len(row['failures'])} diverged)" if row["failures"] else ""
        lines.append(f"| {label}{failed} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _generation_markdown(results: dict[str, Any]) -> str:
    scope, relearn = results["scope"], results.get("relearn") or {}
    attacked = bool(relearn.get("methods"))
    headers = [h for h, _, _ in GENERATION_COLUMNS] + (["DiMRA recovery"] if attacked else []) + ["RTE (s)"]
    lines = [
        f"{scope['dataset']}, forgetting class {', '.join(map(str, scope['forget_classes']))} in a "
        f"{scope['model']} generator, judged by a {scope['judge']} classifier on "
        f"{results['generation']['samples_per_class']} samples per class; percent, mean ± std over "
        f"{scope['models_per_population']} seeds"
        + (f"; DiMRA recovery after {relearn['steps'][-1]} steps, over the retrained generators' under the same attack"
           if attacked else "") + "; RTE in seconds.",
        "",
        "| generators | " + " | ".join(headers) + " |",
        "|---" * (len(headers) + 1) + "|",
    ]

    def cells(row: dict[str, Any]) -> list[str]:
        return [summary(row[key], percent) for _, key, percent in GENERATION_COLUMNS]

    for name, population in results["populations"].items():
        lines.append(f"| *{name}* | " + " | ".join(cells(population) + [""] * (len(headers) - 4)) + " |")
    for label, row in results["metrics"].items():
        extra = []
        if attacked:
            recovery = relearn["methods"][label].get("recovery")
            extra.append(summary({"mean": recovery["value"], "std": None}) if recovery else "–")
        failed = f" ({len(row['failures'])} diverged)" if row["failures"] else ""
        lines.append(f"| {label}{failed} | " + " | ".join(cells(row) + extra + [summary(row["runtime_s"], False)])
                     + " |")
    return "\n".join(lines) + "\n"


def write_markdown(results: dict[str, Any], path: Path) -> Path:
    write_text_atomic(path, render_markdown(results))
    return path
