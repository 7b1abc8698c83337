"""results.json (schema `salun.results/1`): everything a report shows, computed from the store."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from pathlib import Path
from typing import Any, Callable

import torch

from attacks.backdoor_probe import backdoor_results
from attacks.mia.probe import mia_results
from attacks.relearn_probe import relearn_results
from audit.stats.signals import logit_scaled_confidence
from audit import __version__
from audit.nn.checkpoints import regular_file_problem
from audit.data.datasets import AuditData
from audit.stats.consistency import consistency_test
from audit.results.describe import limitations, tests_run
from audit.stats.equivalence import NEURIPS2023_VERSION, method_equivalence
from audit.core.errors import SalunInputError
from audit.engine.execute import CPU_THREADS_PER_JOB
from audit.engine.manifest import code_version, environment, plugins_used
from audit.tasks.classification.metrics import METRICS, avg_gap, classification_metrics
from audit.engine.observe import StoredObservations
from audit.engine.job import Plan
from audit.config.policy import DEFAULT_RULES, FAIL, PASS, apply_policy, combine
from audit.config.spec import Spec
from audit.stats.basics import summarize
from audit.engine.store import Store, write_text_atomic

SCHEMA = "salun.results/1"
METRICS_PROBE = ("metrics", "1")
TIMING_KEYS = frozenset({"created", "runtime_s", "wall_time_s"})
RUN_KEYS = frozenset({"command"})
UNBOUNDED = frozenset({"runtime_s", "FID"})  # every other summarised quantity is a fraction  # how this run was invoked: not a result


def _metrics_of(store: Store, plan: Plan, model_key: str, data: AuditData, spec: Spec) -> dict[str, float] | None:
    observation_key = plan.observation_of[model_key]
    if store.meta(observation_key).get("status") != "ok":
        return None
    return classification_metrics(store.arrays(observation_key), data, spec.metrics.mia_feature)


def summaries(rows: list[dict[str, float]], names: tuple[str, ...]) -> dict[str, Any]:
    """Each named quantity summarised over seeds; fractions keep their interval inside [0, 1]."""
    return {name: summarize([row[name] for row in rows if row[name] is not None],
                            bounds=(0.0, math.inf) if name in UNBOUNDED else (0.0, 1.0))
            for name in names}


def forget_digest(data: AuditData) -> str:
    """SHA-256 of the forget request as dataset indices, one per line, ascending."""
    indices = sorted(int(i) for i in data.pool_index[data.forget])
    return hashlib.sha256("".join(f"{i}\n" for i in indices).encode()).hexdigest()


def sizes(data: AuditData) -> dict[str, int]:
    return {
        "forget": len(data.forget),
        "retain": len(data.retain),
        "test": int(data.eval_test_mask.sum()),
    }


def method_table(label: str, keys: list[str], values_of: Callable[[int, str], dict[str, float] | None],
                 names: tuple[str, ...], plan: Plan, store: Store, n_examples: dict[str, int]) -> tuple[dict, dict, dict]:
    """One method's table of `names` over seeds (plus runtime), its probe entry and its verdict on
    divergence; `values_of(seed, model key)` gives one seed's numbers, None when its model failed."""
    rows, failures = [], []
    for seed, key in zip(plan.seeds, keys):
        values = values_of(seed, key)
        if values is None:
            observed = plan.observation_of.get(key) or plan.samples_of.get(key)
            reason = store.meta(key).get("reason") or (store.meta(observed).get("reason") if observed else None)
            failures.append({"seed": seed, "reason": reason})
            continue
        values["runtime_s"] = store.meta(key).get("runtime_s")  # None: unlearned outside salun
        rows.append(values)
    table = {**summaries(rows, (*names, "runtime_s")), "failures": failures}
    verdict = FAIL if failures else PASS
    probe = {
        "id": METRICS_PROBE[0], "version": METRICS_PROBE[1], "method": label,
        "n_models": len(rows), "n_examples": n_examples,
        "stats": {name: table[name] for name in names},
        "verdict": verdict,
        "why": "; ".join(f"seed {f['seed']}: {f['reason']}" for f in failures) or "finite weights on every seed",
    }
    rule = {
        "method": label, "rule": "unlearning finishes with finite weights on every seed", "probe": "metrics.failures",
        "op": "<=", "threshold": 0, "value": len(failures), "interval": None, "verdict": verdict, "reason": probe["why"],
    }
    return table, probe, rule


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

    for label, keys in plan.unlearned.items():
        metrics[label], probe, rule = method_table(label, keys, values_of, (*METRICS, "avg_gap"), plan, store,
                                                   sizes(data))
        probes.append(probe)
        verdicts.append(rule)
    mia = mia_results(spec, data, plan, store)
    equivalence = equivalence_results(spec, data, plan, store, metrics, summaries(references, METRICS))
    relearn = relearn_results(spec, plan, store)
    backdoor = backdoor_results(spec, plan, StoredObservations(store, plan, data))
    namespaces = {label: {"equivalence": equivalence.get(label), "mia": mia.get("methods", {}).get(label),
                          "metrics": metrics[label], "relearn": relearn.get("methods", {}).get(label),
                          "backdoor": backdoor.get("methods", {}).get(label)}
                  for label in plan.unlearned}
    methods = {label: section.method for label, section in spec.unlearners.items()}
    methods |= {label: "checkpoint" for label in (spec.subject.unlearned if spec.subject is not None else {})}
    decided = apply_policy(spec.policy.rules, namespaces, methods, verdicts)
    probes += _mia_probes(mia) + _equivalence_probes(equivalence)
    probe_verdicts(probes, decided["verdicts"])
    scope = {
        "dataset": data.dataset, "num_classes": data.num_classes, "pool": len(data.pool),
        "test": len(data.test), "forget_kind": spec.forget.kind,
        "forget_classes": list(data.forget_classes), **{f"{k}_size": v for k, v in sizes(data).items()},
        "forget_digest": forget_digest(data), "models_per_population": len(plan.seeds),
        "model": spec.model.arch, "methods": list(plan.unlearned), "device": device.type,
    }
    return {
        "schema": SCHEMA,
        "salun_version": __version__,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "manifest": {**manifest_of(spec, data, plan, device), "command": command,
                     **({"subject": _subject_checkpoints(plan, store)} if spec.subject is not None else {})},
        "spec": spec.to_dict(),
        "scope": scope,
        "populations": {"original": summaries(originals, METRICS), "reference_retrain": summaries(references, METRICS)},
        "metrics": metrics,
        "mia": mia,
        "equivalence": equivalence,
        "relearn": relearn,
        "backdoor": backdoor,
        "probes": probes,
        "policy": {"rules": list(spec.policy.rules), "default": spec.policy.rules == DEFAULT_RULES},
        "verdicts": decided["verdicts"],
        "method_verdicts": decided["methods"],
        "verdict": decided["verdict"],
        "verdict_reason": decided["verdict_reason"],
        "method": tests_run(spec, scope, mia, equivalence),
        "limitations": limitations(spec, mia, equivalence, decided["verdicts"], methods),
    }


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


