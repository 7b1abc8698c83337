"""Reproduce an audit: rerun the spec a results.json records, from scratch, and compare the numbers.

The rerun trains every model again in a fresh temporary store (unless a store is given) on the
device the original ran on. On the CPU every job runs on one thread, so the rerun must be
bit-identical; on a GPU, nondeterministic kernels (atomic adds in cuDNN/cuBLAS reductions) move
the last digits, and the comparison allows GPU_RTOL and GPU_ATOL.

Left out of the comparison, because they differ between two honest runs:
- wall-clock keys anywhere ("created", "runtime_s", "wall_time_s": audit.results.document.TIMING_KEYS), among
  them the seconds each section of results.json took to build (its top-level `wall_time_s`);
- manifest.command and manifest.executor (how the run was started and where its jobs ran, not what
  it computed: every executor computes the same artifacts);
- manifest.environment keys that describe the machine rather than the computation
  (MACHINE_KEYS: python, torch, numpy and CUDA versions, platform, GPU model); "device" and
  "cpu_threads_per_job" stay, since they decide the arithmetic;
- spec.audit.store and spec.audit.reports, the fields verify replaces (a fresh store; no
  reports, since only results.json is compared), and the [audit] fields of where the jobs run
  (EXECUTION_FIELDS), which the rerun may choose afresh.

The rerun uses the recorded spec's executor unless one is named; with the fresh store, its workers
never write into a recorded audit.ray_store.

With --store, every artifact of that store is first checked against its digests: the rerun
recomputes the damaged ones, and verify names them and fails even if the numbers then agree,
since the store it was pointed at did not hold what the audit computed.
"""

from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path
from typing import Any

import torch

from audit.core.errors import SalunInputError
from audit.pipeline import run_audit
from audit.results.document import load_results, without_timings
from audit.config.sections import EXECUTION_FIELDS
from audit.config.spec import spec_from_dict
from audit.engine.options import ExecutorChoice
from audit.engine.store import OBJECTS, CorruptArtifact
from audit.engine.store_maintenance import check_store

GPU_RTOL = 1e-4  # what GPU nondeterminism allows: reduction order changes float32 rounding
GPU_ATOL = 1e-6
MISSING = "<missing>"
MACHINE_KEYS = frozenset({"python", "torch", "numpy", "platform", "gpu", "cuda"})


def _comparable(results: dict[str, Any]) -> dict[str, Any]:
    """The results without what two honest runs may differ in (see the module docstring)."""
    out = without_timings(results)  # a fresh copy of every dict and list
    out.get("manifest", {}).pop("executor", None)
    environment = out.get("manifest", {}).get("environment")
    if isinstance(environment, dict):
        for key in MACHINE_KEYS:
            environment.pop(key, None)
    audit = out.get("spec", {}).get("audit")
    if isinstance(audit, dict):
        for key in ("store", "reports", *EXECUTION_FIELDS):
            audit.pop(key, None)
    return out


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _walk(expected: Any, actual: Any, path: str, rtol: float, atol: float, out: list[dict]) -> None:
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key in list(expected) + [k for k in actual if k not in expected]:
            child = f"{path}.{key}" if path else str(key)
            _walk(expected.get(key, MISSING), actual.get(key, MISSING), child, rtol, atol, out)
    elif isinstance(expected, list) and isinstance(actual, list):
        for i in range(max(len(expected), len(actual))):
            _walk(expected[i] if i < len(expected) else MISSING, actual[i] if i < len(actual) else MISSING,
                  f"{path}[{i}]", rtol, atol, out)
    elif _is_number(expected) and _is_number(actual) and (rtol or atol):
        if abs(actual - expected) > atol + rtol * abs(expected):
            out.append({"path": path, "expected": expected, "actual": actual})
    elif expected != actual:
        out.append({"path": path, "expected": expected, "actual": actual})


