"""The HTML report: rendered from results.json alone, every user string escaped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, UndefinedError, select_autoescape

from audit.core.files import write_text_atomic
from reports import across_methods as across
from reports.dp_plots import NAMES as DP_NAMES, dp_figure, rows as dp_rows
from reports.numbers import EPSILON_CAP, PERCENT, epsilon, interval, number, summary
from reports.plots import (epsilon_figure, histogram_clipping, histogram_figure, relearn_figure, roc_figure,
                           sample_grid_figure)
from reports.thumbnails import exposed_figure, has_thumbnails
from reports.summary import GLOSSARY, MEANING, audited_sentence, verdict_grid
from reports.text import rendering, xml_safe

# what a results.json may lack, or hold as null, and the report still shows: each as if empty
OPTIONAL_SECTIONS = {"mia": {}, "equivalence": {}, "relearn": {}, "backdoor": {}, "method": [], "limitations": [],
                     "policy": {"rules": [], "default": False}, "verdict_reason": "", "created": "not recorded"}


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("reports", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["summary"] = summary
    env.filters["interval"] = interval
    env.filters["number"] = number
    env.filters["epsilon"] = epsilon
    env.globals.update(roc_figure=roc_figure, histogram_figure=histogram_figure, epsilon_figure=epsilon_figure,
                       relearn_figure=relearn_figure, sample_grid_figure=sample_grid_figure,
                       histogram_clipping=histogram_clipping, exposed_figure=exposed_figure,
                       has_thumbnails=has_thumbnails, comparison_roc_figure=across.comparison_roc_figure,
                       comparison_attacks=across.comparison_attacks, comparison_targets=across.targets,
                       tradeoff_figure=across.tradeoff_figure, privacy_measure=across.privacy_measure,
                       per_class_rows=across.per_class_rows, headline_attack=across.headline_attack,
                       dp_figure=dp_figure, dp_rows=dp_rows, dp_names=DP_NAMES, epsilon_cap=EPSILON_CAP,
                       verdict_grid=verdict_grid, audited_sentence=audited_sentence, meaning=MEANING, glossary=GLOSSARY)
    return env


def with_optional_sections(results: dict[str, Any]) -> dict[str, Any]:
    return {**results, **{name: empty for name, empty in OPTIONAL_SECTIONS.items() if not results.get(name)}}


def render_html(results: dict[str, Any]) -> str:
    """The report; characters that HTML and its inline SVG cannot hold become U+FFFD."""
    with rendering(results, "report.html", UndefinedError):
        page = _environment().get_template("report.html.j2").render(r=with_optional_sections(results),
                                                                    percent_metrics=PERCENT)
    return xml_safe(page)


def write_html(results: dict[str, Any], path: Path, page: str | None = None) -> Path:
    """`page`: the report already rendered from `results`, when the PDF needs it too."""
    write_text_atomic(path, render_html(results) if page is None else page)
    return path
