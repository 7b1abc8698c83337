"""One GPU check of salun, under 8 minutes on one H200: writes gpu_check.json and gpu_check.md to --out.

(a) every model family trained on the CPU and on CUDA from the same init and batches: the drift of
    logits, weights and diffusion samples against a stated tolerance (benchmarks/device_agreement.py);
(b) a tiny audit on CUDA, `salun verify` of it (a rerun on CUDA, compared within verify's GPU
    tolerance), and the same spec audited on the CPU, compared number by number;
(c) the `gpu` executor with audit.jobs_per_gpu = 1, 4, 8 on a population of fastcifar models on
    random 3x32x32 images (an imagefolder): models trained per minute, end to end of `salun audit`,
    and the GPU's busy share sampled every 0.1 s from NVML (pynvml, else nvidia-smi);
(d) train.trainer = "vectorised" at N = 8, 32, 128 against per-model training (local executor,
    in this process, data loading excluded): models trained per minute.
Everything is driven through specs and the CLI. A feature the build lacks is reported as
"not available in this build"; a section that fails is reported with its error, and the others run.

Models per minute are given end to end and for the jobs alone: less the run's fixed cost, timed
as the same run again with every job a cache hit (start, plan, results).

--dry-run runs the same code on the CPU with tiny sizes: the processes executor with 2 workers in
place of the gpu executor, N = 2 and 4. Run: python benchmarks/gpu_check.py [--out DIR] [--dry-run]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from device_agreement import AgreementSizes, device_agreement  # beside this script
from gpu_check_report import BusySampler, markdown

from audit.config.sections import AuditSection, TrainSection
from audit.config.spec import load_spec
from audit.core.registry import EXECUTORS
from audit.data.datasets import prepare_data
from audit.pipeline import run_audit
from audit.results.document import load_results
from audit.verify import GPU_ATOL, GPU_RTOL, compare

ARCHS = ("mlp", "cnn", "resnet18", "fastcifar")
BUDGET_S = 450  # a sub-run that would start later is skipped, so the whole check stays under 8 minutes
NOT_AVAILABLE = "not available in this build"


@dataclass(frozen=True)
class Sizes:
    device: str
    agreement: AgreementSizes
    verify_epochs: int
    per_class: int               # random images per class of the CIFAR-shaped folder (10 classes)
    fast_widths: tuple[int, ...]
    epochs: int
    population: int              # (c): seeds of the executor runs
    executor_runs: tuple[int, ...]  # (c): jobs_per_gpu (gpu), or --workers of the processes executor
    vectorised: tuple[int, ...]  # (d): N with the vectorised trainer
    per_model: tuple[int, ...]   # (d): N with per-model training


FULL = Sizes("cuda", AgreementSizes(512, 128, 2, {"resnet18": {"width": 64}}, 32, 50, 20),
             verify_epochs=5, per_class=200, fast_widths=(64, 256, 256), epochs=2, population=16,
             executor_runs=(1, 4, 8), vectorised=(8, 32, 128), per_model=(8, 32))
DRY = Sizes("cpu", AgreementSizes(48, 24, 1, {"mlp": {"hidden": [16]}, "cnn": {"width": 4}, "resnet18": {"width": 4},
                                              "fastcifar": {"widths": [4, 8, 8]}}, 8, 4, 4),
            verify_epochs=2, per_class=6, fast_widths=(4, 8, 8), epochs=1, population=2,
            executor_runs=(2,), vectorised=(2, 4), per_model=(2, 4))

VERIFY_TOML = """[audit]
name = "gpu-check-verify"
seeds = 2
device = "{device}"
store = "{store}"
reports = []
[data]
dataset = "digits"
[forget]
count = 20
[model]
arch = "mlp"
hidden = [64]
[train]
epochs = {epochs}
[attacks]
run = []
[equivalence]
permutations = 200
[unlearners.identity]
[unlearners.retrain]
[unlearners.finetune]
epochs = 2
"""

POPULATION_TOML = """[audit]
name = "gpu-check-population"
seeds = {seeds}
device = "{device}"
store = "{store}"
reports = []
{audit_extra}
[data]
dataset = "imagefolder"
root = "{root}"
[forget]
count = 20
[model]
arch = "fastcifar"
widths = {widths}
[train]
epochs = {epochs}
batch_size = 256
lr = 0.2
schedule = "linear"
{train_extra}
[attacks]
run = []
[equivalence]
permutations = 200
[unlearners.identity]
"""


class Check:
    """The run's clock, its scratch folder and its results, written to --out after every section."""

    def __init__(self, sizes: Sizes, out: Path, work: Path, dry_run: bool):
        self.sizes, self.out, self.work, self.started = sizes, out, work, time.perf_counter()
        self.document = {"dry_run": dry_run, "device": sizes.device, "torch": torch.__version__,
                         "gpu": torch.cuda.get_device_name(0) if sizes.device == "cuda" else None, "sections": {}}

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def out_of_time(self) -> bool:
        return self.elapsed() > BUDGET_S

    def section(self, name: str, run) -> None:
        try:
            self.document["sections"][name] = run(self)
        except Exception as error:  # one broken section must not cost the others' numbers
            self.document["sections"][name] = {"error": f"{type(error).__name__}: {error}",
                                               "traceback": traceback.format_exc()[-3000:]}
        self.document["seconds"] = self.elapsed()
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "gpu_check.json").write_text(json.dumps(self.document, indent=2, default=str))
        (self.out / "gpu_check.md").write_text(markdown(self.document))
        print(f"[{self.elapsed():6.1f} s] section {name} done", flush=True)


