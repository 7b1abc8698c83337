"""The report's first page: what was audited, the verdict in one sentence and what it means,
and the grid of methods against rules with each cell's verdict and deciding number."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reports.numbers import is_number

OPERATORS = {"<=": "≤", ">=": "≥", "==": "=", "!=": "≠", "<": "<", ">": ">"}
MEANING = {
    "PASS": "every audited method is indistinguishable from retraining without the forget set by every rule "
            "of the policy, and the controls behave as a sound policy must",
    "FAIL": "at least one audited method is distinguishable from retraining without the forget set: by the "
            "rules marked FAIL, its models still carry the forget set's influence",
    "INCONCLUSIVE": "these models cannot decide; the reason below says what would",
}


@dataclass(frozen=True)
class Cell:
    verdict: str
    shown: str
    reason: str


def short_rule(rule: str) -> str:
    """A rule as a column heading: `equivalence.tost.UA == "equivalent"` -> `tost UA = equivalent`."""
    for op in sorted(OPERATORS, key=len, reverse=True):
        if f" {op} " in rule:
            path, threshold = rule.split(f" {op} ", 1)
            parts = path.split(".")
            parts = parts[1:] if len(parts) > 2 else parts
            return f"{' '.join(parts).replace('_', ' ')} {OPERATORS[op]} {threshold.strip().strip(chr(34))}"
    return rule


def _shown(value: Any) -> str:
    if is_number(value):
        return f"{value:.3g}"
    return "–" if value is None else str(value)


def verdict_grid(results: dict[str, Any]) -> dict[str, Any]:
    """Columns (rule, heading) in the policy's order and one row per method: (label, verdict,
    control or None, the cell of each column or None where the rule did not apply)."""
    columns: list[str] = []
    cells: dict[str, dict[str, Cell]] = {}
    for row in results.get("verdicts") or []:
        rule = str(row.get("rule"))
        if rule not in columns:
            columns.append(rule)
        cells.setdefault(str(row.get("method")), {})[rule] = Cell(
            str(row.get("verdict")), _shown(row.get("value")), str(row.get("reason") or ""))
    methods = results.get("method_verdicts") or {}
    rows = [(label, entry.get("verdict"), entry.get("control"), [cells.get(label, {}).get(rule) for rule in columns])
            for label, entry in methods.items()]
    return {"columns": [(rule, short_rule(rule)) for rule in columns], "rows": rows}


def audited_sentence(results: dict[str, Any]) -> str:
    """What was audited, in one sentence, from the scope."""
    scope = results.get("scope") or {}
    audited = [label for label, entry in (results.get("method_verdicts") or {}).items() if not entry.get("control")]
    forget = f"{scope.get('forget_kind', 'a')} forgetting"
    if scope.get("forget_classes"):
        forget += f", classes {', '.join(map(str, scope['forget_classes']))}"
    what = ", ".join(audited) if 0 < len(audited) <= 12 else f"{len(audited)} methods" if audited else "the controls alone"
    return (f"{what}, asked to forget {scope.get('forget_size', '?')} training points ({forget}) of "
            f"{scope.get('dataset', '?')} from the {scope.get('model', '?')} model, each judged on "
            f"{scope.get('models_per_population', '?')} models against as many retrained without those points.")


GLOSSARY = (
    ("Retrain", "a model trained from scratch without the forget set: what perfect unlearning would give. "
                "Every method is judged against a population of them."),
    ("UA, RA, TA", "unlearning accuracy (1 − accuracy on the forget set), accuracy on the retained training "
                   "data, and accuracy on the test set, in percent."),
    ("MIA-Efficacy", "SalUn's metric: the share of the forget set that a support-vector classifier, trained "
                     "to tell retained from test points, calls non-members."),
    ("LiRA", "the likelihood-ratio membership attack (Carlini et al. 2022): each example's confidence on "
             "models with and without it, modelled as two Gaussians; offline uses only models without it."),
    ("RMIA", "the relative membership attack (Zarifzadeh et al. 2024): an example's likelihood against "
             "population examples, on reference models."),
    ("U-LiRA", "LiRA for unlearning (Hayes et al. 2024): an example's confidence on unlearned models against "
               "models retrained without it; AUC 0.5 means the two cannot be told apart."),
    ("AUC", "area under the attack's ROC curve: 0.5 is chance, 1 a perfect attack."),
    ("φ", "the logit-scaled confidence log(p / (1 − p)) of an example's true label, the signal most "
          "attacks and tests compare."),
    ("ε (per example)", "the NeurIPS 2023 unlearning competition's privacy loss of one forget example, read "
                        "from how well a threshold separates its φ on unlearned and retrained models. It is "
                        "capped at 50, which means: no threshold error at all."),
    ("resolution ln(N − 1)", "the largest ε that N models per side can show for one example: with N = 10 "
                             "no example can show more than ln 9 ≈ 2.2, whatever the method did."),
    ("KS", "the Kolmogorov-Smirnov two-sample test, per forget example, of its φ on unlearned against "
           "retrained models."),
    ("Benjamini-Hochberg", "the correction that keeps the expected share of false discoveries among the "
                           "examples called different at α."),
    ("TOST", "two one-sided tests: a metric is 'equivalent' when its difference to retraining lies, with "
             "confidence 1 − α, inside the stated margin; 'not equivalent' when it lies outside; "
             "otherwise undecided."),
    ("ε lower bound", "a differential-privacy ε that the attack's true and false positive rates prove, at "
                      "confidence 1 − α: the leakage is at least this much."),
    ("PASS / FAIL / INCONCLUSIVE", "a rule passes when its number meets the threshold with its uncertainty, "
                                   "fails when it misses it, and cannot decide when the interval straddles "
                                   "the threshold or the models are too few to see a difference."),
)
