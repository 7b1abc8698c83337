"""The report's views across methods, from results.json's `mia`, `metrics`, `populations` and
`equivalence` sections: one ROC per attack with every target population on it, the trade-off
of privacy against test accuracy, and the per-class AUC of the headline attack."""

from __future__ import annotations

import math
from typing import Any

from markupsafe import Markup

from reports.numbers import EPSILON_CAP, is_number
from reports.plots import ROC_ATTACKS, NotDrawable, auc_label, drawn_or_noted, log_points, log_roc
from reports.svg import Chart

WIDE, TALL = 640, 290  # a cross-method figure spans the text column
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf",
           "#7f7f7f")
POPULATIONS = {"original": ("#000", "-."), "reference_retrain": ("#777", ":")}  # colour, dash
CONTROL_MARKERS = {"retrain": "square", "identity": "diamond"}
REFERENCE_COLOURS = {"original": "#000", "reference_retrain": "#777"}


def _value(stats: Any, key: str = "value") -> float:
    value = stats.get(key) if isinstance(stats, dict) else None
    return float(value) if is_number(value) and math.isfinite(value) else math.nan


def _interval(stats: Any, scale: float = 1.0) -> tuple[float, float] | None:
    bounds = stats.get("ci95") if isinstance(stats, dict) else None
    if isinstance(bounds, (list, tuple)) and len(bounds) == 2 and all(is_number(b) and math.isfinite(b)
                                                                      for b in bounds):
        return scale * bounds[0], scale * bounds[1]
    return None


def method_styles():
    """(colour, dash, marker) of each method in turn: the palette solid with circles, then dashed
    with triangles, and so on, so no two of up to 4 × 10 methods look alike."""
    cycles = (("-", "circle"), ("--", "triangle"), (":", "circle"), ("-.", "triangle"))
    for dash, marker in cycles:
        for colour in PALETTE:
            yield colour, dash, marker
    while True:
        yield "#555", "-", "circle"


