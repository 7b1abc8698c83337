"""What the results of every task family share: summaries over seeds, a method's table, the
probes' verdicts, the manifest and the results.json envelope itself."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from typing import Any, Callable

import torch

from audit import __version__
from audit.config.policy import FAIL, PASS, combine
from audit.config.spec import Spec
from audit.data.datasets import AuditData
from audit.engine.execute import CPU_THREADS_PER_JOB
from audit.engine.job import Plan
from audit.engine.manifest import code_version, environment, plugins_used
from audit.engine.store import Store
from audit.results.document import SCHEMA
from audit.stats.basics import summarize

METRICS_PROBE = ("metrics", "1")
UNBOUNDED = frozenset({"runtime_s", "FID"})  # every other summarised quantity is a fraction


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


def document(spec: Spec, manifest: dict[str, Any], scope: dict[str, Any], populations: dict[str, Any],
             metrics: dict[str, Any], sections: dict[str, Any], probes: list[dict[str, Any]],
             decided: dict[str, Any], default_rules: tuple[str, ...], method: list[Any],
             limitations: list[str]) -> dict[str, Any]:
    """The results.json envelope around one task family's sections (in the order the reports read)."""
    return {
        "schema": SCHEMA,
        "salun_version": __version__,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "manifest": manifest,
        "spec": spec.to_dict(),
        "scope": scope,
        "populations": populations,
        "metrics": metrics,
        **sections,
        "probes": probes,
        "policy": {"rules": list(spec.policy.rules), "default": spec.policy.rules == default_rules},
        "verdicts": decided["verdicts"],
        "method_verdicts": decided["methods"],
        "verdict": decided["verdict"],
        "verdict_reason": decided["verdict_reason"],
        "method": method,
        "limitations": limitations,
    }
