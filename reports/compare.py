"""What changed between two audits of one request: each method's verdict (old -> new), each
rule's number with its interval in both, and whether the change is beyond noise.

A change is beyond noise when
- the rule reads a metric (metrics.X, or the retrain-equivalence difference of X): the method's
  per-seed X is paired by seed between the audits (and, for the difference, so is the reference
  retrains'), and the 95 % Student-t interval of the mean change excludes 0 (Welch-Satterthwaite
  degrees of freedom when the retrains changed too); the units are the seeds both audits share;
- the rule reads another number with a 95 % interval (an attack's AUC): the two intervals are
  disjoint, a conservative test (each interval's own units, models and examples, are counted);
- the number has no interval: a change is shown but not judged; its verdict still is.

A method got worse when its verdict did (PASS -> INCONCLUSIVE or FAIL, INCONCLUSIVE -> FAIL) or
a rule's number moved beyond noise towards failing it (up for `<=`, down for `>=`, away from 0
for an equivalence difference)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import stdtrit  # Student-t quantiles, without loading scipy.stats

from audit.core.errors import SalunInputError
from reports.frames import load_frames

RANK = {"FAIL": 0, "INCONCLUSIVE": 1, "PASS": 2}
REQUEST_FIELDS = (("scope", "task"), ("scope", "dataset"), ("manifest", "data_digest"), ("manifest", "split_digest"),
                  ("scope", "forget_kind"), ("scope", "forget_classes"), ("scope", "forget_size"),
                  ("scope", "forget_digest"))
TOST = "equivalence.tost."
PAIRED, INTERVALS, NO_INTERVAL = "paired seeds", "disjoint intervals", "no interval"
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Number:
    """A rule's number in one audit, with its interval at `level`."""

    value: float | None
    low: float | None = None
    high: float | None = None
    level: float | None = None
    units: str = ""


@dataclass
class RuleChange:
    method: str
    rule: str
    old_status: str
    new_status: str
    old: Number
    new: Number
    test: str = NO_INTERVAL
    delta: float | None = None
    delta_low: float | None = None
    delta_high: float | None = None
    units: str = ""
    beyond_noise: bool = False
    worse: bool = False
    better: bool = False

    @property
    def changed(self) -> bool:
        return self.old_status != self.new_status or not _same(self.old.value, self.new.value)


@dataclass
class MethodChange:
    method: str
    old_verdict: str | None
    new_verdict: str | None
    rules: list[RuleChange] = field(default_factory=list)
    added_rules: list[str] = field(default_factory=list)
    removed_rules: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        """added, removed, changed (verdict, a rule, or a number beyond noise), within noise, unchanged."""
        if self.old_verdict is None or self.new_verdict is None:
            return "added" if self.old_verdict is None else "removed"
        if (self.old_verdict != self.new_verdict or self.added_rules or self.removed_rules
                or any(r.beyond_noise or r.old_status != r.new_status for r in self.rules)):
            return "changed"
        return "within noise" if any(r.changed for r in self.rules) else "unchanged"

    @property
    def worse(self) -> bool:
        if self.old_verdict is None or self.new_verdict is None:
            return False
        return RANK[self.new_verdict] < RANK[self.old_verdict] or any(r.worse for r in self.rules)


@dataclass
class Comparison:
    old_name: str
    new_name: str
    old_verdict: str
    new_verdict: str
    methods: list[MethodChange]
    differing: list[str]  # request fields that differ (compared anyway, with --force)
    seeds: tuple[list[int], list[int]]

    @property
    def worse(self) -> bool:
        return any(m.worse for m in self.methods)

    def frame(self) -> pd.DataFrame:
        """One row per rule of a method in both audits, for notebooks."""
        rows = [{"method": r.method, "rule": r.rule, "old_status": r.old_status, "new_status": r.new_status,
                 "old_value": r.old.value, "old_low": r.old.low, "old_high": r.old.high, "new_value": r.new.value,
                 "new_low": r.new.low, "new_high": r.new.high, "level": r.new.level, "test": r.test,
                 "delta": r.delta, "delta_low": r.delta_low, "delta_high": r.delta_high, "units": r.units,
                 "beyond_noise": r.beyond_noise, "worse": r.worse, "better": r.better}
                for method in self.methods for r in method.rules]
        return pd.DataFrame(rows)


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return a == b or (math.isnan(a) and math.isnan(b))


