"""How reports print numbers from results.json: percentages, mean ± std, intervals."""

from __future__ import annotations

from typing import Any

PERCENT = ("UA", "RA", "TA", "MIA", "avg_gap")


def number(value: float | None, percent: bool) -> str:
    if value is None:
        return "–"
    return f"{100 * value:.2f}" if percent else f"{value:.3f}"


def summary(stats: dict[str, Any], percent: bool = True) -> str:
    """mean ± std."""
    text = number(stats["mean"], percent)
    if stats.get("std") is not None:
        text += f" ± {number(stats['std'], percent)}"
    return text


def interval(stats: dict[str, Any], percent: bool = True) -> str:
    if not stats.get("ci95"):
        return ""
    low, high = stats["ci95"]
    return f"[{number(low, percent)}, {number(high, percent)}]"
