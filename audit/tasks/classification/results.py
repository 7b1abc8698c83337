"""results.json (schema `salun.results/1`): everything a report shows, computed from the store."""

from __future__ import annotations

from typing import Any

import torch

from audit.stats.signals import logit_scaled_confidence
from audit.data.datasets import AuditData
from audit.stats.consistency import consistency_test
from audit.results.describe import limitations, tests_run
from audit.stats.equivalence import NEURIPS2023_VERSION, method_equivalence
from audit.core.errors import SalunInputError
from audit.core.probes import ProbeContext, ProbeSections, timed_section
from audit.tasks.classification.metrics import METRICS, avg_gap, classification_metrics
from audit.engine.observe import StoredObservations
from audit.engine.job import Plan
from audit.config.policy import DEFAULT_RULES, apply_policy
from audit.config.rule_paths import SUMMARY, TOST, Shape, paths
from audit.config.spec import Spec
from audit.tasks.classification.plan import DP_METHOD
from audit.engine.store import Store
from audit.results.common import document, manifest_of, method_table, probe_verdicts, sizes, summaries, forget_digest

SECTIONS = ("mia", "equivalence", "relearn", "backdoor")  # results.json's probe sections, in order
_KS = ("alpha", "fraction_different", "median_statistic", "min_p_value", "n_examples", "n_models")
_PERMUTATION = ("alpha", "fraction_different", "median_abs_effect", "min_p_value", "resamples")
_CONSISTENCY = ("alpha", "fraction_different", "fraction_higher", "fraction_lower", "median_abs_t",
                "n_reference_models", "n_examples")
EQUIVALENCE: Shape = {  # method_equivalence, or a single model's consistency test
    "n_models": None, "n_examples": None, "n_reference_models": None, "resolution": None,
    "high_confidence": dict.fromkeys(("alpha", "delta", "fraction_positive", "max_certifiable", "median", "q90",
                                      "q99", "n_bounding_retrained", "n_bounding_unlearned", "n_per_side_bounding")),
    "neurips2023": {"cap": None, "eps_median": None, "eps_q90": None, "final_score": None, "forget_score": None,
                    "null": {"eps_median": None, "eps_q90": None}},
    "per_example": {"alpha": None, "ks": dict.fromkeys(_KS), "permutation": dict.fromkeys(_PERMUTATION),
                    "consistency": dict.fromkeys(_CONSISTENCY)},
    "tost": {name: TOST for name in METRICS},
}


def rule_paths(spec: Spec) -> dict[str, set[str]]:
    """The numbers of this family's own sections a rule can read."""
    return {"metrics": paths({name: SUMMARY for name in (*METRICS, "avg_gap", "runtime_s")}, "metrics"),
            "equivalence": paths(EQUIVALENCE, "equivalence")}


def _metrics_of(store: Store, plan: Plan, model_key: str, data: AuditData, spec: Spec) -> dict[str, float] | None:
    observation_key = plan.observation_of[model_key]
    if store.meta(observation_key).get("status") != "ok":
        return None
    return classification_metrics(store.arrays(observation_key), data, spec.metrics.mia_feature)


def build_results(spec: Spec, data: AuditData, plan: Plan, store: Store, device: torch.device,
                  command: str | None = None) -> dict[str, Any]:
    originals = [_metrics_of(store, plan, key, data, spec) for key in plan.originals]
    references = [_metrics_of(store, plan, key, data, spec) for key in plan.retrains]
    if any(m is None for m in originals + references):
        raise SalunInputError("train: a trained model outputs non-finite logits; try a smaller train.lr")
    metrics: dict[str, Any] = {}
    probes, verdicts = [], []
    retrained_mean = {name: sum(r[name] for r in references) / len(references) for name in METRICS}

    reference_of_seed = dict(zip(plan.seeds, references))

    def values_of(seed: int, key: str) -> dict[str, float] | None:
        """A method's seed against the retrain of its seed; a subject checkpoint against their mean."""
        values = _metrics_of(store, plan, key, data, spec)
        reference = retrained_mean if spec.subject is not None else reference_of_seed[seed]
        return None if values is None else {**values, "avg_gap": avg_gap(values, reference)}

    seconds: dict[str, float] = {}
    with timed_section("metrics", seconds):
        for label, keys in plan.unlearned.items():
            metrics[label], probe, rule = method_table(label, keys, values_of, (*METRICS, "avg_gap"), plan, store,
                                                       sizes(data))
            probes.append(probe)
            verdicts.append(rule)
    found = ProbeSections(ProbeContext(spec, data, plan, store, StoredObservations(store, plan, data)))
    with timed_section("equivalence", seconds, "computing the retrain-equivalence tests"):
        equivalence = equivalence_results(spec, data, plan, store, metrics, summaries(references, METRICS))
    namespaces = {label: {"equivalence": equivalence.get(label), "metrics": metrics[label], **found.namespace(label)}
                  for label in plan.unlearned}
    methods = {label: section.method for label, section in spec.unlearners.items()}
    methods |= {label: "checkpoint" for label in (spec.subject.unlearned if spec.subject is not None else {})}
    methods |= {entry["method"]: DP_METHOD for entry in getattr(plan, "dp", {}).values() if entry["method"]}
    decided = apply_policy(spec.policy.rules, namespaces, methods, verdicts, explain=found.why_absent)
    probes += found.entries({"equivalence": _equivalence_probes(equivalence)}, SECTIONS)
    probe_verdicts(probes, decided["verdicts"])
    populations = {"original": summaries(originals, METRICS), "reference_retrain": summaries(references, METRICS)}
    scope = {
        "dataset": data.dataset, "num_classes": data.num_classes, "pool": len(data.pool),
        "test": len(data.test), "forget_kind": spec.forget.kind,
        "forget_classes": list(data.forget_classes), **{f"{k}_size": v for k, v in sizes(data).items()},
        "forget_digest": forget_digest(data), "models_per_population": len(plan.seeds),
        "model": spec.model.arch, "methods": list(plan.unlearned), "device": device.type,
    }
    manifest = {**manifest_of(spec, data, plan, device), "command": command,
                **({"subject": _subject_checkpoints(plan, store)} if spec.subject is not None else {})}
    mia = found.sections["mia"]
    results = document(spec, manifest, scope, populations, metrics,
                       found.in_order({"equivalence": equivalence}, SECTIONS), probes, decided, DEFAULT_RULES,
                       tests_run(spec, scope, mia, equivalence), limitations(spec, mia, equivalence,
                                                                             decided["verdicts"], methods))
    return {**results, "wall_time_s": {**seconds, **found.seconds}}