MIA_HEADLINE = ("auc", "tpr_at_fpr", "balanced_accuracy", "advantage", "epsilon_lower_bound", "mia_efficacy",
                "n_members", "n_forget", "n_nonmembers", "n_target_models", "n_shadow_models")


def _mia_probes(mia: dict[str, Any]) -> list[dict[str, Any]]:
    """One probe per attack and target method; the full curves stay in the `mia` section."""
    probes = []
    targets = [(f"population:{name}", attacks) for name, attacks in mia.get("populations", {}).items()]
    targets += list(mia.get("methods", {}).items())
    for target, attacks in targets:
        for attack, summary in attacks.items():
            probes.append({
                "id": f"mia.{attack}", "version": summary["version"], "method": target,
                "n_models": summary["n_target_models"], "n_shadow_models": summary["n_shadow_models"],
                "n_examples": {"members": summary.get("n_members", summary.get("n_forget")),
                               "nonmembers": summary["n_nonmembers"]},
                "stats": {k: summary[k] for k in MIA_HEADLINE if k in summary},
            })
    return probes


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


def probe_verdicts(probes: list[dict[str, Any]], rows: list[dict[str, Any]]) -> None:
    """Each probe's verdict combines the rules that read it; a probe no rule reads is only reported."""
    for probe in probes:
        if "verdict" in probe:
            continue
        read = [row for row in rows if row["method"] == probe["method"]
                and (row["probe"] + ".").startswith(probe["id"] + ".")]
        probe["verdict"] = combine([row["verdict"] for row in read]) if read else "REPORTED"
        probe["why"] = "; ".join(f"{row['rule']}: {row['verdict']}" for row in read) or "no policy rule reads it"


