"""Per-model training against vectorised training ([train] trainer = "vectorised") of one population.

For the digits MLP (the default example's model, hidden [128, 64]) and the digits CNN (width 16)
at N = 8, 32 and 128 models, trains N originals on the pool with the default example's [train]
recipe (SGD, momentum 0.9, weight decay 5e-4, cosine schedule, batch 64; epochs cut, the same for
both sides) two ways, each in a fresh subprocess on one intra-op thread, as salun's CPU jobs run:

  per_model   `audit.nn.training.fit`, one model after another
  vectorised  `audit.nn.population.train_population`, all N at once

Wall and CPU time cover building the N models and training them, after a warm-up that both sides pay
once per process and that is not timed (PyTorch imports torch._dynamo, ~3 s, at the first
optimiser it builds). Peak memory is the subprocess's peak resident set (`ru_maxrss`), and its
rise over the resident set just before the timed work. The weight difference is the largest
absolute difference between any weight of any model trained the two ways; "= N=1" says whether
model 0 of the population is bitwise equal to model 0 trained vectorised alone.

Each side runs `--repeats` times, taking turns, and its fastest run is reported.

Run: python benchmarks/population.py [--epochs 4] [--cnn-epochs 2] [--cnn-128-epochs 1] [--sizes 8 32 128]
     [--repeats 3]
Writes the table to stdout and benchmarks/results/population.md.
"""

from __future__ import annotations

import argparse
import platform
import resource
import tempfile
import time
from pathlib import Path

from measured import in_subprocess, measured_main

RESULTS = Path(__file__).resolve().parent / "results" / "population.md"
OPTIONS = {"mlp": {"hidden": [128, 64]}, "cnn": {"width": 16}}


def _resident_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(side: str, arch: str, n: int, epochs: int, weights: str) -> dict:
    """One side's run in this process: seconds, peak and rise of resident memory; the weights saved."""
    import torch

    from audit.config.spec import default_spec
    from audit.core.seeds import torch_generator
    from audit.data.datasets import prepare_data
    from audit.nn.models import build_model
    from audit.nn.population import train_population
    from audit.nn.training import fit

    torch.set_num_threads(1)
    spec = default_spec()
    data = prepare_data(spec)
    recipe = spec.train.model_copy(update={"epochs": epochs})
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)  # the warm-up: imports torch._dynamo
    before = _resident_mib()
    started, cpu_started = time.perf_counter(), time.process_time()
    models = [build_model(arch, OPTIONS[arch], data.input_shape, data.num_classes, torch_generator("init", seed))
              for seed in range(n)]
    if side == "per_model":
        for seed, model in enumerate(models):
            fit(model, data.pool, recipe, torch_generator("order", seed))
    else:
        train_population(models, [data.pool] * n, recipe, [torch_generator("order", seed) for seed in range(n)])
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    torch.save([model.state_dict() for model in models], weights)
    return {"seconds": seconds, "cpu_seconds": cpu, "peak_mib": peak, "rise_mib": peak - before}


def run(side: str, arch: str, n: int, epochs: int, folder: Path) -> dict:
    weights = folder / f"{side}-{arch}-{n}-{epochs}-{time.monotonic_ns()}.pt"
    return {**in_subprocess(__file__, side, arch, n, epochs, str(weights)), "weights": weights}


def fastest(first: str, second: str, arch: str, n: int, epochs: int, folder: Path, repeats: int) -> list[dict]:
    """Each side's shortest wall and CPU times over `repeats` runs, the two sides taking turns (the
    machine is shared: the shortest run is the least disturbed); memory and weights of the first."""
    runs: dict[str, list[dict]] = {first: [], second: []}
    for _ in range(repeats):
        for side in runs:
            runs[side].append(run(side, arch, n, epochs, folder))
    return [{**results[0], "seconds": min(r["seconds"] for r in results),
             "cpu_seconds": min(r["cpu_seconds"] for r in results)} for results in runs.values()]


def largest_difference(a: Path, b: Path) -> tuple[float, bool]:
    """The largest weight difference over all models, and whether model 0 is bitwise the same."""
    import torch

    first, second = torch.load(a, weights_only=True), torch.load(b, weights_only=True)
    difference = max((x.double() - y.double()).abs().max().item()
                     for p, q in zip(first, second) for x, y in zip(p.values(), q.values()))
    return difference, all(torch.equal(x, y) for x, y in zip(first[0].values(), second[0].values()))


def table(args: argparse.Namespace) -> str:
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for arch in OPTIONS:
            for n in args.sizes:
                epochs = args.epochs if arch == "mlp" else args.cnn_128_epochs if n == 128 else args.cnn_epochs
                per_model, vectorised = fastest("per_model", "vectorised", arch, n, epochs, Path(folder), args.repeats)
                alone = run("vectorised", arch, 1, epochs, Path(folder))
                difference, _ = largest_difference(per_model["weights"], vectorised["weights"])
                _, same = largest_difference(alone["weights"], vectorised["weights"])
                rows.append(f"| {arch} | {n} | {epochs} | {per_model['seconds']:.2f} / {per_model['cpu_seconds']:.2f} | "
                            f"{vectorised['seconds']:.2f} / {vectorised['cpu_seconds']:.2f} | "
                            f"{per_model['seconds'] / vectorised['seconds']:.2f}x / "
                            f"{per_model['cpu_seconds'] / vectorised['cpu_seconds']:.2f}x | "
                            f"{per_model['peak_mib']:.0f} (+{per_model['rise_mib']:.0f}) | "
                            f"{vectorised['peak_mib']:.0f} (+{vectorised['rise_mib']:.0f}) | {difference:.1e} | "
                            f"{'yes' if same else 'no'} |")
                print(rows[-1], flush=True)
    import torch

    head = (f"N digits originals trained per model (`fit`, one after another) and vectorised "
            f"(`train_population`), each in its own process on one CPU thread ({platform.machine()}, "
            f"torch {torch.__version__}), fastest of {args.repeats} runs each; the default recipe with the epochs "
            f"shown. Times: wall / CPU seconds (the machine is shared, and CPU time is the steadier measure). "
            f"Memory: peak resident set in MiB (in brackets its rise over the start of the timed work).\n\n"
            "| model | N | epochs | per model (s) | vectorised (s) | speed-up wall / CPU | per model peak MiB | "
            "vectorised peak MiB | largest weight difference | model 0 = N=1 |\n"
            "|---|---|---|---|---|---|---|---|---|---|\n")
    return head + "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4, help="MLP epochs (the default recipe has 30)")
    parser.add_argument("--cnn-epochs", type=int, default=2, help="CNN epochs at N = 8 and 32")
    parser.add_argument("--cnn-128-epochs", type=int, default=1, help="CNN epochs at N = 128")
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 32, 128])
    parser.add_argument("--repeats", type=int, default=3, help="runs of each side; the fastest is reported")
    measured_main(parser, measure, table, RESULTS)


if __name__ == "__main__":
    main()