build_results.rule_paths = rule_paths  # type: ignore[attr-defined]  (audit.core.probes.declared_rule_paths)


def paired_by_seed(obs: StoredObservations, keys: list[str], retrains: list[str]) -> tuple[list[str], list[str]]:
    """A method's usable models and the retrains they are compared with: with one model per seed,
    the seeds usable on both sides (a seed that failed on either side leaves both); an outside
    checkpoint against every usable retrain."""
    if len(keys) != len(retrains):
        return obs.usable(keys), obs.usable(retrains)
    usable = set(obs.usable(keys)) | set(obs.usable(retrains))
    pairs = [(u, r) for u, r in zip(keys, retrains) if u in usable and r in usable]
    return [u for u, _ in pairs], [r for _, r in pairs]


def equivalence_results(spec: Spec, data: AuditData, plan: Plan, store: Store, metrics: dict[str, Any],
                        retrained: dict[str, Any]) -> dict[str, Any]:
    """Each method's retrain-equivalence tests: its forget-set φ against the reference retrains'."""
    obs = StoredObservations(store, plan, data)
    reference = obs.usable(plan.retrains)
    retrained_phi = obs.signal(reference, logit_scaled_confidence)[0][:, data.forget]
    out = {}
    for label, keys in plan.unlearned.items():
        keys, paired = paired_by_seed(obs, keys, plan.retrains)
        if len(reference) < 2 or not keys:
            continue  # a population of one has no distribution to compare against
        unlearned_phi = obs.signal(keys, logit_scaled_confidence)[0][:, data.forget]
        if len(keys) == 1:  # one model: is each of its φ a plausible draw from the retrained models'?
            out[label] = {"n_models": 1, "n_reference_models": len(reference), "n_examples": len(data.forget),
                          "per_example": {"consistency": consistency_test(
                              unlearned_phi[0], retrained_phi, spec.equivalence.alpha, data.pool_index[data.forget])}}
            continue
        paired_phi = obs.signal(paired, logit_scaled_confidence)[0][:, data.forget]
        out[label] = method_equivalence(unlearned_phi, paired_phi, metrics[label], retrained, spec, label,
                                        forget_indices=data.pool_index[data.forget])
    return out


def _subject_checkpoints(plan: Plan, store: Store) -> dict[str, Any]:
    """Each outside checkpoint audited: its file and SHA-256."""
    def described(key: str) -> dict[str, Any]:
        params = store.meta(key)["params"]
        return {"path": params["checkpoint"], "sha256": params["sha256"], "store_key": key}

    imported = {label: described(keys[0]) for label, keys in plan.unlearned.items()
                if store.meta(keys[0]).get("kind") == "import"}
    return {"original": described(plan.originals[0]), "unlearned": imported}


def _equivalence_probes(equivalence: dict[str, Any]) -> list[dict[str, Any]]:
    """One retrain-equivalence probe per method, with its headline numbers."""
    probes = []
    for label, entry in equivalence.items():
        if "consistency" in entry["per_example"]:  # a single model against the retrained population
            test = entry["per_example"]["consistency"]
            probes.append({"id": "equivalence", "version": test["version"], "method": label, "n_models": 1,
                           "n_reference_models": entry["n_reference_models"], "n_examples": entry["n_examples"],
                           "stats": {"fraction_different_consistency": test["fraction_different"]}})
            continue
        probes.append({
            "id": "equivalence", "version": NEURIPS2023_VERSION, "method": label,
            "n_models": entry["n_models"], "n_examples": entry["n_examples"], "resolution": entry["resolution"],
            "stats": {"eps_median": entry["neurips2023"]["eps_median"],
                      "forget_score": entry["neurips2023"]["forget_score"],
                      "fraction_different_ks": entry["per_example"]["ks"]["fraction_different"],
                      **{f"tost_{name}": tost["decision"] for name, tost in entry["tost"].items()}},
        })
    return probes
