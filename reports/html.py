"""The HTML report: rendered from results.json alone, every user string escaped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from audit.store import write_text_atomic

PERCENT = ("UA", "RA", "TA", "MIA", "avg_gap")


def _number(value: float | None, percent: bool) -> str:
    if value is None:
        return "–"
    return f"{100 * value:.2f}" if percent else f"{value:.3f}"


def _summary(summary: dict[str, Any], percent: bool = True) -> str:
    """mean ± std, as the report prints it."""
    text = _number(summary["mean"], percent)
    if summary.get("std") is not None:
        text += f" ± {_number(summary['std'], percent)}"
    return text


def _interval(summary: dict[str, Any], percent: bool = True) -> str:
    if not summary.get("ci95"):
        return ""
    low, high = summary["ci95"]
    return f"[{_number(low, percent)}, {_number(high, percent)}]"


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("reports", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["summary"] = _summary
    env.filters["interval"] = _interval
    return env


def render_html(results: dict[str, Any]) -> str:
    return _environment().get_template("report.html.j2").render(
        r=results, percent_metrics=PERCENT
    )


def write_html(results: dict[str, Any], path: Path) -> Path:
    write_text_atomic(path, render_html(results))
    return path
