"""The report's figures as inline SVG (reports/svg.py), from the plot data in results.json.

Text stays text, only sample grids are raster (inlined as PNG), there is no script and no
external file, so a report is one file that renders offline, on a phone and in print, and the
same data always gives the same bytes. Labels are drawn as typed: `$…$` is text, not mathtext.
A figure whose data cannot be drawn (no finite value, nothing above zero on log axes, malformed
lists) becomes one line that says so in its place, so a degenerate results.json still gives a
whole report.
"""

from __future__ import annotations

import base64
import functools
import inspect
import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from markupsafe import Markup, escape

from reports.numbers import is_number
from reports.png import png_bytes
from reports.svg import HEIGHT, WIDTH, Chart
from reports.text import MALFORMED as MALFORMED_RESULTS

ROC_ATTACKS = ("ulira", "lira_offline", "rmia_offline", "threshold_loss")  # drawn when present
ROC_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2")
MEMBERS, NONMEMBERS = "#d62728", "#1f77b4"
GRID_ROW, GRID_LABELS, GRID_TITLE = 36, 22, 18  # a sample grid's row height, label column and title, in user units
MALFORMED = (*MALFORMED_RESULTS, ZeroDivisionError, OverflowError)
TAIL = 0.01  # the share of pooled scores a histogram's axis may leave out at each end


class NotDrawable(ValueError):
    """The figure's data holds nothing to draw; the message says why."""


def not_drawn(title: str, reason: str) -> Markup:
    """The line a report shows in place of a figure it could not draw."""
    return Markup('<p class="not-drawn">') + escape(f"{title}: not drawn ({reason}).") + Markup("</p>")


def drawn_or_noted(figure: Callable[..., Markup]) -> Callable[..., Markup]:
    """`figure` as drawn, or, when its data cannot be drawn, the line that says why."""
    signature = inspect.signature(figure)

    @functools.wraps(figure)
    def draw(*args: Any, **kwargs: Any) -> Markup:
        title = str(signature.bind(*args, **kwargs).arguments.get("title", "figure"))
        try:
            return figure(*args, **kwargs)
        except NotDrawable as reason:
            return not_drawn(title, str(reason))
        except MALFORMED as error:
            return not_drawn(title, f"its data in results.json is malformed: {type(error).__name__}: {error}")

    return draw


def _real(value: Any) -> float:
    """`value` as a float; nan for anything that is not a real number (None, text, lists)."""
    return float(value) if is_number(value) else math.nan


def _finite(values: Any) -> list[float]:
    return [x for x in map(_real, values) if math.isfinite(x)]


def log_points(curve: dict[str, list]) -> list[tuple[float, float]]:
    """The (FPR, TPR) points of a curve that log axes can show: both finite and above zero."""
    pairs = zip(map(_real, curve["fpr"]), map(_real, curve["tpr"]))
    return [(f, t) for f, t in pairs if math.isfinite(f) and math.isfinite(t) and f > 0 and t > 0]


def auc_label(name: str, attack: Any) -> str:
    """`name` with the attack's AUC, as a legend shows it."""
    value = _real((attack.get("auc") or {}).get("value")) if isinstance(attack, dict) else math.nan
    return f"{name} (AUC {value:.2f})" if math.isfinite(value) else name


def log_roc(chart_title: str, curves: list[tuple[str, list[tuple[float, float]], str, str]],
            legend_column: bool = False, width: float = WIDTH, height: float = HEIGHT) -> Markup:
    """Log-log ROC of the (label, points, colour, dash) curves that have points, with the chance diagonal."""
    drawn = [curve for curve in curves if curve[1]]
    if not drawn:
        raise NotDrawable("no attack's ROC has a point with both rates above zero, which log axes need")
    low = min(min(min(f, t) for f, t in points) for _, points, _, _ in drawn)
    labels = [label for label, *_ in drawn] + ["chance"] if legend_column else ()
    chart = Chart(chart_title, "false-positive rate", "true-positive rate", width, height, labels)
    limits = (min(10 ** math.floor(math.log10(low)), 0.1), 1.0)  # at least one decade
    chart.axes([low, 1.0], [low, 1.0], xlog=True, ylog=True, xlimits=limits, ylimits=limits)
    for label, points, colour, dash in drawn:
        chart.line(*zip(*points), colour=colour, label=label, dash=dash)
    chart.line(limits, limits, "#999", "chance", dash="--", width=0.8)
    return chart.svg(("lower right", "upper left", "upper right", "lower left"))


@drawn_or_noted
def roc_figure(attacks: dict[str, dict[str, Any]], title: str) -> Markup:
    """Log-log ROC of each attack in ROC_ATTACKS that `attacks` (name -> summary) holds; the
    legend lists the curves drawn, each with its AUC."""
    names = [name for name in ROC_ATTACKS if name in attacks]
    curves = [(auc_label(name, attacks[name]), log_points(attacks[name]["roc"]["log"]), colour, "-")
              for name, colour in zip(names, ROC_COLOURS)]
    return log_roc(f"{title}: ROC", curves)


