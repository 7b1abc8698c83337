"""The backdoor section of results.json: Athena's test of deletion for every method.

Each model answers the same n triggered queries; a success is a prediction of the target
class. The base rate q is the Clopper-Pearson upper bound of the reference retrains' success
rate (models that never saw the trigger; the bound keeps a retrain from being called "not
deleted" by the noise of its estimate), the backdoor rate p the originals' rate. A method's
successes are pooled over its models and tested against Bin(N·n, q) at α.
"""

from __future__ import annotations

from typing import Any

from attacks.backdoor import athena_test
from audit.config.rule_paths import paths
from audit.core.probes import ProbeContext, SectionProbe
from audit.core.registry import PROBES
from audit.engine.observe import StoredObservations
from audit.engine.job import Plan
from audit.stats.basics import clopper_pearson_upper

VERSION = "1"
# a method's entry: athena_test (attacks.backdoor) and its verdict
NUMBERS = ("verdict", "decision", "alpha", "backdoor_rate", "base_rate", "p_value", "power", "queries", "rejected",
           "successes", "threshold")


def _successes(observations: StoredObservations, keys: list[str], target: int) -> list[int]:
    return [int((observations.arrays(key)["backdoor_logits"].argmax(1) == target).sum())
            for key in observations.usable(keys)]


def _queries(observations: StoredObservations, keys: list[str]) -> int:
    """Queries per model: settings.queries, or fewer when the test set holds fewer candidates."""
    return len(observations.arrays(observations.usable(keys)[0])["backdoor_logits"])


def backdoor_results(spec: Any, plan: Plan, observations: StoredObservations) -> dict[str, Any]:
    """Empty when no trigger was planted."""
    settings = spec.backdoor
    if not settings.enabled:
        return {}
    n = _queries(observations, plan.retrains)
    reference = _successes(observations, plan.retrains, settings.target)
    originals = _successes(observations, plan.originals, settings.target)
    q = float(clopper_pearson_upper(sum(reference), n * len(reference), settings.alpha))
    p = sum(originals) / (n * len(originals))
    out: dict[str, Any] = {
        "version": VERSION, "settings": settings.model_dump(mode="json"), "queries_per_model": n,
        "base_rate": {"estimate": sum(reference) / (n * len(reference)), "upper": q, "models": len(reference)},
        "backdoor_rate": {"estimate": p, "models": len(originals)}, "methods": {},
    }
    for label, keys in plan.unlearned.items():
        hits = _successes(observations, keys, settings.target)
        if not hits:
            continue
        test = athena_test(sum(hits), n * len(hits), min(q, 1 - 1e-12), max(p, 1e-12), settings.alpha)
        out["methods"][label] = {**test, "verdict": test["decision"], "per_seed_rate": [h / n for h in hits]}
    return out


@PROBES.register("backdoor")
class Backdoor(SectionProbe):
    """Athena's test of deletion: triggered queries to every model, when a trigger was planted."""

    name = "backdoor"

    def enabled(self, spec: Any) -> bool:
        return spec.backdoor.enabled

    def section(self, context: ProbeContext) -> dict[str, Any]:
        return backdoor_results(context.spec, context.plan, context.observations)

    def rule_paths(self, spec: Any) -> set[str]:
        return paths(dict.fromkeys(NUMBERS), "backdoor")
