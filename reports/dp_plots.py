"""The dp section's figure and table rows: each population's audited ε against its accountant's ε.

Drawn from results.json's `dp` section alone. A population without DP has no accountant's ε: its
audited bounds stand at the right edge, past every DP level, as what the audit certifies of a
model trained without noise.
"""

from __future__ import annotations

import math
from typing import Any

from markupsafe import Markup

from reports.plots import NotDrawable, drawn_or_noted
from reports.svg import Chart

COLOURS = {"lira_offline": "#1f77b4", "threshold_loss": "#ff7f0e", "one_run": "#2ca02c"}
MARKERS = {"lira_offline": "circle", "threshold_loss": "square", "one_run": "diamond"}
NAMES = {"lira_offline": "offline LiRA", "threshold_loss": "loss threshold", "one_run": "one-run canaries"}


def rows(section: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per population, by noise level (no DP last): accountant ε, each bound, TA."""
    populations = section.get("populations", {})

    def order(item: tuple[str, dict]) -> float:
        noise = item[1].get("noise_multiplier")
        return -noise if noise is not None else -math.inf if item[1].get("private") else math.inf

    out = []
    for label, p in sorted(populations.items(), key=order):
        accountant = p.get("accountant_epsilon") or {}
        out.append({"label": label, "noise": p.get("noise_multiplier"), "accountant": accountant.get("value"),
                    "audited": {name: b.get("value") for name, b in p.get("audited_epsilon", {}).items()},
                    "gap": (p.get("epsilon_gap") or {}).get("value"), "ta": (p.get("test_accuracy") or {}),
                    "n_models": p.get("n_models"), "n_canary_models": p.get("n_canary_models")})
    return out


@drawn_or_noted
def dp_figure(section: dict[str, Any], title: str = "Audited ε against the accountant's ε") -> Markup:
    table = rows(section)
    private = [row for row in table if row["accountant"] is not None and math.isfinite(row["accountant"])]
    if not private:
        raise NotDrawable("no population trained with DP has an accountant's ε")
    top = max(row["accountant"] for row in private)
    right = top * 1.25 + 0.5  # where models without DP stand
    bounds = [v for row in table for v in row["audited"].values() if v is not None]
    chart = Chart(title, "accountant's ε (no DP: right edge)", "audited ε lower bound",
                  legend_labels=["y = x (audited = accountant)", *NAMES.values()])
    high = max([right, *bounds])
    chart.axes([0.0, high], [0.0, high], xlimits=(0.0, high), ylimits=(0.0, max(high * 0.6, max(bounds, default=0) * 1.1)))
    chart.line([0.0, high], [0.0, high], "#888", "y = x (audited = accountant)", dash="--", width=1.0)
    seen = set()
    for row in table:
        x = row["accountant"] if row["accountant"] is not None else right
        for name, value in row["audited"].items():
            if value is None:
                continue
            label = NAMES.get(name, name) if name not in seen else None
            seen.add(name)
            chart.point(x, value, COLOURS.get(name, "#555"), label, MARKERS.get(name, "triangle"))
    return chart.svg()