def manifest_of(spec: Spec, data: AuditData, plan: Plan, device: torch.device) -> dict[str, Any]:
    return {
        "spec_digest": spec.digest(),
        "data_digest": data.digest,
        "split_digest": data.pool_digest,
        "code_version": code_version(),
        "environment": environment(device, CPU_THREADS_PER_JOB),
        "plugins": plugins_used(spec),
        "seeds": plan.seeds,
        "augmentation": spec.train.augmentation,
        "artifacts": {
            "original": plan.originals,
            "reference_retrain": plan.retrains,
            "unlearned": plan.unlearned,
            "shadow": plan.shadows,
            "shadow_unlearned": plan.shadow_unlearned,
            "observation_of": plan.observation_of,
        },
    }


def dumps(results: dict[str, Any]) -> str:
    return json.dumps(results, indent=2, allow_nan=False) + "\n"


def write_results(results: dict[str, Any], path: Path) -> None:
    write_text_atomic(path, dumps(results))


MAX_RESULTS_BYTES = 256 << 20  # a large audit writes a few MB; past this, reading it could exhaust memory
REQUIRED_SECTIONS = {"spec": dict, "scope": dict, "manifest": dict, "populations": dict, "metrics": dict,
                     "verdicts": list, "method_verdicts": dict, "verdict": str}  # what every report reads


def _results_text(path: Path) -> str:
    problem = regular_file_problem(path)
    if problem is not None:
        raise SalunInputError(f"results file {path} {problem}" if problem != "not found"
                              else f"results file not found: {path}")
    size = path.stat().st_size
    if size > MAX_RESULTS_BYTES:
        raise SalunInputError(f"{path}: not a results.json file ({size >> 20} MiB; salun reads at most "
                              f"{MAX_RESULTS_BYTES >> 20} MiB)")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise SalunInputError(f"{path}: not a results.json file (not UTF-8 text: {error.reason} at byte "
                              f"{error.start})") from None
    except OSError as error:
        raise SalunInputError(f"results file {path} cannot be read ({error.strerror or error})") from None


def check_results(results: Any, path: Path) -> dict[str, Any]:
    """`results` if it is a results.json object of this schema with every section a report reads."""
    if not isinstance(results, dict):
        raise SalunInputError(f"{path}: not a results.json file (its JSON is a {type(results).__name__}, "
                              "not an object)")
    if results.get("schema") != SCHEMA:
        raise SalunInputError(f"{path}: expected schema {SCHEMA}, found {results.get('schema')!r}")
    for name, kind in REQUIRED_SECTIONS.items():
        if name not in results:
            raise SalunInputError(f"{path}: results.json lacks its '{name}' section; rerun the audit")
        if not isinstance(results[name], kind):
            raise SalunInputError(f"{path}: results.json's '{name}' is a {type(results[name]).__name__}, "
                                  f"not {'an object' if kind is dict else 'a ' + kind.__name__}")
    return results


def load_results(path: Path) -> dict[str, Any]:
    """A results.json file, checked to hold what the reports and `salun verify` read."""
    path = Path(path)
    text = _results_text(path)
    try:
        results = json.loads(text)
    except RecursionError:
        raise SalunInputError(f"{path}: not a results.json file (its JSON is nested too deeply)") from None
    except ValueError as error:  # JSONDecodeError, and integers too long to convert
        raise SalunInputError(f"{path}: not a results.json file ({error})") from None
    return check_results(results, path)


def without_timings(value: Any) -> Any:
    """The results without wall-clock timings, timestamps and the invoking command, for comparing two runs."""
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if k not in TIMING_KEYS | RUN_KEYS}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value
