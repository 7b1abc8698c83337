"""Inline SVG figures from the plot data in results.json: ROC curves and score histograms.

The figures are self-contained markup (no script, no external file), so a report stays one
file that renders offline and in print. Every coordinate comes from results.json.
"""

from __future__ import annotations

import math
from html import escape
from typing import Any

from markupsafe import Markup

WIDTH, HEIGHT, MARGIN = 320, 240, 40
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
ROC_ATTACKS = ("ulira", "lira_offline", "rmia_offline", "threshold_loss")  # drawn when present


def _scale(value: float, low: float, high: float, log: bool) -> float:
    """Position of `value` in [0, 1] along an axis from `low` to `high`."""
    if log:
        value, low, high = (math.log10(max(v, 1e-12)) for v in (value, low, high))
    return (value - low) / (high - low) if high > low else 0.0


def _frame(body: list[str], title: str, x_label: str, y_label: str) -> Markup:
    inner_w, inner_h = WIDTH - 2 * MARGIN, HEIGHT - 2 * MARGIN
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
        f'height="{HEIGHT}" role="img" aria-label="{escape(title)}" font-size="10" font-family="sans-serif">',
        f'<rect x="{MARGIN}" y="{MARGIN}" width="{inner_w}" height="{inner_h}" fill="none" stroke="#999"/>',
        f'<text x="{WIDTH / 2}" y="14" text-anchor="middle" font-size="11">{escape(title)}</text>',
        f'<text x="{WIDTH / 2}" y="{HEIGHT - 6}" text-anchor="middle">{escape(x_label)}</text>',
        f'<text x="10" y="{HEIGHT / 2}" text-anchor="middle" transform="rotate(-90 10 {HEIGHT / 2})">'
        f"{escape(y_label)}</text>",
        *body,
        "</svg>",
    ]
    return Markup("".join(parts))


def _point(x: float, y: float) -> str:
    inner_w, inner_h = WIDTH - 2 * MARGIN, HEIGHT - 2 * MARGIN
    return f"{MARGIN + x * inner_w:.1f},{HEIGHT - MARGIN - y * inner_h:.1f}"


def roc_figure(attacks: dict[str, dict[str, Any]], title: str, log: bool = True) -> Markup:
    """The ROC of each attack in ROC_ATTACKS that `attacks` (name -> attack summary) holds."""
    curves = {name: attacks[name]["roc"] for name in ROC_ATTACKS if name in attacks}
    grid = "log" if log else "linear"
    low = min((min((f for f in c[grid]["fpr"] if f > 0), default=1.0) for c in curves.values()), default=1e-3)
    low = low if log else 0.0
    # chance, TPR = FPR, is the diagonal on either scale
    body = [f'<polyline fill="none" stroke="#bbb" stroke-dasharray="3,3" points="{_point(0, 0)} {_point(1, 1)}"/>']
    for i, (name, curve) in enumerate(curves.items()):
        colour = COLOURS[i % len(COLOURS)]
        points = [(f, t) for f, t in zip(curve[grid]["fpr"], curve[grid]["tpr"]) if not log or (f > 0 and t > 0)]
        coords = " ".join(_point(_scale(f, low, 1.0, log), _scale(t, low, 1.0, log)) for f, t in points)
        body.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{coords}"/>')
        body.append(f'<text x="{MARGIN + 4}" y="{MARGIN + 12 + 12 * i}" fill="{colour}">{escape(name)}</text>')
    body.append(f'<text x="{MARGIN}" y="{HEIGHT - MARGIN + 12}" text-anchor="middle">{low:.0e}</text>')
    body.append(f'<text x="{WIDTH - MARGIN}" y="{HEIGHT - MARGIN + 12}" text-anchor="middle">1</text>')
    scale = "log-log" if log else "linear"
    return _frame(body, f"{title} ({scale})", "false-positive rate", "true-positive rate")


def histogram_figure(histogram: dict[str, list], title: str) -> Markup:
    """Member and non-member score counts on shared bins, each normalised to its own total."""
    edges, members, nonmembers = histogram["edges"], histogram["members"], histogram["nonmembers"]
    shares = [[c / max(sum(counts), 1) for c in counts] for counts in (members, nonmembers)]
    top = max(max(s, default=0) for s in shares) or 1.0
    bins = len(edges) - 1
    body = []
    for share, colour, label, row in ((shares[0], COLOURS[1], "members", 0), (shares[1], COLOURS[0], "non-members", 1)):
        for b in range(bins):
            x0, x1 = b / bins, (b + 1) / bins
            height = share[b] / top
            body.append(f'<polygon fill="{colour}" fill-opacity="0.45" points="{_point(x0, 0)} {_point(x0, height)} '
                        f'{_point(x1, height)} {_point(x1, 0)}"/>')
        body.append(f'<text x="{WIDTH - MARGIN - 4}" y="{MARGIN + 12 + 12 * row}" text-anchor="end" '
                    f'fill="{colour}">{label}</text>')
    body.append(f'<text x="{MARGIN}" y="{HEIGHT - MARGIN + 12}" text-anchor="middle">{edges[0]:.3g}</text>')
    body.append(f'<text x="{WIDTH - MARGIN}" y="{HEIGHT - MARGIN + 12}" text-anchor="middle">{edges[-1]:.3g}</text>')
    return _frame(body, title, "membership score", "share of examples")
