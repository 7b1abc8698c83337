"""The report's figures, drawn by matplotlib as inline SVG from the plot data in results.json.

Text stays text (no embedded fonts; only sample grids are raster, inlined as PNG), there is no
script and no external file, so a report is one file that renders offline, on a phone and in print. The SVG carries no
date, so a report renders the same every time, and its element ids are salted with the
title and the data drawn, so two figures inlined in one page never share an id.

Labels are drawn as typed: `$…$` is text, not mathtext. A figure whose data cannot be drawn
(no finite value, nothing above zero on log axes, malformed lists) becomes one line that says
so in its place, so a degenerate results.json still gives a whole report.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import io
import json
import math
import re
import warnings
from typing import Any, Callable

import matplotlib
import numpy as np

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from markupsafe import Markup, escape  # noqa: E402

from reports.numbers import is_number  # noqa: E402
from reports.text import MALFORMED as MALFORMED_RESULTS  # noqa: E402

ROC_ATTACKS = ("ulira", "lira_offline", "rmia_offline", "threshold_loss")  # drawn when present
SIZE = (3.6, 2.7)  # inches
STYLE = {"svg.fonttype": "none", "font.size": 8, "axes.titlesize": 9, "font.family": "sans-serif",
         "text.parse_math": False}
MEMBERS, NONMEMBERS = "#d62728", "#1f77b4"
MALFORMED = (*MALFORMED_RESULTS, ZeroDivisionError, OverflowError)


class NotDrawable(ValueError):
    """The figure's data holds nothing to draw; the message says why."""


def not_drawn(title: str, reason: str) -> Markup:
    """The line a report shows in place of a figure it could not draw."""
    return Markup('<p class="not-drawn">') + escape(f"{title}: not drawn ({reason}).") + Markup("</p>")


def drawn_or_noted(figure: Callable[..., Markup]) -> Callable[..., Markup]:
    """`figure` as drawn, or, when its data cannot be drawn, the line that says why; the
    figures it opened are closed either way. Missing glyphs fall back to a box, silently."""
    signature = inspect.signature(figure)

    @functools.wraps(figure)
    def draw(*args: Any, **kwargs: Any) -> Markup:
        title = str(signature.bind(*args, **kwargs).arguments.get("title", "figure"))
        open_before = set(plt.get_fignums())
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=r"Glyph .* missing from", category=UserWarning)
                return figure(*args, **kwargs)
        except NotDrawable as reason:
            return not_drawn(title, str(reason))
        except MALFORMED as error:
            return not_drawn(title, f"its data in results.json is malformed: {type(error).__name__}: {error}")
        finally:
            for number in set(plt.get_fignums()) - open_before:
                plt.close(number)

    return draw


def _real(value: Any) -> float:
    """`value` as a float; nan for anything that is not a real number (None, text, lists)."""
    return float(value) if is_number(value) else math.nan


def _finite(values: Any) -> list[float]:
    return [x for x in map(_real, values) if math.isfinite(x)]


def _svg(fig, title: str, *data: Any) -> Markup:
    """The figure as inline SVG; its ids are salted with the title and the data drawn."""
    buffer = io.StringIO()
    salt = hashlib.sha256(json.dumps([title, *data], sort_keys=True).encode()).hexdigest()[:16]
    with matplotlib.rc_context({"svg.hashsalt": salt}):
        fig.savefig(buffer, format="svg", metadata={"Date": None}, bbox_inches="tight")
    plt.close(fig)
    text = buffer.getvalue()
    text = text[text.index("<svg"):]  # inline: no XML declaration or doctype
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, count=1, flags=re.S)
    text = re.sub(r'<svg ([^>]*?)width="[^"]*" height="[^"]*"', rf'<svg \1role="img" aria-label="{_attr(title)}"', text, 1)
    return Markup(text)


def _attr(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")


def _axes(title: str):
    with matplotlib.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=SIZE)
        ax.set_title(title)
    return fig, ax


def _log_points(curve: dict[str, list]) -> list[tuple[float, float]]:
    """The (FPR, TPR) points of a curve that log axes can show: both finite and above zero."""
    pairs = zip(map(_real, curve["fpr"]), map(_real, curve["tpr"]))
    return [(f, t) for f, t in pairs if math.isfinite(f) and math.isfinite(t) and f > 0 and t > 0]


