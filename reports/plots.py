"""The report's figures, drawn by matplotlib as inline SVG from the plot data in results.json.

Text stays text (no embedded fonts; only sample grids are raster, inlined as PNG), there is no
script and no external file, so a report is one file that renders offline, on a phone and in print. The SVG carries no
date, so a report renders the same every time, and its element ids are salted with the
title and the data drawn, so two figures inlined in one page never share an id.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from typing import Any

import matplotlib
import numpy as np

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from markupsafe import Markup  # noqa: E402

ROC_ATTACKS = ("ulira", "lira_offline", "rmia_offline", "threshold_loss")  # drawn when present
SIZE = (3.6, 2.7)  # inches
STYLE = {"svg.fonttype": "none", "font.size": 8, "axes.titlesize": 9, "font.family": "sans-serif"}
MEMBERS, NONMEMBERS = "#d62728", "#1f77b4"


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


def roc_figure(attacks: dict[str, dict[str, Any]], title: str) -> Markup:
    """Log-log ROC of each attack in ROC_ATTACKS that `attacks` (name -> summary) holds."""
    with matplotlib.rc_context(STYLE):
        fig, ax = _axes(f"{title}: ROC")
        low = 1.0
        for name in ROC_ATTACKS:
            if name in attacks:
                curve = attacks[name]["roc"]["log"]
                points = [(f, t) for f, t in zip(curve["fpr"], curve["tpr"]) if f > 0 and t > 0]
                if points:
                    ax.plot(*zip(*points), label=name, linewidth=1.2)
                    low = min(low, points[0][0])
        ax.plot([low, 1], [low, 1], color="#999", linestyle="--", linewidth=0.8, label="chance")
        ax.set(xscale="log", yscale="log", xlabel="false-positive rate", ylabel="true-positive rate")
        ax.legend(loc="lower right", fontsize=7)
        return _svg(fig, f"{title}: ROC", {name: attacks[name]["roc"]["log"] for name in ROC_ATTACKS if name in attacks})


def histogram_figure(histogram: dict[str, list], title: str) -> Markup:
    """Member and non-member score counts on the stored bins, each as a share of its total."""
    with matplotlib.rc_context(STYLE):
        fig, ax = _axes(title)
        edges = histogram["edges"]
        for counts, colour, label in ((histogram["members"], MEMBERS, "members"),
                                      (histogram["nonmembers"], NONMEMBERS, "non-members")):
            total = max(sum(counts), 1)
            ax.stairs([c / total for c in counts], edges, fill=True, alpha=0.45, color=colour, label=label)
        ax.set(xlabel="membership score", ylabel="share of examples")
        ax.legend(fontsize=7)
        return _svg(fig, title, histogram)


def epsilon_figure(eps: list[float], floor: float, resolution: float, title: str) -> Markup:
    """The per-example ε over the forget set, with the floor of populations drawn alike and ln(N − 1)."""
    with matplotlib.rc_context(STYLE):
        fig, ax = _axes(title)
        top = max(resolution, floor) + 1.0
        finite = [min(e, top - 1e-9) for e in eps]  # the cap (50) and anything past ln(N − 1) + 1 fall in the last bin
        ax.hist(finite, bins=30, range=(0, top), color="#555", alpha=0.8)
        ax.axvline(floor, color=NONMEMBERS, linestyle="--", linewidth=1, label=f"alike populations {floor:.2f}")
        ax.axvline(resolution, color=MEMBERS, linestyle=":", linewidth=1, label=f"ln(N − 1) = {resolution:.2f}")
        ax.set(xlabel="per-example ε (last bin: at or above)", ylabel="forget examples")
        ax.legend(fontsize=7)
        return _svg(fig, title, eps, floor, resolution)


def relearn_figure(steps: list[int], attacked: list[dict], reference: list[dict], title: str,
                   measure: str = "forget accuracy") -> Markup:
    """`measure` (a fraction, drawn in %) along the relearning attack: the method's models against
    the reference retrains under the same attack, each a mean over seeds with its 95 % interval."""
    with matplotlib.rc_context(STYLE):
        fig, ax = _axes(title)
        for curve, colour, label in ((attacked, MEMBERS, "unlearned, attacked"),
                                     (reference, NONMEMBERS, "retrained, attacked")):
            ax.plot(steps, [100 * c["mean"] for c in curve], color=colour, marker="o", markersize=3, label=label)
            if all(c["ci95"] for c in curve):
                ax.fill_between(steps, [100 * c["ci95"][0] for c in curve], [100 * c["ci95"][1] for c in curve],
                                color=colour, alpha=0.15, linewidth=0)
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


def sample_grid_figure(rows: list[list], pixel_range: list[float], row_labels: list[str], title: str) -> Markup:
    """Generated images, one row per label (a class), drawn in the data's own pixel range."""
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
