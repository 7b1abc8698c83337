"""results.json of a generation audit: the judge's view of every generator's samples, retrain
equivalence on the forgotten class, DiMRA, and the sample grids the report draws."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from audit.data.datasets import AuditData
from audit.results.describe import generation_limitations, generation_tests_run
from audit.results.images import denormalised
from audit.stats.equivalence import metric_tost
from audit.core.errors import SalunInputError
from audit.core.probes import REFERENCE, ProbeContext, ProbeSections, timed_section
from audit.tasks.generation.metrics import class_accuracy, forgotten_class_probability, frechet_distance, softmax, ua_generation
from audit.engine.job import Plan
from audit.engine.observe import StoredObservations
from audit.config.policy import GENERATION_RULES, apply_policy
from audit.config.rule_paths import SUMMARY, TOST, paths
from audit.results.common import document, forget_digest, manifest_of, method_table, probe_verdicts, sizes, summaries
from audit.config.spec import Spec
from audit.engine.store import Store

GENERATION_METRICS = ("UA", "forgotten_probability", "retained_accuracy", "FID")
EQUIVALENCE_METRICS = ("UA", "forgotten_probability", "retained_accuracy")  # fractions: a margin applies
SECTIONS = ("mia", "equivalence", "relearn", "backdoor", "generation")  # results.json's sections, in order


def rule_paths(spec: Spec) -> dict[str, set[str]]:
    """The numbers of this family's own sections a rule can read."""
    equivalence = {"n_models": None, "n_samples_per_model": None, "tost": {name: TOST for name in EQUIVALENCE_METRICS}}
    return {"metrics": paths({name: SUMMARY for name in (*GENERATION_METRICS, "runtime_s")}, "metrics"),
            "equivalence": paths(equivalence, "equivalence")}


def sample_metrics(arrays: dict[str, np.ndarray], forgotten: int, num_classes: int) -> dict[str, float]:
    """One generator's numbers from the judge's outputs on its samples: UA (generation), the
    judge's mean probability of the forgotten class on samples for it, the mean per-class
    accuracy of the other classes' samples, and the Fréchet distance on judge features between
    the other classes' samples and the real test images of those classes."""
    labels, predictions = arrays["labels"], arrays["logits"].argmax(1)
    on_c = labels == forgotten
    kept = [k for k in range(num_classes) if k != forgotten]
    return {
        "UA": ua_generation(predictions[on_c], forgotten)["value"],
        "forgotten_probability": forgotten_class_probability(softmax(arrays["logits"][on_c])[:, forgotten]),
        "retained_accuracy": class_accuracy(predictions, labels, kept)["mean"]["value"],
        "FID": frechet_distance(arrays["real_features"][arrays["real_labels"] != forgotten],
                                arrays["features"][~on_c])["value"],
    }


def _grid(arrays: dict[str, np.ndarray], data: AuditData, per_class: int) -> list:
    """(classes, per_class, C, H, W): each class's first samples."""
    return [denormalised(arrays["images"][arrays["labels"] == k][:per_class], data) for k in range(data.num_classes)]


