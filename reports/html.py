"""The HTML report: rendered from results.json alone, every user string escaped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, UndefinedError, select_autoescape

from audit.errors import SalunInputError
from audit.store import write_text_atomic
from reports.numbers import PERCENT, interval, summary
from reports.plots import epsilon_figure, histogram_figure, relearn_figure, roc_figure, sample_grid_figure


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
    env.globals.update(roc_figure=roc_figure, histogram_figure=histogram_figure, epsilon_figure=epsilon_figure,
                       relearn_figure=relearn_figure, sample_grid_figure=sample_grid_figure)
    return env


def render_html(results: dict[str, Any]) -> str:
    try:
        return _environment().get_template("report.html.j2").render(r=results, percent_metrics=PERCENT)
    except UndefinedError as error:
        raise SalunInputError(f"results.json lacks what the report shows ({error}); it was written by another "
                              f"salun version ({results.get('salun_version')}): rerun the audit") from None


def write_html(results: dict[str, Any], path: Path) -> Path:
    write_text_atomic(path, render_html(results))
    return path
