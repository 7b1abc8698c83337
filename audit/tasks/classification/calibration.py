"""The policy's calibration and power, measured on populations whose answer is known.

One audit trains a pool of independently retrained models (the reference retrains and the
retrain control, `pool` of each, seeds independent), and `pool` models of each method of
known leakage: the identity (the originals), retrains that kept half or a quarter of the
forget set (`partial_retrain`), and SalUn. Each draw then runs every probe and every rule
of the policy, exactly as an audit does (`build_results` on a plan of the drawn models):

- a null draw: two disjoint populations of N retrained models, one as the reference
  retrains, one as the method; every FAIL is a false alarm and every positive ε lower
  bound a false positive;
- a power draw: N reference retrains against N models of each method; a FAIL is a catch.

The shadow models, the data split and the forget set are fixed across draws, and draws of
N from a pool of `pool` share models, so draws are not independent: the binomial intervals
beside each rate treat them as if they were, and are narrower than the truth.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from audit.data.datasets import AuditData
from audit.engine.job import Plan
from audit.config.policy import FAIL, combine
from audit.config.spec import Spec, spec_from_dict
from audit.stats.basics import clopper_pearson

NULL = "retrain"  # the method label of a null draw: its models are retrains, its shadows retrained too
POWER_METHODS = {
    "identity": {"method": "identity"},
    "partial_50": {"method": "partial_retrain", "kept": 0.5},
    "partial_25": {"method": "partial_retrain", "kept": 0.25},
    "salun": {"method": "salun"},
}


def calibration_spec(base: Spec, pool: int, bootstrap: int, rules: tuple[str, ...], store: str) -> Spec:
    """`base` with `pool` seeds, the retrain control and the power methods, no relearning or
    backdoor, and `rules` as its policy."""
    config = base.to_dict()
    config["audit"].update(seeds=pool, reports=[], store=store)
    config["attacks"]["bootstrap"] = bootstrap
    # the SVC attack yields MIA-Efficacy, which the metrics compute anyway, and no bound
    config["attacks"]["run"] = [attack for attack in config["attacks"]["run"] if attack != "svc"]
    config["relearn"]["run"] = []
    config["backdoor"]["fraction"] = 0.0
    config["policy"]["rules"] = list(rules)
    config["unlearners"] = {NULL: {"method": "retrain"}, **POWER_METHODS}
    return spec_from_dict(config, base_dir=base._base_dir)


def _sub_plan(plan: Plan, reference: list[str], unlearned: dict[str, list[str]]) -> Plan:
    return replace(plan, jobs=[], originals=[], retrains=reference, unlearned=unlearned,
                   seeds=list(range(len(reference))),
                   shadow_unlearned={label: plan.shadow_unlearned[label] for label in unlearned
                                     if label in plan.shadow_unlearned},
                   relearned={})


def draw(kind: str, n: int, rng: np.random.Generator, plan: Plan) -> tuple[list[str], dict[str, list[str]]]:
    """(reference retrains, {label: models}) of one draw of N per side."""
    retrained = plan.retrains + plan.unlearned[NULL]
    order = rng.permutation(len(retrained))
    reference = [retrained[i] for i in order[:n]]
    if kind == "null":
        return reference, {NULL: [retrained[i] for i in order[n:2 * n]]}
    return reference, {label: [plan.unlearned[label][i] for i in rng.permutation(len(plan.unlearned[label]))[:n]]
                       for label in POWER_METHODS}


def outcomes(spec: Spec, data: AuditData, plan: Plan, store: Any, device: Any, reference: list[str],
             unlearned: dict[str, list[str]]) -> dict[str, Any]:
    """Per method: each rule's verdict, the verdict of `default` rules combined, and whether each
    ε lower bound is positive; the reference retrains' own bounds under `reference_retrain`."""
    from audit.tasks.classification.results import build_results  # the whole audit's scoring, as an audit runs it

    results = build_results(spec, data, _sub_plan(plan, reference, unlearned), store, device)
    out: dict[str, Any] = {}
    for label in unlearned:
        rows = [row for row in results["verdicts"] if row["method"] == label and row["probe"] != "metrics.failures"]
        out[label] = {"rules": {row["rule"]: row["verdict"] for row in rows}, "bounds": _bounds(results, label)}
    out["reference_retrain"] = {"bounds": {f"mia.{name}": summary["epsilon_lower_bound"]["value"] > 0
                                           for name, summary in results["mia"]["populations"]["reference_retrain"].items()
                                           if "epsilon_lower_bound" in summary}}
    return out


def _bounds(results: dict[str, Any], label: str) -> dict[str, float]:
    """Each ε lower bound of a method: 1.0 when positive (0.0 when not); the per-example
    high-confidence bound as the share of forget examples with a positive bound."""
    bounds = {f"mia.{name}": float(summary["epsilon_lower_bound"]["value"] > 0)
              for name, summary in results["mia"]["methods"].get(label, {}).items() if "epsilon_lower_bound" in summary}
    high = results["equivalence"].get(label, {}).get("high_confidence")
    if high is not None:
        bounds["equivalence.high_confidence (share of examples)"] = high["fraction_positive"]
    return bounds


def rate(values: list[float]) -> dict[str, Any]:
    """Mean of 0/1 outcomes with its 95 % Clopper-Pearson interval (shares: the plain mean)."""
    values = np.asarray(values, dtype=np.float64)
    k = int(round(values.sum())) if np.all((values == 0) | (values == 1)) else None
    low, high = clopper_pearson(k, len(values)) if k is not None else (None, None)
    return {"rate": float(values.mean()), "ci95": None if k is None else [float(low), float(high)], "draws": len(values)}


def method_fails(rules: dict[str, str], default: tuple[str, ...]) -> bool:
    return combine([rules[rule] for rule in default if rule in rules]) == FAIL
