"""What makes a run reproducible: digests of the spec, data and code, versions, plugins, keys."""

from __future__ import annotations

import functools
import hashlib
import platform
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from audit import __version__
from audit.core.registry import (ATTACKS, DATASETS, EXECUTORS, GENERATION_UNLEARNERS, MODELS, Origin, Registry,
                                 UNLEARNERS)
from audit.config.sections import ATTACK_NAMES
from audit.engine.code_digest import PACKAGES, SALUN_ROOT
from audit.engine.options import ExecutorOptions


@functools.lru_cache(maxsize=1)
def source_digest() -> str:
    """SHA-256 over the source files of the packages that compute results (reports excluded): the
    whole checkout's version, for the manifest (job keys cover only each job's own code)."""
    hasher = hashlib.sha256()
    for package in PACKAGES:
        for path in sorted((SALUN_ROOT / package).rglob("*.py")):
            hasher.update(str(path.relative_to(SALUN_ROOT)).encode())
            hasher.update(path.read_bytes())
    return hasher.hexdigest()


@functools.lru_cache(maxsize=None)
def _file_digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def third_party_code(origin: Origin, obj: Any) -> dict[str, Any] | None:
    """A plugin's code version when it does not come with salun: its distribution and
    `file_sha256`, the SHA-256 of the source file of the module that defines it (for salun's own
    plugins, None)."""
    if origin.distribution == "salun":
        return None
    module = sys.modules.get(getattr(obj, "__module__", ""), None)
    file = getattr(module, "__file__", None)
    return {**origin.as_dict(), "file_sha256": _file_digest(file) if file else None}


def code_version() -> dict[str, str]:
    return {"salun": __version__, "source_sha256": source_digest()}


def environment(device: torch.device, cpu_threads_per_job: int) -> dict[str, Any]:
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(terse=True),
        "device": device.type,
    }
    if device.type == "cpu":
        env["cpu_threads_per_job"] = cpu_threads_per_job
    else:
        env["gpu"] = torch.cuda.get_device_name(device)
        env["cuda"] = str(torch.version.cuda)
    return env


def plugin_record(registry: Registry, name: str) -> dict[str, Any]:
    """Where a plugin came from; for a third-party one also the digest of its source file."""
    origin = registry.origin(name)
    return third_party_code(origin, registry.get(name)) or origin.as_dict()


def plugins_used(spec) -> list[dict[str, Any]]:
    used = [("dataset", DATASETS, spec.data.dataset), ("model", MODELS, spec.model.arch)]
    methods = GENERATION_UNLEARNERS if spec.task.kind == "generation" else UNLEARNERS
    used += [("unlearner", methods, u.method) for u in spec.unlearners.values()]
    used += [("attack", ATTACKS, name) for name in spec.attacks.run if name not in ATTACK_NAMES]  # built-ins: salun's
    seen, rows = set(), []
    for kind, registry, name in used:
        if (kind, name) not in seen:
            seen.add((kind, name))
            rows.append({"kind": kind, "name": name, **plugin_record(registry, name)})
    return rows


def executor_used(options: ExecutorOptions, device: torch.device) -> dict[str, Any]:
    """The executor that ran the jobs, with what it records of its options (the settings that
    decide CUDA arithmetic among them) and, for a third-party one, where it came from. No job key
    includes any of it: every executor computes the same artifacts."""
    executor = EXECUTORS.get(options.executor, "audit.executor")
    describe = getattr(executor, "describe", None)
    record = {"name": options.executor, **(describe(options, device) if describe else {})}
    origin = EXECUTORS.origin(options.executor)
    if origin.distribution != "salun":
        record["plugin"] = plugin_record(EXECUTORS, options.executor)
    return record
