"""The policy: rules over probe numbers, each giving PASS, FAIL or INCONCLUSIVE, and the verdict.

A rule reads one number of one method's results, `<path> <op> <threshold>`, for example
`equivalence.tost.MIA == "equivalent"` or `mia.ulira.auc <= 0.55`. The path starts with a
section's name (SECTIONS) and walks that method's entry of the same section of results.json; a
path no section declares is refused when the spec is validated (audit.config.rule_paths). A rule only PASSes or FAILs when the number could have decided it:

- a number with a 95 % interval (`ci95`) passes when the whole interval satisfies the rule
  and fails when none of it does; an interval across the threshold is INCONCLUSIVE;
- a number beside a `null` entry (what two populations drawn alike give at this N) cannot
  fail a bound below that floor: the bound is finer than N models resolve;
- a number beside `max_certifiable` (the largest bound N models can certify) cannot pass
  a bound the test could never have exceeded;
- a per-example test whose smallest possible p-value is above α can never flag an
  example, so its fraction of differences passes nothing;
- a decision of `undecided` (an underpowered equivalence test) is INCONCLUSIVE, with the
  margin the test could have detected in its reason.
"""

from __future__ import annotations

import difflib
import math
import operator
import re
from dataclasses import dataclass
from typing import Any, Callable

from audit.config.rule_paths import NUMBER_KEYS
from audit.stats import power
from audit.core.errors import SalunInputError
from audit.core.params import shown

PASS, FAIL, INCONCLUSIVE = "PASS", "FAIL", "INCONCLUSIVE"
SECTIONS = ("equivalence", "mia", "metrics", "relearn", "backdoor", "dp")
DEFAULT_RULES = (
    "equivalence.per_example.ks.fraction_different <= 0.05",
    'equivalence.tost.UA == "equivalent"',
    'equivalence.tost.RA == "equivalent"',
    'equivalence.tost.TA == "equivalent"',
    'equivalence.tost.MIA == "equivalent"',
    "mia.ulira.auc <= 0.55",
)
GENERATION_RULES = (  # a generation audit's default: the judge sees what it sees of retrained generators
    'equivalence.tost.forgotten_probability == "equivalent"',
    'equivalence.tost.retained_accuracy == "equivalent"',
)
SUBJECT_RULES = (  # checkpoints audited one by one: only what a single unlearned model can show
    "equivalence.per_example.consistency.fraction_different <= 0.05",
)
RELEARN_RULE = "relearn.recovery <= 0.05"      # added to the default when [relearn] runs "retain"
BACKDOOR_RULE = 'backdoor.verdict == "deleted"'  # added to the default when [backdoor] plants a trigger
DP_RULE = "dp.epsilon_gap >= 0"  # added to the default when [train.dp] is set: no audited ε above the accountant's
# method -> the verdict a sound policy gives it
CONTROLS = {"identity": FAIL, "retrain": PASS, "partial_retrain": FAIL}
OPS = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt,
       "==": operator.eq, "!=": operator.ne}
UPPER_BOUNDS, LOWER_BOUNDS = ("<=", "<"), (">=", ">")
MAX_RULES = 200         # rules in one policy
MAX_RULE_LENGTH = 500   # characters of one rule, its padding stripped
# Matched against the stripped rule, so no run of spaces can be split two ways: linear time.
_RULE = re.compile(r"([A-Za-z_][\w.]*)\s*(<=|>=|==|!=|<|>)\s*([^<>=!].*)", re.DOTALL)


@dataclass(frozen=True)
class Rule:
    text: str
    path: tuple[str, ...]
    op: str
    threshold: float | str

    def holds(self, value: Any) -> bool:
        return OPS[self.op](value, self.threshold)


