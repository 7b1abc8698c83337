"""The default audit (`salun audit` with no config) run by each executor, each in a fresh store:
wall time, and whether results.json is the same as the local executor's (timings, the machine,
the store's path and where the jobs ran aside: audit.verify.compare, as `salun verify` compares).

  local      one job after another in this process
  processes  `--workers` spawned worker processes
  ray        a local Ray cluster of `--workers` CPUs, started and ended by the run (its start counts)

Run: python benchmarks/executors.py [--workers 2] [--executors local processes ray]
It prints a markdown table and writes it to benchmarks/results/executors.md.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from audit.config.spec import default_spec, spec_from_dict
from audit.core.registry import TASKS
from audit.data.datasets import prepare_data
from audit.nn.training import resolve_device
from audit.engine.options import ExecutorChoice
from audit.pipeline import run_audit
from audit.verify import compare

RESULTS = Path(__file__).parent / "results" / "executors.md"


def timed_audit(choice: ExecutorChoice, folder: Path) -> tuple[float, dict]:
    resolved = default_spec().to_dict()
    resolved["audit"]["store"] = str(folder / "store")
    spec = spec_from_dict(resolved)
    started = time.perf_counter()
    results = run_audit(spec, folder / "out", executor=choice, show_progress=False)
    return time.perf_counter() - started, results


def planned_jobs() -> int:
    spec = default_spec()
    return len(TASKS.get(spec.task.kind).plan(spec, prepare_data(spec), resolve_device(spec.audit.device)).jobs)


def table(rows: list[dict], jobs: int) -> str:
    ray = importlib.metadata.version("ray") if any(row["executor"] == "ray" for row in rows) else None
    lines = [
        f"The default audit ({jobs} jobs), each executor in a fresh store, on {platform.machine()} with "
        f"{os.cpu_count()} CPU(s), torch {torch.__version__}" + (f", ray {ray}" if ray else "") + ".",
        "",
        f"| executor | workers | wall time (s) | speed-up over local | results.json as {rows[0]['executor']}'s |",
        "|---|---|---|---|---|",
    ]
    local = next((row["seconds"] for row in rows if row["executor"] == "local"), None)
    for row in rows:
        speed = f"{local / row['seconds']:.2f}x" if local else "-"
        same = "yes" if row["differences"] == 0 else f"no ({row['differences']} differences)"
        lines.append(f"| {row['executor']} | {row['workers']} | {row['seconds']:.1f} | {speed} | {same} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2, help="processes and ray: workers (default 2)")
    parser.add_argument("--executors", nargs="+", default=["local", "processes", "ray"])
    args = parser.parse_args()
    rows, reference = [], None
    with tempfile.TemporaryDirectory(prefix="salun-executors-") as scratch:
        for name in args.executors:
            workers = 1 if name == "local" else args.workers
            seconds, results = timed_audit(ExecutorChoice(executor=name, workers=workers), Path(scratch) / name)
            reference = reference or results
            rows.append({"executor": name, "workers": workers, "seconds": seconds,
                         "differences": len(compare(reference, results))})
            print(f"{name}: {seconds:.1f} s", flush=True)
    text = table(rows, planned_jobs())
    print(text)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