def write_config(path: Path, template: str, **fields) -> Path:
    path.write_text(template.format(**fields))
    return path


def cli(*args: str, timeout: float) -> tuple[int, str, float]:
    """`salun ARGS` in a fresh process: exit code, its output's last lines, wall seconds."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "audit.cli", "-q", *args], capture_output=True, text=True,
                          timeout=timeout)
    tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-6:])
    return done.returncode, tail, time.perf_counter() - started


def cross_device(expected: dict, actual: dict) -> dict:
    exact = compare(expected, actual)
    numbers = [d for d in exact if all(isinstance(d[k], (int, float)) and not isinstance(d[k], bool)
                                       for k in ("expected", "actual"))]
    outside = compare(expected, actual, GPU_RTOL, GPU_ATOL)
    return {"differences": len(exact), "numbers_differing": len(numbers),
            "max_abs_difference": max((abs(d["actual"] - d["expected"]) for d in numbers), default=0.0),
            "outside_gpu_tolerance": len(outside), "first_outside": outside[:5]}


def verify_section(check: Check) -> dict:
    """(b): an audit on the check's device, `salun verify` of it, and the same spec on the CPU."""
    sizes, work = check.sizes, check.work / "verify"
    work.mkdir()
    audits = {}
    for device in dict.fromkeys((sizes.device, "cpu")):
        config = write_config(work / f"{device}.toml", VERIFY_TOML, device=device, store=work / f"store-{device}",
                              epochs=sizes.verify_epochs)
        started = time.perf_counter()
        run_audit(load_spec(config), work / f"out-{device}", show_progress=False)
        audits[device] = {"seconds": time.perf_counter() - started,
                          "results": load_results(work / f"out-{device}" / "results.json")}
    rc, tail, seconds = cli("verify", str(work / f"out-{sizes.device}" / "results.json"), timeout=240)
    other = audits.get("cpu") if sizes.device != "cpu" else audits[sizes.device]
    return {"audit_device": sizes.device, "audit_seconds": audits[sizes.device]["seconds"],
            "verify": {"exit_code": rc, "verified": rc == 0, "output": tail, "seconds": seconds},
            "against_cpu": cross_device(audits[sizes.device]["results"], other["results"])}