@dataclass(frozen=True)
class Window:
    """The bins a histogram's axis shows, first to last, and the counts of each group beyond them."""

    first: int
    last: int
    below: tuple[int, ...]
    above: tuple[int, ...]

    @property
    def clipped(self) -> bool:
        return any(self.below) or any(self.above)


def robust_window(counts: list[list[float]], tail: float = TAIL) -> Window:
    """The bins from the one holding the pooled `tail` quantile to the one holding the 1 − `tail`
    quantile: outliers beyond them would squash the rest into one bar."""
    pooled = np.sum(np.asarray(counts, dtype=np.float64), axis=0)
    cumulative = np.cumsum(pooled)
    total = cumulative[-1]
    first = int(np.searchsorted(cumulative, tail * total, side="right"))
    last = int(np.searchsorted(cumulative, (1 - tail) * total, side="left"))
    first, last = min(first, last), max(first, last)
    return Window(first, last, tuple(int(sum(c[:first])) for c in counts), tuple(int(sum(c[last + 1:])) for c in counts))


def histogram_clipping(histogram: Any) -> str:
    """The sentence a histogram's caption adds when its axis leaves out the outer scores; "" when it
    does not or cannot be drawn."""
    try:
        edges, groups = _histogram_data(histogram)
    except (NotDrawable, *MALFORMED):
        return ""
    window = robust_window([counts for counts, _, _ in groups])
    if not window.clipped:
        return ""
    beyond = "; ".join(f"{label}: {low} below, {high} above" for (_, _, label), low, high
                       in zip(groups, window.below, window.above))
    return (f"The axis spans the {TAIL:.0%} to {1 - TAIL:.0%} quantiles of the pooled scores "
            f"({edges[window.first]:.3g} to {edges[window.last + 1]:.3g}); the scores beyond it are counted in "
            f"the edge bins ({beyond}).")


def _histogram_data(histogram: dict[str, list]) -> tuple[list[float], list[tuple[list[float], str, str]]]:
    edges = [_real(e) for e in histogram["edges"]]
    groups = [([_real(c) for c in histogram[key]], colour, label)
              for key, colour, label in (("members", MEMBERS, "members"), ("nonmembers", NONMEMBERS, "non-members"))]
    if len(edges) < 2 or not all(math.isfinite(e) for e in edges) or any(b <= a for a, b in zip(edges, edges[1:])):
        raise NotDrawable("its bin edges are not an increasing list of finite numbers")
    if any(len(counts) != len(edges) - 1 or not all(math.isfinite(c) and c >= 0 for c in counts)
           for counts, _, _ in groups):
        raise NotDrawable("its counts do not match its bins")
    if not any(sum(counts) for counts, _, _ in groups):
        raise NotDrawable("no score falls in its bins")
    return edges, groups


@drawn_or_noted
def histogram_figure(histogram: dict[str, list], title: str) -> Markup:
    """Member and non-member score counts on the stored bins, each as a share of its total, on an
    axis clipped to the robust window: what lies beyond it is counted in the edge bins and said."""
    edges, groups = _histogram_data(histogram)
    window = robust_window([counts for counts, _, _ in groups])
    edges = edges[window.first:window.last + 2]
    shares = []
    for (counts, colour, label), low, high in zip(groups, window.below, window.above):
        kept = counts[window.first:window.last + 1]
        kept[0] += low
        kept[-1] += high
        shares.append(([c / max(sum(counts), 1) for c in kept], colour, label))
    chart = Chart(title, "membership score" + (" (edge bins: at or beyond)" if window.clipped else ""),
                  "share of examples")
    top = max(max(heights) for heights, _, _ in shares)
    chart.axes(edges, [0.0, top], xlimits=(edges[0], edges[-1]), ylimits=(0.0, top * 1.05 or 1.0))
    for heights, colour, label in shares:
        chart.steps(heights, edges, colour, label)
    return chart.svg()


@drawn_or_noted
def epsilon_figure(eps: list[float], floor: float, resolution: float, title: str) -> Markup:
    """The per-example ε over the forget set, with the floor of populations drawn alike and ln(N − 1)."""
    values = [e for e in map(_real, eps) if not math.isnan(e)]
    if not values:
        raise NotDrawable("no forget example has a per-example ε")
    marks = [(x, colour, style, label) for x, colour, style, label in (
        (_real(floor), NONMEMBERS, "--", f"alike populations {_real(floor):.2f}"),
        (_real(resolution), MEMBERS, ":", f"ln(N − 1) = {_real(resolution):.2f}")) if math.isfinite(x)]
    top = max([x for x, *_ in marks] + [0.0]) + 1.0
    # the cap (50) and anything past ln(N − 1) + 1 fall in the last bin
    counts, edges = np.histogram([min(max(e, 0.0), top - 1e-9) for e in values], bins=30, range=(0, top))
    chart = Chart(title, "per-example ε (last bin: at or above)", "forget examples")
    chart.axes([0.0, top], [0.0, float(counts.max())], xlimits=(0.0, top), ylimits=(0.0, float(counts.max()) * 1.05))
    chart.steps(counts.tolist(), edges.tolist(), "#555", opacity=0.8)
    for x, colour, style, label in marks:
        chart.vline(x, colour, label, dash=style)
    return chart.svg()