def build_generation_results(spec: Spec, data: AuditData, plan: Plan, store: Store, device: torch.device,
                             command: str | None = None) -> dict[str, Any]:
    forgotten = data.forget_classes[0]

    def arrays_of(key: str) -> dict[str, np.ndarray] | None:
        samples = plan.samples_of[key]
        return store.arrays(samples) if store.meta(samples).get("status") == "ok" else None

    def values_of(_seed: int, key: str) -> dict[str, float] | None:
        arrays = arrays_of(key)
        return None if arrays is None else sample_metrics(arrays, forgotten, data.num_classes)

    populations = {}
    for name, keys in (("original", plan.originals), ("reference_retrain", plan.retrains)):
        rows = [values_of(seed, key) for seed, key in zip(plan.seeds, keys)]
        if any(row is None for row in rows):
            raise SalunInputError(f"generation: an {name} generator samples non-finite images; "
                                  "try a smaller generation.lr")
        populations[name] = summaries(rows, GENERATION_METRICS)
    n_examples = {"samples_per_class": spec.generation.samples, **sizes(data)}
    metrics, probes, verdicts, equivalence, seconds = {}, [], [], {}, {}
    with timed_section("metrics", seconds):
        for label, keys in plan.unlearned.items():
            metrics[label], probe, rule = method_table(label, keys, values_of, GENERATION_METRICS, plan, store,
                                                       n_examples)
            probes.append(probe)
            verdicts.append(rule)
    with timed_section("equivalence", seconds, "computing the retrain-equivalence tests"):
        for label in plan.unlearned:
            if metrics[label]["UA"]["n"] >= 2 and len(plan.retrains) >= 2:
                equivalence[label] = {
                    "n_models": metrics[label]["UA"]["n"], "n_samples_per_model": spec.generation.samples,
                    "tost": metric_tost(metrics[label], populations["reference_retrain"], EQUIVALENCE_METRICS,
                                        spec.equivalence, "generation", label)}
    found = ProbeSections(ProbeContext(spec, data, plan, store, StoredObservations(store, plan, data)))
    relearn = found.sections["relearn"]
    namespaces = {label: {"equivalence": equivalence.get(label), "metrics": metrics[label], **found.namespace(label)}
                  for label in plan.unlearned}
    methods = {label: section.method for label, section in spec.unlearners.items()}
    decided = apply_policy(spec.policy.rules, namespaces, methods, verdicts, explain=found.why_absent)
    probes += found.entries({"equivalence": [
        {"id": "equivalence", "version": "1", "method": label, "n_models": entry["n_models"], "n_examples": n_examples,
         "stats": {f"tost_{k}": t["decision"] for k, t in entry["tost"].items()}}
        for label, entry in equivalence.items()]}, SECTIONS)
    probe_verdicts(probes, decided["verdicts"])
    scope = {
        "task": "generation", "dataset": data.dataset, "num_classes": data.num_classes, "pool": len(data.pool),
        "test": len(data.test), "forget_kind": spec.forget.kind, "forget_classes": list(data.forget_classes),
        **{f"{k}_size": v for k, v in sizes(data).items()}, "forget_digest": forget_digest(data),
        "models_per_population": len(plan.seeds), "model": f"DDPM ({spec.generation.arch})", "judge": spec.model.arch,
        "methods": list(plan.unlearned), "device": device.type,
    }
    generation = _generation_section(spec, plan, store, data, arrays_of, forgotten)
    manifest = {**manifest_of(spec, data, plan, device), "judge": plan.judge, "command": command}
    sections = found.in_order({"equivalence": equivalence, "generation": generation}, SECTIONS)
    results = document(spec, manifest, scope, populations, metrics, sections, probes, decided, GENERATION_RULES,
                       generation_tests_run(spec, scope, equivalence, relearn),
                       generation_limitations(spec, equivalence, decided["verdicts"], methods))
    return {**results, "wall_time_s": {**seconds, **found.seconds}}


build_generation_results.rule_paths = rule_paths  # type: ignore[attr-defined]  (audit.core.probes.declared_rule_paths)


def _generation_section(spec: Spec, plan: Plan, store: Store, data: AuditData, arrays_of: Any,
                        forgotten: int) -> dict[str, Any]:
    """The judge's own accuracy on real images (from the first original's samples job) and the grids."""
    first = arrays_of(plan.originals[0])
    judged = first["real_logits"].argmax(1) == first["real_labels"]
    on_c = first["real_labels"] == forgotten
    judge = {"arch": spec.model.arch, "test_accuracy": float(judged.mean()), "n_test": len(judged),
             "forgotten_class_accuracy": float(judged[on_c].mean()), "n_forgotten_class": int(on_c.sum())}
    return {
        "forgotten_class": forgotten,
        "samples_per_class": spec.generation.samples,
        "fid_real_images": int((first["real_labels"] != forgotten).sum()),
        "judge": judge,
        "grids": _grids(plan, store, data, arrays_of, spec.generation.grid),
    }


def _grids(plan: Plan, store: Store, data: AuditData, arrays_of: Any, per_class: int) -> dict[str, Any]:
    """Seed 0's samples: every class from the original, the reference retrain and each method,
    and the forgotten class after DiMRA."""
    def grid(key: str) -> list | None:
        arrays = arrays_of(key)
        return None if arrays is None else _grid(arrays, data, per_class)

    def attacked(label: str) -> list | None:
        keys = plan.relearned.get("retain", {}).get(label)
        if not keys or store.meta(keys[0]).get("status") != "ok":
            return None
        return denormalised(store.arrays(keys[0])["images"][:per_class], data)

    pixels = denormalised(data.pool.x.numpy(), data)
    return {
        "seed": plan.seeds[0],
        "pixel_range": [float(np.min(pixels)), float(np.max(pixels))],
        "original": grid(plan.originals[0]),
        "retrain": {"samples": grid(plan.retrains[0]), "attacked": attacked(REFERENCE)},
        "methods": {label: {"samples": grid(keys[0]), "attacked": attacked(label)}
                    for label, keys in plan.unlearned.items()},
    }