def parse_rule(text: str, where: str = "policy.rules") -> Rule:
    """`<path> <op> <number or "string">`; a malformed rule names `where` and what is wrong."""
    stripped = text.strip() if isinstance(text, str) else None
    if stripped is not None and len(stripped) > MAX_RULE_LENGTH:
        raise SalunInputError(f"{where}: a rule of {len(stripped)} characters; a rule has at most {MAX_RULE_LENGTH}")
    match = _RULE.fullmatch(stripped) if stripped is not None else None
    if match is None:
        raise SalunInputError(f'{where}: expected `<path> <op> <threshold>` such as '
                              f'`mia.ulira.auc <= 0.55`, got {shown(text)}')
    path, op, literal = match.groups()
    parts = tuple(path.split("."))
    if parts[0] not in SECTIONS or len(parts) < 2 or "" in parts:
        raise SalunInputError(f"{where}: the path {path!r} must start with one of {', '.join(SECTIONS)} "
                              "and name a number inside it")
    if literal[0] in "\"'":
        if len(literal) < 2 or literal[-1] != literal[0]:
            raise SalunInputError(f"{where}: unterminated string {shown(literal)}")
        if op not in ("==", "!="):
            raise SalunInputError(f"{where}: a string threshold takes == or !=, not {op}")
        threshold: float | str = literal[1:-1]
    else:
        try:
            threshold = float(literal)
        except ValueError:
            raise SalunInputError(f"{where}: threshold {shown(literal)} is neither a number nor a quoted string") from None
        if not math.isfinite(threshold):
            raise SalunInputError(f"{where}: threshold must be finite, got {literal}")
    return Rule(stripped, parts, op, threshold)


class _Missing(Exception):
    """The number a rule reads was not computed for this method."""


_PROBES = {"equivalence": "retrain-equivalence tests", "mia": "membership inference", "metrics": "metrics",
           "relearn": "relearning attack", "backdoor": "backdoor verification",
           "dp": "differential privacy audit"}
_ABSENT = {  # why a section is absent when the method's models did not diverge
    "equivalence": "no retrain-equivalence tests: they need at least 2 usable models on each side",
    "mia": "membership inference was not run (attacks.run is empty)",
    "metrics": "no metrics for this method",
    "relearn": "no relearning attack ran (relearn.run is empty)",
    "backdoor": "no backdoor was planted (backdoor.fraction is 0)",
    "dp": "no differential privacy audit ([train.dp] is not set)",
}


def _why_absent(section: str, namespace: dict[str, Any]) -> str:
    """A section is absent because the spec did not ask for it, or because the method's models
    diverged (its metrics list each failed seed and count the usable ones)."""
    metrics = namespace.get("metrics") or {}
    failed = len(metrics.get("failures") or ())
    usable = max((entry["n"] for entry in metrics.values() if isinstance(entry, dict) and "n" in entry), default=0)
    if failed and not usable:
        return (f"no {_PROBES[section]}: every model of this method diverged ({failed} of {failed} seeds; "
                "see metrics.failures), so there is nothing to measure")
    if failed:
        return f"{_ABSENT[section]} ({failed} of this method's {failed + usable} models diverged)"
    return _ABSENT[section]


Explain = Callable[[tuple[str, ...]], "str | None"]  # why a declared number is absent, if its section says


