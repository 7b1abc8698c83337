"""A Markdown table of an audit's metrics, from results.json alone (for READMEs and tickets)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from audit.store import write_text_atomic
from reports.numbers import summary

COLUMNS = ("UA", "RA", "TA", "MIA")


def render_markdown(results: dict[str, Any]) -> str:
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


def write_markdown(results: dict[str, Any], path: Path) -> Path:
    write_text_atomic(path, render_markdown(results))
    return path
