"""The dp section of the HTML report, drawn from results.json's dp section alone."""

from __future__ import annotations

import re

from jinja2 import Environment, PackageLoader, StrictUndefined

from reports.dp_plots import NAMES, dp_figure, rows
from reports.numbers import number, summary


def _population(noise, accountant, lira, one_run, private=True):
    return {"noise_multiplier": noise, "private": private, "n_models": 3, "n_canary_models": 3,
            "accountant_epsilon": {"value": accountant, "opacus": "1.6.0"} if accountant is not None else None,
            "audited_epsilon": {"lira_offline": {"value": lira}, "one_run": {"value": one_run}},
            "epsilon_gap": {"value": accountant - max(lira, one_run)} if accountant is not None else None,
            "test_accuracy": {"mean": 0.9, "std": 0.01, "n": 3}}


SECTION = {"settings": {"max_grad_norm": 1.0, "poisson": True, "accountant": "rdp", "delta": 1e-5, "canaries": 256},
           "opacus": "1.6.0", "alpha": 0.05, "alpha_per_bound": 0.0056,
           "populations": {"original": _population(None, None, 0.4, 1.8, private=False),
                           "σ=0.5": _population(0.5, 40.0, 0.1, 0.2), "σ=2": _population(2.0, 2.5, 0.0, 0.0)},
           "epsilon_gap": {"value": 2.5, "population": "σ=2", "confidence": 0.95}}


def test_rows_run_from_the_strongest_noise_to_the_models_without_dp():
    table = rows(SECTION)
    assert [row["label"] for row in table] == ["σ=2", "σ=0.5", "original"]
    assert table[-1]["accountant"] is None and table[-1]["audited"]["one_run"] == 1.8
    assert table[0]["gap"] == 2.5


def test_the_figure_places_every_bound_and_the_diagonal():
    svg = str(dp_figure(SECTION))
    assert svg.startswith("<svg") and "y = x (audited = accountant)" in svg
    assert len(re.findall(r"<circle", svg)) >= 3  # offline LiRA: one point per population
    assert "one-run canaries" in svg
    nothing = str(dp_figure({"populations": {"original": _population(None, None, 0.1, 0.1, private=False)}}))
    assert "no population trained with DP" in nothing


def test_the_partial_renders_with_the_globals_html_gives_it():
    env = Environment(loader=PackageLoader("reports", "templates"), undefined=StrictUndefined, autoescape=True)
    env.filters.update(number=number, summary=summary)
    env.globals.update(dp_figure=dp_figure, dp_rows=rows, dp_names=NAMES)
    page = env.get_template("dp.html.j2").render(r={"dp": SECTION})
    assert "Differential privacy" in page and "<svg" in page and "σ=0.5" in page
    assert "40.00" in page and "2.50" in page and "90.00 ± 1.00" in page
