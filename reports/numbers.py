"""How reports print numbers from results.json: percentages, mean ± std, intervals.

Anything that is not a number (None, a missing value, text) prints as "–"; nan and inf print
as such, so a degenerate result is shown for what it is instead of stopping the report."""

from __future__ import annotations

from typing import Any

PERCENT = ("UA", "RA", "TA", "MIA", "avg_gap")
MISSING = "–"
EPSILON_CAP = 50.0  # the competition's per-example ε for an example no threshold errs on (audit/stats/neurips2023.py)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def number(value: Any, percent: bool = False, digits: int | None = None) -> str:
    """`value` with `digits` decimals (2 for a percentage, else 3), times 100 as a percentage."""
    if not is_number(value):
        return MISSING
    digits = (2 if percent else 3) if digits is None else digits
    return f"{100 * value if percent else value:.{digits}f}"


def summary(stats: Any, percent: bool = True) -> str:
    """mean ± std."""
    if not isinstance(stats, dict):
        return MISSING
    text = number(stats.get("mean"), percent)
    if is_number(stats.get("std")):
        text += f" ± {number(stats['std'], percent)}"
    return text


def interval(stats: Any, percent: bool = True, digits: int | None = None) -> str:
    """[low, high] of `stats`' 95 % interval, as `number` writes each, or nothing without one."""
    bounds = stats.get("ci95") if isinstance(stats, dict) else None
    if not isinstance(bounds, (list, tuple)) or len(bounds) != 2:
        return ""
    low, high = bounds
    return f"[{number(low, percent, digits)}, {number(high, percent, digits)}]"


def epsilon(value: Any, cap: Any = EPSILON_CAP) -> str:
    """A competition ε with two decimals, marked as the cap when it is the cap."""
    text = number(value, digits=2)
    return f"{text} (the cap)" if is_number(value) and is_number(cap) and value >= cap else text