def targets(mia: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(label, kind, attacks) of every target population: the references, then each method."""
    populations = mia.get("populations") or {}
    methods = mia.get("methods") or {}
    return [(name, "population", populations[name]) for name in POPULATIONS if name in populations] + \
        [(label, "method", attacks) for label, attacks in methods.items()]


def comparison_attacks(mia: dict[str, Any]) -> list[str]:
    """The attacks of ROC_ATTACKS that at least one target population holds."""
    return [name for name in ROC_ATTACKS if any(name in attacks for _, _, attacks in targets(mia))]


@drawn_or_noted
def comparison_roc_figure(mia: dict[str, Any], attack: str, title: str) -> Markup:
    """One attack's log-log ROC on every target population that has it, each labelled with its AUC."""
    curves, styles = [], iter(method_styles())
    for label, kind, attacks in targets(mia):
        if attack not in attacks:
            continue
        colour, dash, _ = next(styles) if kind == "method" else (*POPULATIONS[label], None)
        name = label.replace("_", " ") if kind == "population" else label
        curves.append((auc_label(name, attacks[attack]), log_points(attacks[attack]["roc"]["log"]), colour, dash))
    return log_roc(title, curves, legend_column=True, width=WIDE, height=TALL)


def privacy_measure(results: dict[str, Any]) -> str | None:
    """What the trade-off figure puts on its vertical axis: "ulira" (its AUC) when any method has
    U-LiRA, else "epsilon" (the competition's median ε) when any has retrain equivalence, else None."""
    if any("ulira" in attacks for attacks in ((results.get("mia") or {}).get("methods") or {}).values()):
        return "ulira"
    if any("neurips2023" in entry for entry in (results.get("equivalence") or {}).values()):
        return "epsilon"
    return None


def _privacy(results: dict[str, Any], label: str, measure: str) -> tuple[float, tuple[float, float] | None]:
    if measure == "ulira":
        auc = (((results.get("mia") or {}).get("methods") or {}).get(label) or {}).get("ulira", {}).get("auc")
        return _value(auc), _interval(auc)
    entry = ((results.get("equivalence") or {}).get(label) or {}).get("neurips2023") or {}
    return _value(entry, "eps_median"), None


def tradeoff_points(results: dict[str, Any], measure: str) -> list[dict[str, Any]]:
    """Each method with both numbers: label, TA (%) with its interval, the privacy number with its
    interval (None for ε, a point estimate), and its control role."""
    verdicts = results.get("method_verdicts") or {}
    points = []
    for label, row in (results.get("metrics") or {}).items():
        ta = row.get("TA") if isinstance(row, dict) else None
        privacy, interval = _privacy(results, label, measure)
        if math.isfinite(_value(ta, "mean")) and math.isfinite(privacy):
            points.append({"label": label, "ta": 100 * _value(ta, "mean"), "ta_ci": _interval(ta, 100.0),
                           "privacy": privacy, "privacy_ci": interval,
                           "control": (verdicts.get(label) or {}).get("control")})
    return points


@drawn_or_noted
def tradeoff_figure(results: dict[str, Any], title: str) -> Markup:
    """Privacy (U-LiRA AUC, or the competition ε) against test accuracy, one point per method with
    its 95 % intervals as error bars; the controls marked apart and the reference populations'
    test accuracy drawn as vertical lines."""
    measure = privacy_measure(results)
    points = tradeoff_points(results, measure) if measure else []
    if not points:
        raise NotDrawable("no method has both a test accuracy and a U-LiRA AUC or competition ε")
    references = [(name, 100 * _value(pop.get("TA"), "mean")) for name, pop in (results.get("populations") or {}).items()
                  if name in REFERENCE_COLOURS and isinstance(pop, dict) and math.isfinite(_value(pop.get("TA"), "mean"))]
    labels = [p["label"] + (" (control)" if p["control"] else "") for p in points]
    labels += [f"{name.replace('_', ' ')} TA" for name, _ in references]
    ylabel = "U-LiRA AUC (0.5: chance)" if measure == "ulira" else f"competition ε, median (cap {EPSILON_CAP:g})"
    chart = Chart(title, "test accuracy TA (%)", ylabel, WIDE, TALL, labels)
    xs = [v for p in points for v in (p["ta"], *(p["ta_ci"] or ()))] + [x for _, x in references]
    ys = [v for p in points for v in (p["privacy"], *(p["privacy_ci"] or ()))]
    ys += [0.5] if measure == "ulira" else [0.0]
    chart.axes(xs, ys)
    if measure == "ulira":
        chart.hline(0.5, "#bbb", dash=":")
    for name, x in references:
        chart.vline(x, REFERENCE_COLOURS[name], f"{name.replace('_', ' ')} TA", dash="--")
    for point, label, (colour, _, marker) in zip(points, labels, method_styles()):
        chart.point(point["ta"], point["privacy"], colour, label, CONTROL_MARKERS.get(point["control"], marker),
                    xerr=point["ta_ci"], yerr=point["privacy_ci"])
    return chart.svg()


def per_class_rows(results: dict[str, Any], attack: str) -> dict[str, Any]:
    """The per-class AUC of `attack` on every target that has it: {"classes": [...], "rows":
    [(label, [{"value", "ci95"} or None per class])]}, the classes in numeric order. A results.json
    written before the per-class intervals holds a bare number per class: its interval is absent."""
    rows = [(label, attacks[attack].get("per_class_auc") or {}) for label, _, attacks in targets(results.get("mia") or {})
            if isinstance(attacks.get(attack), dict)]
    classes = sorted({str(c) for _, by_class in rows for c in by_class}, key=lambda c: (len(c), c))
    return {"classes": classes,
            "rows": [(label, [_class_auc(by_class.get(c)) for c in classes]) for label, by_class in rows if by_class]}


def _class_auc(entry: Any) -> dict[str, Any] | None:
    if is_number(entry):
        return {"value": entry}
    return entry if isinstance(entry, dict) and is_number(entry.get("value")) else None


def headline_attack(mia: dict[str, Any]) -> str | None:
    """The attack the report leads with: U-LiRA when a method has it, else offline LiRA."""
    present = comparison_attacks(mia)
    return next((name for name in ("ulira", "lira_offline", *present) if name in present), None)