def _lookup(namespace: dict[str, Any], rule: Rule, explain: Explain | None = None) -> tuple[Any, dict[str, Any], str]:
    """(node at the rule's path, its parent, its key); _Missing says why it is absent."""
    section = rule.path[0]
    node = namespace.get(section)
    if node is None:
        raise _Missing(_why_absent(section, namespace))
    parent, key = namespace, section
    for depth, part in enumerate(rule.path[1:], start=1):
        if not isinstance(node, dict) or part not in node:
            why = explain(rule.path) if explain is not None else None
            if why:
                raise _Missing(why)
            known = sorted(node) if isinstance(node, dict) else []
            close = difflib.get_close_matches(part, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else (f"; known: {', '.join(known)}" if known else "")
            raise _Missing(f"no number at {'.'.join(rule.path[:depth + 1])}{hint}")
        parent, key, node = node, part, node[part]
    return node, parent, key


def _value_of(node: Any) -> tuple[Any, list[float] | None]:
    """A leaf's value and its 95 % interval: dicts carry them as value/decision/mean and ci95."""
    if isinstance(node, dict):
        for name in NUMBER_KEYS:
            if name in node:
                return node[name], node.get("ci95")
        raise _Missing(f"a table, not a number (it holds {', '.join(sorted(node))})")
    if isinstance(node, list):
        raise _Missing("a list, not a number")
    return node, None


def _fmt(x: Any) -> str:
    return f"{x:.4g}" if isinstance(x, float) else repr(x) if isinstance(x, str) else str(x)


def _judge(rule: Rule, node: Any, parent: dict[str, Any], key: str) -> tuple[str, Any, list | None, str]:
    value, interval = _value_of(node)
    if value is None:
        return INCONCLUSIVE, None, None, "not computed (too few usable models)"
    if isinstance(rule.threshold, str) or isinstance(value, str):
        if not isinstance(rule.threshold, str) or not isinstance(value, str):
            return INCONCLUSIVE, value, None, f"compares {_fmt(value)} with {_fmt(rule.threshold)}: types differ"
        why = (node if isinstance(node, dict) else parent).get("why", "")
        if value == "undecided":
            return INCONCLUSIVE, value, None, why or "the test could not decide"
        return (PASS if rule.holds(value) else FAIL), value, None, why or f"value {_fmt(value)}"
    value = float(value)
    holds = rule.holds(value)
    shown = f"{key} = {_fmt(value)}"
    if interval is not None and rule.op in UPPER_BOUNDS + LOWER_BOUNDS:
        low, high = interval
        worst, best = (high, low) if rule.op in UPPER_BOUNDS else (low, high)
        text = f"{shown}, 95 % interval [{_fmt(low)}, {_fmt(high)}]"
        if rule.holds(worst):
            return PASS, value, interval, f"{text} satisfies {rule.op} {_fmt(rule.threshold)} throughout"
        if not rule.holds(best):
            return FAIL, value, interval, f"{text} lies beyond {_fmt(rule.threshold)}"
        return INCONCLUSIVE, value, interval, f"{text} contains {_fmt(rule.threshold)}: {_what_decides(node, parent, value, rule)}"
    if not holds and rule.op in UPPER_BOUNDS:
        floor = parent.get("null", {}).get(key)
        if floor is not None and rule.threshold < floor:
            return INCONCLUSIVE, value, None, (
                f"{shown}, but two populations drawn alike already give {_fmt(floor)} with these models: "
                f"a bound of {_fmt(rule.threshold)} is below what they resolve; add models")
    if holds and rule.op in UPPER_BOUNDS and "max_certifiable" in parent:
        if parent["max_certifiable"] <= rule.threshold:
            return INCONCLUSIVE, value, None, (
                f"{shown}; the largest bound these models can certify is {_fmt(parent['max_certifiable'])}, "
                f"so the rule could never fail; add models")
    if holds and "min_p_value" in parent and parent["min_p_value"] > parent.get("alpha", 0.05):
        return INCONCLUSIVE, value, None, (
            f"{shown}; with these models the test's smallest p-value is {_fmt(parent['min_p_value'])} "
            f"> α = {_fmt(parent.get('alpha', 0.05))}, so it cannot flag any example; add models")
    if holds and rule.op in UPPER_BOUNDS and parent.get("power_guard") == "ks_fraction":
        guard = power.ks_rule_guard(parent["n_models"], parent["n_examples"], float(rule.threshold), parent["alpha"])
        if guard["power"] < power.POWER:
            needed = (f"about {guard['models_needed']} models per side would reach {power.POWER:.0%}"
                      if guard["models_needed"] else f"not even {power.MAX_MODELS} models per side would")
            return INCONCLUSIVE, value, None, (
                f"{shown}, but with {parent['n_models']} models per side this rule fails {guard['effect']} "
                f"in only {guard['power']:.0%} of cases; {needed}")
    return (PASS if holds else FAIL), value, None, f"{shown} {'satisfies' if holds else 'fails'} " \
        f"{rule.op} {_fmt(rule.threshold)}"


def _what_decides(node: Any, parent: dict[str, Any], value: float, rule: Rule) -> str:
    """For an interval across the threshold: the models that would decide it, when the
    interval says which units its width comes from."""
    by_unit = node.get("ci95_by_unit") if isinstance(node, dict) else None
    models = parent.get("units", {}).get("models", {}).get("members") if isinstance(parent, dict) else None
    if not by_unit and isinstance(node, dict) and "units" in node:  # a two-way interval alone, e.g. one class's
        return "more models or more examples would decide"
    if not by_unit or not models:
        return "more models would decide"
    needed = power.models_to_decide(value, float(rule.threshold), by_unit["models"]["se"],
                                    by_unit["examples"]["se"], int(models))
    if needed is None:
        return ("more models alone would not decide it: the spread across forget examples already reaches the "
                "threshold, so a larger forget set would")
    return f"about {needed} models per population would decide it, if the estimate stays"


def evaluate_rule(rule: Rule, namespace: dict[str, Any], explain: Explain | None = None) -> dict[str, Any]:
    """One rule on one method's numbers: the verdict with its value, threshold and reason; `explain`
    says why a number is absent where the probe knows (audit.core.probes.ProbeSections.why_absent)."""
    row = {"rule": rule.text, "probe": ".".join(rule.path), "op": rule.op, "threshold": rule.threshold}
    try:
        node, parent, key = _lookup(namespace, rule, explain)
        verdict, value, interval, reason = _judge(rule, node, parent, key)
    except _Missing as missing:
        verdict, value, interval, reason = INCONCLUSIVE, None, None, str(missing)
    return {**row, "value": value, "interval": interval, "verdict": verdict, "reason": reason}


def combine(verdicts: list[str]) -> str:
    """FAIL if any rule fails, else INCONCLUSIVE if any cannot decide, else PASS."""
    if FAIL in verdicts:
        return FAIL
    return INCONCLUSIVE if INCONCLUSIVE in verdicts or not verdicts else PASS


def _control_problem(method: str, verdict: str) -> str | None:
    expected = CONTROLS.get(method)
    if expected is None or verdict == expected:
        return None
    if method == "identity":
        return f"the policy does not fail the identity control (a no-op got {verdict}), so a PASS would mean nothing"
    if method == "partial_retrain":
        return (f"the policy does not fail a retrain that kept part of the forget set (it got {verdict}), "
                "so with these models it cannot catch incomplete forgetting; add models")
    if verdict == FAIL:
        return "the policy fails an independent retrain, so it is stricter than retraining itself"
    return "the policy cannot pass an independent retrain with these models; add models or relax the rules"


def overall_verdict(methods: dict[str, dict[str, Any]]) -> tuple[str, str]:
    """The audit's answer from each method's verdict, with the controls as the policy's own test.

    A FAIL stands unless the retrain control fails too; a PASS needs the identity control to
    fail and the retrain control to pass when they are in the audit.
    """
    audited = {label: m for label, m in methods.items() if m["control"] is None}
    problems = {m["control"]: m["control_problem"] for m in methods.values() if m.get("control_problem")}
    failed = [label for label, m in audited.items() if m["verdict"] == FAIL]
    undecided = [label for label, m in audited.items() if m["verdict"] == INCONCLUSIVE]
    if failed:
        if any(m["control"] == "retrain" and m["verdict"] == FAIL for m in methods.values()):
            return INCONCLUSIVE, f"{', '.join(failed)} fail, but {problems['retrain']}"
        return FAIL, f"{', '.join(failed)} fail the policy"
    if undecided:
        first = audited[undecided[0]]
        more = f" ({len(undecided) - 1} more method(s) undecided)" if len(undecided) > 1 else ""
        if "undecided_rule" not in first:
            return INCONCLUSIVE, f"{', '.join(undecided)}: at least one rule cannot decide with these models"
        return INCONCLUSIVE, f"{undecided[0]}: `{first['undecided_rule']}` cannot decide: {first['undecided_reason']}{more}"
    if problems:
        return INCONCLUSIVE, "; ".join(problems.values())
    if not audited:
        return (PASS, "controls only: the policy fails the identity control and passes the retrain control") \
            if methods else (INCONCLUSIVE, "no method was audited")
    missing = [c for c in ("identity", "retrain") if not any(m["control"] == c for m in methods.values())]
    note = f" (no {' or '.join(missing)} control in the audit to check the policy itself)" if missing else ""
    return PASS, f"{', '.join(audited)} pass every rule{note}"


def apply_policy(rules: tuple[str, ...], namespaces: dict[str, dict[str, Any]], methods: dict[str, str],
                 extra: list[dict[str, Any]] = (), explain: Explain | None = None) -> dict[str, Any]:
    """Every rule on every method. `namespaces`: label -> {equivalence, mia, metrics} of that
    method; `methods`: label -> registered method name (to recognise the controls); `extra`:
    rows already decided elsewhere (a method that diverged); `explain`: see evaluate_rule."""
    parsed = [parse_rule(text, f"policy.rules[{i}]") for i, text in enumerate(rules)]
    rows = list(extra)
    for label, namespace in namespaces.items():
        rows += [{"method": label, **evaluate_rule(rule, namespace, explain)} for rule in parsed]
    per_method = {}
    for label, method in methods.items():
        own = [row for row in rows if row["method"] == label]
        verdict = combine([row["verdict"] for row in own])
        control = method if method in CONTROLS else None
        per_method[label] = {"verdict": verdict, "control": control,
                             "expected": CONTROLS.get(method), "control_problem": _control_problem(method, verdict)}
        undecided = next((row for row in own if row["verdict"] == INCONCLUSIVE), None)
        if verdict == INCONCLUSIVE and undecided is not None:
            per_method[label] |= {"undecided_rule": undecided["rule"], "undecided_reason": undecided["reason"]}
    overall, reason = overall_verdict(per_method)
    return {"verdicts": rows, "methods": per_method, "verdict": overall, "verdict_reason": reason}
