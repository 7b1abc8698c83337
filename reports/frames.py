"""results.json as tidy pandas DataFrames: one row per observation, in long format, for
notebooks and for `salun report --format csv` (one CSV file per frame).

- metrics: every per-seed value of every metric, for the original and reference-retrain
  populations and each method's unlearned models (role), with the seed it came from;
- failures: the seeds whose models diverged, with the reason;
- methods: each method's verdict, and what a control was expected to get;
- verdicts: each rule on each method: its status, number (or decision) and 95 % interval;
- mia: each membership attack's statistics on each target (population, method, or the shadow
  models' own game), its AUC on each class of the forget set among them (`auc_class_<class>`),
  with the interval and the models and examples behind it;
- equivalence: each retrain-equivalence test's difference (unlearned − retrained) with its
  interval at 1 − 2α and the models on each side;
- epsilon: the per-example ε of the NeurIPS 2023 competition statistic;
- relearn: the relearning curves per checkpoint, unlearned against retrained.

A section the audit did not compute gives an empty frame with the same columns. Loads without
torch: only results.json and pandas."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from audit.core.files import write_text_atomic
from audit.results.document import load_results
from reports.numbers import is_number

Rows = Iterator[dict[str, Any]]
POPULATION_ROLES = ("original", "reference_retrain")
MIA_STATISTICS = ("auc", "tpr_at_fpr", "balanced_accuracy", "advantage", "epsilon_lower_bound", "mia_efficacy")


def load_frames(results: dict[str, Any] | str | Path) -> dict[str, pd.DataFrame]:
    """Every frame of `results` (a results.json path, or the dict load_results gives), by name."""
    if not isinstance(results, dict):
        results = load_results(Path(results))
    return {name: pd.DataFrame(list(rows(results)), columns=list(columns)) for name, (columns, rows) in FRAMES.items()}


def write_csv(results: dict[str, Any], folder: Path) -> list[Path]:
    """One CSV file per frame, `<name>.csv` in `folder`, every frame's columns in its header."""
    written = []
    for name, frame in load_frames(results).items():
        write_text_atomic(folder / f"{name}.csv", frame.to_csv(index=False))
        written.append(folder / f"{name}.csv")
    return written


def number_or_none(value: Any) -> float | None:
    return float(value) if is_number(value) else None


def bounds(interval: Any) -> tuple[float | None, float | None]:
    """(low, high) of a two-number interval; (None, None) when there is none."""
    if isinstance(interval, (list, tuple)) and len(interval) == 2:
        return number_or_none(interval[0]), number_or_none(interval[1])
    return None, None


def _seeds_of(row: dict[str, Any], seeds: list[int], count: int) -> list[int | None]:
    """The seed of each per-seed value: the audit's seeds less those that failed, in order; None
    when that does not account for the values (a quantity missing on some seed)."""
    failed = {failure.get("seed") for failure in row.get("failures") or []}
    kept = [seed for seed in seeds if seed not in failed]
    return kept if len(kept) == count else [None] * count


