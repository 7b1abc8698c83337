"""The report's figures, drawn by matplotlib as inline SVG from the plot data in results.json.

Text stays text (no embedded fonts, no raster), there is no script and no external file,
so a report is one file that renders offline, on a phone and in print. The SVG carries no
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
    """The per-example ε over the forget set, with the floor of populations drawn alike and ln N."""
    with matplotlib.rc_context(STYLE):
        fig, ax = _axes(title)
        top = max(resolution, floor) + 1.0
        finite = [min(e, top - 1e-9) for e in eps]  # the cap (50) and anything past ln N + 1 fall in the last bin
        ax.hist(finite, bins=30, range=(0, top), color="#555", alpha=0.8)
        ax.axvline(floor, color=NONMEMBERS, linestyle="--", linewidth=1, label=f"alike populations {floor:.2f}")
        ax.axvline(resolution, color=MEMBERS, linestyle=":", linewidth=1, label=f"ln N = {resolution:.2f}")
        ax.set(xlabel="per-example ε (last bin: at or above)", ylabel="forget examples")
        ax.legend(fontsize=7)
        return _svg(fig, title, eps, floor, resolution)


def relearn_figure(steps: list[int], attacked: list[dict], reference: list[dict], title: str) -> Markup:
    """Forget accuracy along the relearning attack: the method's models against the reference
    retrains under the same attack, each a mean over seeds with its 95 % interval."""
    with matplotlib.rc_context(STYLE):
        fig, ax = _axes(title)
        for curve, colour, label in ((attacked, MEMBERS, "unlearned, attacked"),
                                     (reference, NONMEMBERS, "retrained, attacked")):
            ax.plot(steps, [100 * c["mean"] for c in curve], color=colour, marker="o", markersize=3, label=label)
            if all(c["ci95"] for c in curve):
                ax.fill_between(steps, [100 * c["ci95"][0] for c in curve], [100 * c["ci95"][1] for c in curve],
                                color=colour, alpha=0.15, linewidth=0)
        ax.set(xlabel="fine-tuning steps on retain data", ylabel="forget accuracy (%)", ylim=(-2, 102))
        ax.legend(fontsize=7)
        return _svg(fig, title, steps, attacked, reference)