def image_folder(root: Path, per_class: int) -> Path:
    """10 class folders of random 32x32 RGB PNGs, each class's pixels shifted a little."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for label in range(10):
        folder = root / f"class{label}"
        folder.mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 200, size=(32, 32, 3)) + 5 * label
            Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{i}.png")
    return root


def population_config(check: Check, name: str, seeds: int, audit_extra: str = "", train_extra: str = "") -> Path:
    root = check.work / "images"
    if not root.exists():
        image_folder(root, check.sizes.per_class)
    return write_config(check.work / f"{name}.toml", POPULATION_TOML, seeds=seeds, device=check.sizes.device,
                        store=check.work / f"store-{name}", audit_extra=audit_extra, root=root,
                        widths=list(check.sizes.fast_widths), epochs=check.sizes.epochs, train_extra=train_extra)


def _rates(trained: int, seconds: float, fixed: float | None) -> dict:
    """Models per minute end to end, and without the run's fixed cost (the same run again, every
    job a cache hit: start, plan, results), which small populations are dominated by."""
    jobs = seconds - fixed if fixed is not None and seconds > fixed else None
    return {"models_trained": trained, "models_per_minute": 60 * trained / seconds, "fixed_seconds": fixed,
            "models_per_minute_jobs_only": 60 * trained / jobs if jobs else None}


def executor_section(check: Check) -> dict:
    """(c): the gpu executor at each jobs_per_gpu (dry run: the processes executor at each --workers)."""
    sizes, dry = check.sizes, check.sizes.device == "cpu"
    executor = "processes" if dry else "gpu"
    if not {"executor", "jobs_per_gpu"} <= set(AuditSection.model_fields) or executor not in EXECUTORS.names():
        return {"available": False, "note": f"audit.executor = '{executor}' / audit.jobs_per_gpu: {NOT_AVAILABLE}"}
    rows, fixed = [], None
    for k in sizes.executor_runs:
        if check.out_of_time():
            rows.append({"jobs": k, "skipped": "time budget"})
            continue
        extra = f'executor = "{executor}"' + ("" if dry else f"\njobs_per_gpu = {k}")
        config = population_config(check, f"executor-{k}", sizes.population, audit_extra=extra)
        run = ["audit", str(config), *(["--workers", str(k)] if dry else [])]
        with BusySampler(sizes.device) as busy:
            rc, tail, seconds = cli(*run, "--out", str(check.work / f"out-executor-{k}"), timeout=300)
        if rc == 0 and fixed is None:
            fixed = cli(*run, "--out", str(check.work / f"out-executor-{k}-cached"), timeout=300)[2]
        rows.append({"jobs": k, "exit_code": rc, "seconds": seconds, "gpu_busy": busy.summary(),
                     **(_rates(2 * sizes.population, seconds, fixed) if rc == 0 else {"output": tail})})
    return {"available": True, "executor": executor, "knob": "--workers" if dry else "audit.jobs_per_gpu",
            "population": sizes.population, "epochs": sizes.epochs, "images": 10 * sizes.per_class,
            "fast_widths": list(sizes.fast_widths), "rows": rows}


def _population_run(check: Check, trainer: str, n: int) -> dict:
    extra = f'trainer = "vectorised"\npopulation_size = {n}' if trainer == "vectorised" else ""
    spec = load_spec(population_config(check, f"{trainer}-{n}", n, train_extra=extra))
    prepare_data(spec)  # loaded once per process and cached: the timing covers the jobs
    seconds, busy = [], []
    for out in ("trained", "cached"):  # the second run finds every job in the store: its fixed cost
        with BusySampler(check.sizes.device) as sampler:
            started = time.perf_counter()
            run_audit(spec, check.work / f"out-{trainer}-{n}-{out}", show_progress=False)
            seconds.append(time.perf_counter() - started)
        busy.append(sampler.summary())
    return {"trainer": trainer, "n": n, "seconds": seconds[0], "gpu_busy": busy[0],
            **_rates(2 * n, seconds[0], seconds[1])}


def vectorised_section(check: Check) -> dict:
    """(d): the vectorised trainer at each N against per-model training, in this process."""
    sizes = check.sizes
    if not {"trainer", "population_size"} <= set(TrainSection.model_fields):
        return {"available": False, "note": f"train.trainer = 'vectorised': {NOT_AVAILABLE}"}
    # smallest N first, each per-model run beside its vectorised one, so that a run cut short by the
    # time budget still holds whole comparisons
    runs = sorted([("per_model", n) for n in sizes.per_model] + [("vectorised", n) for n in sizes.vectorised],
                  key=lambda run: (run[1], run[0]))
    rows = []
    for trainer, n in runs:
        if check.out_of_time():
            rows.append({"trainer": trainer, "n": n, "skipped": "time budget"})
            continue
        try:
            rows.append(_population_run(check, trainer, n))
        except Exception as error:  # a population too large for the device is a finding, not a crash
            rows.append({"trainer": trainer, "n": n, "error": f"{type(error).__name__}: {str(error)[:300]}"})
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
    return {"available": True, "epochs": sizes.epochs, "images": 10 * sizes.per_class,
            "fast_widths": list(sizes.fast_widths), "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "gpu_check"))
    parser.add_argument("--dry-run", action="store_true", help="the same code paths on the CPU, tiny sizes")
    parser.add_argument("--only", default="a,b,c,d", help="the sections to run, e.g. c,d (default: all)")
    args = parser.parse_args()
    chosen = {name.strip() for name in args.only.split(",")}
    sizes = DRY if args.dry_run else FULL
    if sizes.device == "cuda" and not torch.cuda.is_available():
        sys.exit("gpu_check: PyTorch sees no GPU here; run with --dry-run to check the code paths on the CPU")
    with tempfile.TemporaryDirectory(prefix="salun-gpu-check-") as work:
        check = Check(sizes, Path(args.out), Path(work), args.dry_run)
        sections = {"a": ("a_device_agreement", lambda c: device_agreement(ARCHS, sizes.agreement, sizes.device)),
                    "b": ("b_verify", verify_section), "c": ("c_gpu_executor", executor_section),
                    "d": ("d_vectorised_trainer", vectorised_section)}
        for letter, (name, run) in sections.items():
            if letter in chosen:
                check.section(name, run)
    print(markdown(check.document))


if __name__ == "__main__":
    main()
