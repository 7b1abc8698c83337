"""The dp section of results.json: each population's accountant ε against its audited ε.

Populations: the audit's originals (DP when [train.dp] sets one noise level or a target ε, plain
beside a sweep) and one population of DP originals per sweep level. For each: the accountant's ε
at δ as opacus reports it for every model, the audited lower bounds (attacks/dp_audit.py) and the
gap, accountant ε − the largest audited bound, which an honest accountant keeps ≥ 0. The policy
reads `dp.epsilon_gap`, the smallest gap of the audit's DP populations, the same for every method:
a gap below 0 means the privacy accounting or the training is wrong.
"""

from __future__ import annotations

from typing import Any

from attacks import dp_audit
from audit.core.probes import ProbeContext, SectionProbe
from audit.core.registry import PROBES
from audit.stats.basics import summarize

VERSION = "1"


def _accountant(store: Any, keys: list[str]) -> dict[str, Any] | None:
    """The accountant's ε of each model and what it was computed from (None: trained without DP)."""
    records = [store.meta(key).get("privacy") for key in keys]
    if not records or any(r is None for r in records):
        return None
    first = records[0]
    return {"value": max(r["epsilon"] for r in records), "per_model": [r["epsilon"] for r in records],
            **{name: first[name] for name in ("delta", "accountant", "opacus", "sampling", "noise_multiplier",
                                              "sample_rate", "steps", "expected_batch_size", "max_grad_norm")}}


def _test_accuracy(obs: Any, keys: list[str], data: Any) -> dict[str, Any]:
    mask = data.eval_test_mask
    return summarize([float((obs.arrays(k)["test_logits"][mask].argmax(1) == obs.y_test[mask]).mean()) for k in keys],
                     bounds=(0.0, 1.0))


def _gap(accountant: dict | None, canary_accountant: dict | None, audited: dict[str, Any]) -> dict[str, Any] | None:
    """Accountant ε − the largest bound, each bound against the ε of the models it came from."""
    gaps = [(accountant["value"] - b["value"], name) for name, b in audited.items()
            if name != "one_run" and accountant is not None]
    if "one_run" in audited and canary_accountant is not None:
        gaps.append((canary_accountant["value"] - audited["one_run"]["value"], "one_run"))
    if not gaps:
        return None
    value, attack = min(gaps)
    return {"value": float(value), "attack": attack}


def _population(context: ProbeContext, label: str, entry: dict[str, Any], shadows: Any, alpha: float) -> dict:
    spec, data, obs, store = context.spec, context.data, context.observations, context.store
    dp = spec.train.dp
    keys, canaries = obs.usable(entry["models"]), obs.usable(entry["canary_models"])
    audited = dp_audit.membership_bounds(obs, keys, data, shadows, alpha, dp.delta, label) if keys else {}
    if canaries and len(canaries) == len(entry["canary_models"]):
        audited["one_run"] = dp_audit.one_run(obs, canaries, list(range(len(canaries))), data, dp.canaries,
                                              spec.data.seed, shadows, alpha, dp.delta)
    accountant = _accountant(store, entry["models"]) if keys else None
    largest = max(audited.items(), key=lambda item: item[1]["value"], default=(None, {"value": None}))
    return {"noise_multiplier": entry["noise_multiplier"], "private": entry["dp"] is not None,
            "n_models": len(keys), "n_canary_models": len(canaries), "accountant_epsilon": accountant,
            "audited_epsilon": audited, "largest_audited": {"value": largest[1]["value"], "attack": largest[0]},
            "epsilon_gap": _gap(accountant, _accountant(store, entry["canary_models"]), audited),
            "test_accuracy": _test_accuracy(obs, keys, data) if keys else None}


def _bounds_per_population(context: ProbeContext) -> int:
    shadows = 2 if context.plan.shadows else 1
    return shadows + (1 if context.spec.train.dp.canaries else 0)


def dp_results(context: ProbeContext) -> dict[str, Any]:
    spec, plan = context.spec, context.plan
    private = [label for label, entry in plan.dp.items() if entry["dp"] is not None]
    alpha = spec.attacks.alpha / (_bounds_per_population(context) * max(len(private), 1))
    shadows = dp_audit.shadows_of(spec, context.data, plan, context.observations) if plan.shadows else None
    populations = {label: _population(context, label, entry, shadows, alpha) for label, entry in plan.dp.items()}
    gaps = [(p["epsilon_gap"]["value"], label) for label, p in populations.items()
            if p["private"] and p["epsilon_gap"] is not None]
    value, where = min(gaps) if gaps else (None, None)
    gap = {"value": value, "population": where, "confidence": 1 - spec.attacks.alpha,
           "why": "an honest lower bound never exceeds the true ε: below 0, the privacy accounting or the training "
                  "is wrong"}
    opacus = next((p["accountant_epsilon"]["opacus"] for p in populations.values() if p["accountant_epsilon"]), None)
    return {"version": VERSION, "settings": spec.train.dp.model_dump(mode="json"), "opacus": opacus,
            "alpha": spec.attacks.alpha,
            "alpha_per_bound": alpha, "populations": populations, "epsilon_gap": gap,
            "methods": {label: {"epsilon_gap": gap} for label in plan.unlearned}}


@PROBES.register("dp")
class DifferentialPrivacy(SectionProbe):
    """The accountant's ε of DP-trained models against the ε lower bounds an audit of them certifies."""

    name = "dp"

    def enabled(self, spec: Any) -> bool:
        return getattr(getattr(spec, "train", None), "dp", None) is not None and spec.task.kind == "classification"

    def section(self, context: ProbeContext) -> dict[str, Any]:
        return dp_results(context)

    def rule_paths(self, spec: Any) -> set[str]:
        return {"dp.epsilon_gap"}

    def probe_entries(self, section: dict[str, Any]) -> list[dict[str, Any]]:
        """One probe per population (reported) and one per method: the audit's smallest gap, which
        the policy reads for every method."""
        probes = []
        for label, population in section.get("populations", {}).items():
            accountant, gap = population["accountant_epsilon"], population["epsilon_gap"]
            probes.append({"id": "dp", "version": section["version"], "method": f"population:{label}",
                           "n_models": population["n_models"], "n_canary_models": population["n_canary_models"],
                           "stats": {"accountant_epsilon": accountant["value"] if accountant else None,
                                     "largest_audited_epsilon": population["largest_audited"]["value"],
                                     "epsilon_gap": gap["value"] if gap else None}})
        gap = section.get("epsilon_gap", {})
        probes += [{"id": "dp", "version": section["version"], "method": label,
                    "stats": {"epsilon_gap": gap.get("value"), "population": gap.get("population")}}
                   for label in section.get("methods", {})]
        return probes

    def why_absent(self, spec: Any, path: tuple[str, ...]) -> str | None:
        if not self.enabled(spec):
            return "no differential privacy audit: [train.dp] is not set"
        return "no population trained with DP has both an accountant's ε and an audited bound"