@drawn_or_noted
def roc_figure(attacks: dict[str, dict[str, Any]], title: str) -> Markup:
    """Log-log ROC of each attack in ROC_ATTACKS that `attacks` (name -> summary) holds."""
    curves = {name: _log_points(attacks[name]["roc"]["log"]) for name in ROC_ATTACKS if name in attacks}
    if not any(curves.values()):
        raise NotDrawable("no attack's ROC has a point with both rates above zero, which log axes need")
    with matplotlib.rc_context(STYLE):
        fig, ax = _axes(f"{title}: ROC")
        low = 1.0
        for name, points in curves.items():
            if points:
                ax.plot(*zip(*points), label=name, linewidth=1.2)
                low = min(low, points[0][0])
        ax.plot([low, 1], [low, 1], color="#999", linestyle="--", linewidth=0.8, label="chance")
        ax.set(xscale="log", yscale="log", xlabel="false-positive rate", ylabel="true-positive rate")
        ax.legend(loc="lower right", fontsize=7)
        return _svg(fig, f"{title}: ROC", {name: attacks[name]["roc"]["log"] for name in ROC_ATTACKS if name in attacks})


@drawn_or_noted
def histogram_figure(histogram: dict[str, list], title: str) -> Markup:
    """Member and non-member score counts on the stored bins, each as a share of its total."""
    edges = [_real(e) for e in histogram["edges"]]
    groups = [([_real(c) for c in histogram[key]], colour, label)
              for key, colour, label in (("members", MEMBERS, "members"), ("nonmembers", NONMEMBERS, "non-members"))]
    if len(edges) < 2 or not all(math.isfinite(e) for e in edges) or any(b <= a for a, b in zip(edges, edges[1:])):
        raise NotDrawable("its bin edges are not an increasing list of finite numbers")
    if any(len(counts) != len(edges) - 1 or not all(math.isfinite(c) for c in counts) for counts, _, _ in groups):
        raise NotDrawable("its counts do not match its bins")
    if not any(sum(counts) for counts, _, _ in groups):
        raise NotDrawable("no score falls in its bins")
    with matplotlib.rc_context(STYLE):
        fig, ax = _axes(title)
        for counts, colour, label in groups:
            total = max(sum(counts), 1)
            ax.stairs([c / total for c in counts], edges, fill=True, alpha=0.45, color=colour, label=label)
        ax.set(xlabel="membership score", ylabel="share of examples")
        ax.legend(fontsize=7)
        return _svg(fig, title, histogram)


@drawn_or_noted
def epsilon_figure(eps: list[float], floor: float, resolution: float, title: str) -> Markup:
    """The per-example ε over the forget set, with the floor of populations drawn alike and ln(N − 1)."""
    values = [e for e in map(_real, eps) if not math.isnan(e)]
    if not values:
        raise NotDrawable("no forget example has a per-example ε")
    marks = [(x, colour, style, label) for x, colour, style, label in (
        (_real(floor), NONMEMBERS, "--", f"alike populations {_real(floor):.2f}"),
        (_real(resolution), MEMBERS, ":", f"ln(N − 1) = {_real(resolution):.2f}")) if math.isfinite(x)]
    with matplotlib.rc_context(STYLE):
        fig, ax = _axes(title)
        top = max([x for x, *_ in marks] + [0.0]) + 1.0
        # the cap (50) and anything past ln(N − 1) + 1 fall in the last bin
        finite = [min(e, top - 1e-9) for e in values]
        ax.hist(finite, bins=30, range=(0, top), color="#555", alpha=0.8)
        for x, colour, style, label in marks:
            ax.axvline(x, color=colour, linestyle=style, linewidth=1, label=label)
        ax.set(xlabel="per-example ε (last bin: at or above)", ylabel="forget examples")
        if marks:
            ax.legend(fontsize=7)
        return _svg(fig, title, eps, floor, resolution)


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
    with matplotlib.rc_context(STYLE):
        fig, ax = _axes(title)
        for curve, colour, label in curves:
            ax.plot(steps, [100 * _real(c["mean"]) for c in curve], color=colour, marker="o", markersize=3,
                    label=label)
            if all(c["ci95"] for c in curve):
                ax.fill_between(steps, [100 * _real(c["ci95"][0]) for c in curve],
                                [100 * _real(c["ci95"][1]) for c in curve], color=colour, alpha=0.15, linewidth=0)
        ax.set(xlabel="fine-tuning steps on retain data", ylabel=f"{measure} (%)", ylim=(-2, 102))
        ax.legend(fontsize=7)
        return _svg(fig, title, steps, attacked, reference, measure)


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
    with matplotlib.rc_context(STYLE):
        mosaic = _mosaic(rows, *pixel_range)
        fig, ax = plt.subplots(figsize=(0.3 * mosaic.shape[1] / (mosaic.shape[0] / len(rows)) + 0.8,
                                        0.3 * len(rows) + 0.4))
        ax.imshow(mosaic, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        height = (mosaic.shape[0] + 1) / len(rows)
        ax.set_yticks([i * height + (height - 1) / 2 for i in range(len(rows))], row_labels)
        ax.set_xticks([])
        ax.tick_params(length=0)
        for side in ax.spines.values():
            side.set_visible(False)
        ax.set_title(title)
        return _svg(fig, title, rows, pixel_range, row_labels)
