"""The relearning section of results.json: each method's attacked curves against the
reference retrains' under the identical attack, with the recovery statistics."""

from __future__ import annotations

from typing import Any

import numpy as np

from attacks import relearn_stats
from attacks.relearn import VERSION, checkpoint_steps
from audit.config.rule_paths import SUMMARY, Shape, paths
from audit.core.probes import REFERENCE, ProbeContext, SectionProbe
from audit.core.registry import PROBES
from audit.engine.job import Plan
from audit.config.spec import Spec
from audit.stats.basics import summarize
from audit.engine.store import Store

CURVES = {  # per task: the measure recovery is computed on, then the curves reported beside it
    "classification": ("forget_accuracy", "forget_phi", "test_accuracy"),
    "generation": ("forgotten_rate",),  # DiMRA: the judge's share of the forgotten class in the samples
}

RETAIN: Shape = {  # relearn_stats.recovery_curves, on the first of CURVES
    "n_models": None, "recovery": {"value": None, "n": None, "budget": None}, "gain": {"value": None},
    "above": {"mean_gap": SUMMARY, "p_t": None, "p_wilcoxon": None, "alpha": None, "above": None},
}
_STEPS = {**SUMMARY, "censored": None}
FEW_SHOT: Shape = {"few_shot": {"decision": None, "median_ratio": None, "max_steps": None, "unlearned": _STEPS,
                                "retrained": _STEPS, "faster": {"p": None, "faster": None, "alpha": None}}}


def _bounds(curve: str) -> tuple[float, float] | None:
    """Accuracies and rates are fractions; φ is not."""
    return None if curve == "forget_phi" else (0.0, 1.0)


def _outcomes(store: Store, keys: list[str]) -> list[dict[str, Any] | None]:
    return [meta if (meta := store.meta(key)).get("status") == "ok" else None for key in keys]


def _retain_attack(reference: list, attacked: list, steps: list[int], alpha: float,
                   curves: tuple[str, ...]) -> dict[str, Any]:
    if len(attacked) == 1:  # one model, unlearned outside salun: against every reference in turn
        attacked = attacked * len(reference)
    pairs = [(u["curve"], r["curve"]) for u, r in zip(attacked, reference) if u and r]
    if not pairs:
        return {"n_models": 0, "reason": "no seed with both an attacked and a reference model"}
    u = np.array([p[0][curves[0]] for p in pairs])
    r = np.array([p[1][curves[0]] for p in pairs])
    out = relearn_stats.recovery_curves(u, r, steps, alpha)
    out["n_models"] = len(pairs)
    for name in curves[1:]:
        out[name] = [summarize([p[0][name][c] for p in pairs], bounds=_bounds(name)) for c in range(len(steps))]
    return out


def relearn_results(spec: Spec, plan: Plan, store: Store) -> dict[str, Any]:
    """Empty when no relearning attack ran."""
    if not plan.relearned:
        return {}
    settings = spec.relearn
    steps = checkpoint_steps(settings.steps, settings.checkpoints)
    curves = CURVES[spec.task.kind]
    out: dict[str, Any] = {"version": VERSION, "settings": settings.model_dump(mode="json"), "steps": steps,
                           "measure": curves[0],
                           "reference": {}, "methods": {label: {} for label in plan.unlearned}}
    alpha = spec.equivalence.alpha
    for attack, targets in plan.relearned.items():
        reference = _outcomes(store, targets[REFERENCE])
        if attack == "retain":
            out["reference"]["retain"] = {name: [summarize([r["curve"][name][c] for r in reference if r], bounds=_bounds(name))
                                                 for c in range(len(steps))] for name in curves}
        for label in plan.unlearned:
            attacked = _outcomes(store, targets[label])
            if attack == "retain":
                out["methods"][label].update(_retain_attack(reference, attacked, steps, alpha, curves))
            else:
                few_shot = relearn_stats.relearn_time(
                    [a["steps_to_recover"] for a in attacked if a], [r["steps_to_recover"] for r in reference if r],
                    settings.max_steps, alpha)
                faster = few_shot["faster"]
                # the policy reads `relearn.few_shot == "not faster"`
                out["methods"][label]["few_shot"] = {**few_shot, "why": faster["why"],
                                                     "decision": "faster" if faster["faster"] else "not faster"}
    return out


@PROBES.register("relearn")
class Relearning(SectionProbe):
    """Relearning attacks: each method's models and the reference retrains fine-tuned identically."""

    name = "relearn"

    def enabled(self, spec: Spec) -> bool:
        return bool(spec.relearn.run)

    def section(self, context: ProbeContext) -> dict[str, Any]:
        return relearn_results(context.spec, context.plan, context.store)

    def rule_paths(self, spec: Spec) -> set[str]:
        """Both attacks' numbers, run or not (a rule on one not run says what to add); no few-shot
        attack on generators."""
        return paths({**RETAIN, **(FEW_SHOT if spec.task.kind == "classification" else {})}, "relearn")

    def why_absent(self, spec: Spec, path: tuple[str, ...]) -> str | None:
        attack = "few_shot" if path[1] == "few_shot" else "retain"
        if attack not in spec.relearn.run:
            return f"the {attack} relearning attack was not run; add {attack!r} to relearn.run"
        return None