@drawn_or_noted
def relearn_figure(steps: list[int], attacked: list[dict], reference: list[dict], title: str,
                   measure: str = "forget accuracy") -> Markup:
    """`measure` (a fraction, drawn in %) along the relearning attack: the method's models against
    the reference retrains under the same attack, each a mean over seeds with its 95 % interval."""
    steps = [_real(step) for step in steps]
    curves = ((attacked, MEMBERS, "unlearned, attacked"), (reference, NONMEMBERS, "retrained, attacked"))
    if not _finite(steps) or any(len(curve) != len(steps) for curve, _, _ in curves):
        raise NotDrawable("its steps are missing or do not match its curves")
    if not any(_finite(c["mean"] for c in curve) for curve, _, _ in curves):
        raise NotDrawable("no step has a finite mean")
    chart = Chart(title, "fine-tuning steps on retain data", f"{measure} (%)")
    chart.axes(_finite(steps), [0.0, 100.0], ylimits=(-2.0, 102.0))
    for curve, colour, label in curves:
        if all(c["ci95"] for c in curve):
            chart.band(*_finite_columns(steps, [100 * _real(c["ci95"][0]) for c in curve],
                                        [100 * _real(c["ci95"][1]) for c in curve]), colour)
        chart.line(*_finite_columns(steps, [100 * _real(c["mean"]) for c in curve]), colour=colour, label=label,
                   markers=True)
    return chart.svg()


def _finite_columns(*columns: list[float]) -> list[list[float]]:
    """The rows of `columns` where every value is finite, as columns again."""
    rows = [row for row in zip(*columns) if all(math.isfinite(v) for v in row)]
    return [list(column) for column in zip(*rows)] if rows else [[] for _ in columns]


def _mosaic(rows: list[list], low: float, high: float) -> np.ndarray:
    """Images (C, H, W) in rows, one pixel of background between them, scaled to [0, 1]."""
    images = [np.asarray(row, dtype=np.float64) for row in rows]
    channels, height, width = next(len(r) and r.shape[1:] for r in images if len(r))
    columns = max(len(r) for r in images)
    out = np.ones((len(rows) * (height + 1) - 1, columns * (width + 1) - 1, channels))
    for i, row in enumerate(images):
        for j, image in enumerate(row):
            scaled = 1 - np.clip((image - low) / (high - low or 1), 0, 1) if channels == 1 else \
                np.clip((image - low) / (high - low or 1), 0, 1)  # one channel: ink dark on white
            out[i * (height + 1):i * (height + 1) + height, j * (width + 1):j * (width + 1) + width] = \
                np.moveaxis(scaled, 0, -1)
    return out[..., 0] if channels == 1 else out


@drawn_or_noted
def sample_grid_figure(rows: list[list], pixel_range: list[float], row_labels: list[str], title: str) -> Markup:
    """Generated images, one row per label (a class), drawn in the data's own pixel range."""
    if not any(len(row) for row in rows):
        raise NotDrawable("no sample to show")
    mosaic = _mosaic(rows, *pixel_range)
    scale = GRID_ROW / ((mosaic.shape[0] + 1) / len(rows))  # user units per pixel
    width, height = mosaic.shape[1] * scale, mosaic.shape[0] * scale
    left, top = GRID_LABELS, GRID_TITLE
    image = base64.b64encode(png_bytes(mosaic)).decode()
    labels = "".join(f'<text x="{left - 4}" y="{top + (i + 0.5) * GRID_ROW:.2f}" dy="3" text-anchor="end">'
                     f'{escape(label)}</text>' for i, label in enumerate(row_labels))
    return Markup(f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
                  f'viewBox="0 0 {left + width + 4:.2f} {top + height + 4:.2f}" role="img" aria-label="{escape(title)}" '
                  f'font-family="sans-serif" font-size="9" fill="#222">'
                  f'<text x="{left}" y="12" font-size="11">{escape(title)}</text>{labels}'
                  f'<image x="{left}" y="{top}" width="{width:.2f}" height="{height:.2f}" preserveAspectRatio="none" '
                  f'style="image-rendering:pixelated" xlink:href="data:image/png;base64,{image}"/></svg>')