def compare(expected: dict, actual: dict, rtol: float = 0.0, atol: float = 0.0) -> list[dict]:
    """Every difference between two results, as {"path", "expected", "actual"}, in document order.

    Numbers agree when |actual - expected| <= atol + rtol * |expected|; with both zero they must be
    equal (==). A key or list element on one side only is reported with "<missing>" on the other.
    """
    differences: list[dict] = []
    _walk(_comparable(expected), _comparable(actual), "", rtol, atol, differences)
    return differences


def damaged_artifacts(store: str | None) -> list[dict[str, str]]:
    """Each artifact of an existing store that fails its digests, as {"key", "label", "problem"}."""
    if store is None or not (Path(store) / OBJECTS).is_dir():
        return []
    return [{"key": finding.key, "label": finding.label, "problem": finding.problem}
            for finding in check_store(store).damaged]


def verify(results_path: Path, store: str | None = None, executor: ExecutorChoice = ExecutorChoice(),
           show_progress: bool = False) -> dict[str, Any]:
    """Rerun the audit `results_path` records and compare its results with the recorded ones.

    "verified" holds when every number reproduced ("identical") and no artifact of `store` was
    damaged ("damaged" names them)."""
    results = load_results(results_path)
    device = results.get("manifest", {}).get("environment", {}).get("device")
    if device not in ("cpu", "cuda"):
        raise SalunInputError(f"{results_path}: manifest.environment.device is {device!r}, expected cpu or cuda")
    if device == "cuda" and not torch.cuda.is_available():
        raise SalunInputError(f"{results_path}: the audit ran on cuda, but PyTorch sees no GPU here to rerun it on")
    raw = results.get("spec")
    if not isinstance(raw, dict):
        raise SalunInputError(f"{results_path}: holds no spec to rerun")
    rtol, atol = (0.0, 0.0) if device == "cpu" else (GPU_RTOL, GPU_ATOL)
    damaged = damaged_artifacts(store)
    try:
        rerun = _rerun(copy.deepcopy(raw), results_path, store, device, executor, show_progress)
    except CorruptArtifact as error:  # damaged while the rerun read it
        rerun = None
        if error.key not in {artifact["key"] for artifact in damaged}:
            damaged.append({"key": error.key, "label": error.label, "problem": error.problem})
    differences = [] if rerun is None else compare(results, rerun, rtol, atol)
    identical = rerun is not None and not differences
    return {"verified": identical and not damaged, "identical": identical, "differences": differences,
            "damaged": damaged, "tolerance": {"rtol": rtol, "atol": atol}, "device": device}


def _rerun(raw: dict[str, Any], results_path: Path, store: str | None, device: str, executor: ExecutorChoice,
           show_progress: bool) -> dict[str, Any]:
    """The results of the recorded spec run again, in `store` or a fresh temporary one."""
    with tempfile.TemporaryDirectory(prefix="salun-verify-") as scratch:
        raw.setdefault("audit", {})["store"] = store if store is not None else str(Path(scratch) / "store")
        raw["audit"]["reports"] = []  # the comparison reads results.json only
        raw["audit"].pop("ray_store", None)
        try:
            spec = spec_from_dict(raw)  # relative data paths resolve from the working folder
        except SalunInputError as error:
            raise SalunInputError(f"{results_path}: the recorded spec is not valid: {error}") from None
        return run_audit(spec, Path(scratch) / "out", device=device, executor=executor, show_progress=show_progress)


def _show(value: Any, width: int = 80) -> str:
    text = value if value == MISSING else json.dumps(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def format_differences(differences: list[dict], limit: int = 20) -> list[str]:
    """One line per difference, "path: expected X, got Y", the first `limit` of them."""
    lines = [f"{d['path']}: expected {_show(d['expected'])}, got {_show(d['actual'])}" for d in differences[:limit]]
    if len(differences) > limit:
        lines.append(f"... and {len(differences) - limit} more")
    return lines