def _tables(results: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(method or population, role, its table) for the populations and then every method."""
    for name, table in (results.get("populations") or {}).items():
        yield name, name, table
    for label, table in (results.get("metrics") or {}).items():
        yield label, "unlearned", table


def _metric_rows(results: dict[str, Any]) -> Rows:
    seeds = list(results.get("manifest", {}).get("seeds") or [])
    for method, role, table in _tables(results):
        for metric, summary in table.items():
            if metric == "failures" or not isinstance(summary, dict):
                continue
            values = summary.get("per_seed") or []
            for seed, value in zip(_seeds_of(table, seeds, len(values)), values):
                yield {"method": method, "role": role, "seed": seed, "metric": metric, "value": number_or_none(value)}


def _failure_rows(results: dict[str, Any]) -> Rows:
    for method, role, table in _tables(results):
        for failure in table.get("failures") or []:
            yield {"method": method, "role": role, "seed": failure.get("seed"), "reason": failure.get("reason")}


def _method_rows(results: dict[str, Any]) -> Rows:
    for label, entry in (results.get("method_verdicts") or {}).items():
        yield {"method": label, "verdict": entry.get("verdict"), "control": entry.get("control"),
               "expected": entry.get("expected"), "control_problem": entry.get("control_problem")}


def _verdict_rows(results: dict[str, Any]) -> Rows:
    for row in results.get("verdicts") or []:
        value = row.get("value")
        low, high = bounds(row.get("interval"))
        yield {"method": row.get("method"), "rule": row.get("rule"), "probe": row.get("probe"), "op": row.get("op"),
               "threshold": row.get("threshold"), "status": row.get("verdict"), "value": number_or_none(value),
               "decision": value if isinstance(value, str) else None, "ci_low": low, "ci_high": high,
               "reason": row.get("reason")}


def distinct_units(entry: dict[str, Any]) -> tuple[int | None, int | None]:
    """(models, examples) behind a membership game: the units counted on either side, those
    on both sides once; the target models and forget examples when the entry has no units."""
    units = entry.get("units")
    if not isinstance(units, dict):
        return entry.get("n_target_models"), entry.get("n_forget")

    def distinct(kind: str) -> int | None:
        count = units.get(kind)
        if not isinstance(count, dict):
            return None
        return count.get("members", 0) + count.get("nonmembers", 0) - count.get("shared", 0)

    return distinct("models"), distinct("examples")


def _statistic(name: str, value: Any, interval: Any, models: Any, examples: Any) -> dict[str, Any]:
    low, high = bounds(interval)
    return {"statistic": name, "value": number_or_none(value), "ci_low": low, "ci_high": high,
            "n_models": models, "n_examples": examples}


def _attack_rows(entry: dict[str, Any]) -> Rows:
    models, examples = distinct_units(entry)
    for name in MIA_STATISTICS:
        node = entry.get(name)
        if name == "tpr_at_fpr" and isinstance(node, list):
            for point in node:
                if isinstance(point, dict) and is_number(point.get("fpr")):
                    yield _statistic(f"tpr_at_fpr_{point['fpr']:g}", point.get("tpr"), None, models, examples)
        elif name == "epsilon_lower_bound" and isinstance(node, dict):
            trials = [node.get(side) for side in ("n_members", "n_nonmembers")]
            yield _statistic(name, node.get("value"), None, models,
                             sum(trials) if all(isinstance(t, int) for t in trials) else None)
        elif isinstance(node, dict) and "per_seed" in node:  # a summary over the target models
            yield _statistic(name, node.get("mean"), node.get("ci95"), node.get("n"), examples)
        elif isinstance(node, dict):
            yield _statistic(name, node.get("value"), node.get("ci95"), models, examples)
        elif is_number(node):
            yield _statistic(name, node, None, models, examples)
    for label, node in (entry.get("per_class_auc") or {}).items():  # a bare number before the per-class intervals
        if isinstance(node, dict):
            yield _statistic(f"auc_class_{label}", node.get("value"), node.get("ci95"), *distinct_units(node))
        elif is_number(node):
            yield _statistic(f"auc_class_{label}", node, None, models, None)


def _mia_targets(mia: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for name, attacks in (mia.get("populations") or {}).items():
        yield name, "population", attacks
    for label, attacks in (mia.get("methods") or {}).items():
        yield label, "method", attacks
    recipe = mia.get("recipe")
    if isinstance(recipe, dict):
        yield "shadows", "shadows", recipe


def _mia_rows(results: dict[str, Any]) -> Rows:
    for target, kind, attacks in _mia_targets(results.get("mia") or {}):
        for attack, entry in attacks.items():
            if isinstance(entry, dict):
                for row in _attack_rows(entry):
                    yield {"target": target, "target_kind": kind, "attack": attack, **row}


def _equivalence_rows(results: dict[str, Any]) -> Rows:
    for label, entry in (results.get("equivalence") or {}).items():
        for metric, test in (entry.get("tost") or {}).items() if isinstance(entry, dict) else ():
            for name, side in test.items() if isinstance(test, dict) else ():
                if not isinstance(side, dict) or "difference" not in side:
                    continue
                low, high = bounds(side.get("ci"))
                alpha = number_or_none(side.get("alpha"))
                yield {"method": label, "metric": metric, "test": name, "decision": test.get("decision"),
                       "difference": number_or_none(side.get("difference")), "ci_low": low, "ci_high": high,
                       "level": None if alpha is None else 1 - 2 * alpha, "margin": number_or_none(side.get("margin")),
                       "p": number_or_none(side.get("p")), "n_unlearned": side.get("n_u"), "n_retrained": side.get("n_r")}


def _epsilon_rows(results: dict[str, Any]) -> Rows:
    for label, entry in (results.get("equivalence") or {}).items():
        competition = entry.get("neurips2023") if isinstance(entry, dict) else None
        if not isinstance(competition, dict):
            continue
        eps, indices = competition.get("eps") or [], competition.get("forget_indices") or []
        if len(eps) != len(indices):
            indices = [None] * len(eps)
        for index, epsilon in zip(indices, eps):
            yield {"method": label, "forget_index": index, "epsilon": number_or_none(epsilon)}


def _curve_rows(method: str, curve: str, side: str, steps: list[Any], summaries: Any) -> Rows:
    if not isinstance(summaries, list) or len(summaries) != len(steps):
        return
    for step, summary in zip(steps, summaries):
        if isinstance(summary, dict):
            low, high = bounds(summary.get("ci95"))
            yield {"method": method, "curve": curve, "side": side, "step": step,
                   "mean": number_or_none(summary.get("mean")), "ci_low": low, "ci_high": high, "n": summary.get("n")}


def _relearn_rows(results: dict[str, Any]) -> Rows:
    relearn = results.get("relearn") or {}
    steps, measure = list(relearn.get("steps") or []), relearn.get("measure")
    for curve, summaries in ((relearn.get("reference") or {}).get("retain") or {}).items():
        yield from _curve_rows("reference_retrain", curve, "retrained", steps, summaries)
    for label, entry in (relearn.get("methods") or {}).items():
        for key, summaries in entry.items() if isinstance(entry, dict) else ():
            if key in ("unlearned", "retrained", "difference"):
                yield from _curve_rows(label, measure, key, steps, summaries)
            elif isinstance(summaries, list):
                yield from _curve_rows(label, key, "unlearned", steps, summaries)


Builder = Callable[[dict[str, Any]], Rows]
FRAMES: dict[str, tuple[tuple[str, ...], Builder]] = {
    "metrics": (("method", "role", "seed", "metric", "value"), _metric_rows),
    "failures": (("method", "role", "seed", "reason"), _failure_rows),
    "methods": (("method", "verdict", "control", "expected", "control_problem"), _method_rows),
    "verdicts": (("method", "rule", "probe", "op", "threshold", "status", "value", "decision", "ci_low", "ci_high", "reason"),
                 _verdict_rows),
    "mia": (("target", "target_kind", "attack", "statistic", "value", "ci_low", "ci_high", "n_models", "n_examples"),
            _mia_rows),
    "equivalence": (("method", "metric", "test", "decision", "difference", "ci_low", "ci_high", "level", "margin",
                     "p", "n_unlearned", "n_retrained"), _equivalence_rows),
    "epsilon": (("method", "forget_index", "epsilon"), _epsilon_rows),
    "relearn": (("method", "curve", "side", "step", "mean", "ci_low", "ci_high", "n"), _relearn_rows),
}