def _get(results: dict[str, Any], section: str, key: str) -> Any:
    part = results.get(section)
    return part.get(key) if isinstance(part, dict) else None


def request_differences(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(field, old value, new value) of each field naming the audited request (data, split,
    forget set) whose values differ."""
    return [(f"{section}.{key}", _get(old, section, key), _get(new, section, key))
            for section, key in REQUEST_FIELDS if _get(old, section, key) != _get(new, section, key)]


def shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 20 else text[:14] + "…" + text[-1]


def compare(old: dict[str, Any], new: dict[str, Any], old_name: str = "old", new_name: str = "new",
            force: bool = False) -> Comparison:
    """The comparison of two results.json dicts; SalunInputError when they audit different
    requests, unless `force`."""
    differing = request_differences(old, new)
    if differing and not force:
        name, before, after = differing[0]
        raise SalunInputError(f"{old_name} and {new_name} audit different requests: {name} is {shown(before)} in "
                              f"{old_name} but {shown(after)} in {new_name}; pass --force to compare them anyway")
    before, after = Audit(old), Audit(new)
    labels = list(dict.fromkeys([*before.verdicts, *after.verdicts]))
    methods = [_method_change(label, before, after) for label in labels]
    return Comparison(old_name, new_name, old.get("verdict"), new.get("verdict"), methods,
                      [name for name, _, _ in differing],
                      (list(old["manifest"].get("seeds") or []), list(new["manifest"].get("seeds") or [])))


class Audit:
    """One audit's frames, indexed the way a comparison reads them."""

    def __init__(self, results: dict[str, Any]):
        frames = load_frames(results)
        self.verdicts = {row.method: row.verdict for row in frames["methods"].itertuples()}
        rules = frames["verdicts"].drop_duplicates(["method", "rule"])
        self.rules = {(row["method"], row["rule"]): row for row in rules.to_dict("records")}
        metrics = frames["metrics"].dropna(subset=["seed", "value"])
        self.per_seed = {key: dict(zip(group["seed"].astype(int), group["value"]))
                         for key, group in metrics.groupby(["method", "metric"])}
        welch = frames["equivalence"][frames["equivalence"]["test"] == "welch"]
        self.differences = {(row["method"], row["metric"]): row for row in welch.to_dict("records")}
        mia = frames["mia"][frames["mia"]["target_kind"] == "method"]
        self.mia = {(row["target"], row["attack"], row["statistic"]): row for row in mia.to_dict("records")}

    def number(self, method: str, rule: dict[str, Any]) -> Number:
        probe = str(rule.get("probe") or "")
        if probe.startswith(TOST) and (method, probe[len(TOST):]) in self.differences:
            d = self.differences[(method, probe[len(TOST):])]
            units = f"{d['n_unlearned']} unlearned and {d['n_retrained']} retrained models"
            return Number(_plain(d["difference"]), _plain(d["ci_low"]), _plain(d["ci_high"]), _plain(d["level"]), units)
        parts = probe.split(".")
        units = ""
        if parts[0] == "mia" and len(parts) == 3 and (method, parts[1], parts[2]) in self.mia:
            m = self.mia[(method, parts[1], parts[2])]
            units = f"{m['n_models']} models, {m['n_examples']} examples"
        low, high = _plain(rule.get("ci_low")), _plain(rule.get("ci_high"))
        return Number(_plain(rule.get("value")), low, high, CONFIDENCE if low is not None else None, units)

    def series(self, method: str, probe: str) -> list[tuple[int, dict[int, float]]] | None:
        """(sign, seed -> value) of each population whose change moves the rule's number."""
        if probe.startswith("metrics.") and probe.count(".") == 1:
            metric = probe.split(".")[1]
            return [(1, self.per_seed.get((method, metric), {}))]
        if probe.startswith(TOST):
            metric = probe[len(TOST):]
            return [(1, self.per_seed.get((method, metric), {})),
                    (-1, self.per_seed.get(("reference_retrain", metric), {}))]
        return None


def _plain(value: Any) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def _method_change(label: str, before: Audit, after: Audit) -> MethodChange:
    change = MethodChange(label, before.verdicts.get(label), after.verdicts.get(label))
    if change.old_verdict is None or change.new_verdict is None:
        return change
    old_rules = [rule for (method, rule) in before.rules if method == label]
    new_rules = [rule for (method, rule) in after.rules if method == label]
    change.added_rules = [rule for rule in new_rules if rule not in old_rules]
    change.removed_rules = [rule for rule in old_rules if rule not in new_rules]
    change.rules = [_rule_change(label, rule, before, after) for rule in old_rules if rule in new_rules]
    return change


def _rule_change(label: str, rule: str, before: Audit, after: Audit) -> RuleChange:
    old_row, new_row = before.rules[(label, rule)], after.rules[(label, rule)]
    old, new = before.number(label, old_row), after.number(label, new_row)
    change = RuleChange(label, rule, old_row["status"], new_row["status"], old, new)
    direction = _direction(new_row)
    if old.value is None or new.value is None:
        return change
    old_series, new_series = before.series(label, new_row["probe"]), after.series(label, new_row["probe"])
    paired = _paired_change(old_series, new_series) if old_series and new_series else None
    if paired is not None:
        change.test, (change.delta, change.delta_low, change.delta_high, seeds) = PAIRED, paired
        change.units = f"{seeds} paired seeds"
        change.beyond_noise = not change.delta_low <= 0 <= change.delta_high if change.delta_low != change.delta_high \
            else change.delta != 0
    elif None not in (old.low, old.high, new.low, new.high):
        change.test, change.delta, change.units = INTERVALS, new.value - old.value, new.units
        change.beyond_noise = new.low > old.high or new.high < old.low
    else:
        change.delta, change.units = new.value - old.value, new.units
    if change.beyond_noise and direction is not None:
        change.worse = (abs(new.value) > abs(old.value) if direction == 0
                        else (new.value - old.value) * direction > 0)
        change.better = not change.worse
    return change


def _direction(row: dict[str, Any]) -> int | None:
    """+1 when a rising number moves towards failing the rule, -1 when a falling one does, 0 when
    moving away from 0 does (an equivalence difference), None when no direction is worse."""
    op = row.get("op")
    if str(row.get("probe") or "").startswith(TOST):
        return 0
    return {"<=": 1, "<": 1, ">=": -1, ">": -1}.get(op)


def _paired_change(old: list[tuple[int, dict[int, float]]],
                   new: list[tuple[int, dict[int, float]]]) -> tuple[float, float, float, int] | None:
    """(mean change, its 95 % interval, seeds) of Σ sign · mean(new − old) over the seeds both
    audits share, each population paired by seed; None with fewer than 2 shared seeds."""
    total, variance, welch, shared = 0.0, 0.0, 0.0, math.inf
    for (sign, before), (_, after) in zip(old, new):
        seeds = sorted(set(before) & set(after))
        if len(seeds) < 2:
            return None
        moved = np.array([after[s] - before[s] for s in seeds])
        part = float(moved.var(ddof=1)) / len(moved)
        total, variance, welch = total + sign * float(moved.mean()), variance + part, welch + part ** 2 / (len(moved) - 1)
        shared = min(shared, len(seeds))
    if variance == 0:
        return total, total, total, int(shared)
    half = float(stdtrit(variance ** 2 / welch, 0.5 + CONFIDENCE / 2)) * math.sqrt(variance)
    return total, total - half, total + half, int(shared)
