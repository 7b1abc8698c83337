"""The cost of DP training ([train.dp], opacus) against plain training of the same model.

Trains one digits original on the pool with the example's recipe (examples/digits-dp.toml: MLP
hidden [64], SGD lr 0.1, momentum 0.9, cosine schedule, batch 64), three ways, each in a fresh
subprocess on one intra-op thread, as salun's CPU jobs run:

  plain          `audit.nn.training.fit`
  dp poisson     the same loop through opacus' PrivacyEngine: per-example gradients, clipping,
                 noise, Poisson-sampled batches (opacus' DPDataLoader)
  dp shuffled    the same with train.dp.poisson = false: the loop's own shuffled batches

The MLP and the digits CNN (width 16) are both measured. Wall and CPU time cover building and
training the model after an untimed warm-up (importing opacus, PyTorch's first optimiser); peak
memory is the subprocess's peak resident set. Each side runs `--repeats` times, taking turns, and
its fastest run is reported, with the test accuracy of its model.

Run: python benchmarks/dp.py [--epochs 15] [--repeats 3]
Writes the table to stdout and benchmarks/results/dp.md.
"""

from __future__ import annotations

import argparse
import platform
import resource
import time
from pathlib import Path

from measured import in_subprocess, measured_main

RESULTS = Path(__file__).resolve().parent / "results" / "dp.md"
MODELS = {"mlp": {"hidden": [64]}, "cnn": {"width": 16}}
SIDES = ("plain", "dp poisson", "dp shuffled")


def measure(side: str, arch: str, epochs: int) -> dict:
    import torch

    from audit.config.spec import default_spec
    from audit.core.seeds import torch_generator
    from audit.data.datasets import prepare_data
    from audit.nn.dp import DpRecipe, make_private  # noqa: F401  (the warm-up imports opacus)
    from audit.nn.models import build_model
    from audit.nn.training import fit

    torch.set_num_threads(1)
    spec = default_spec()
    data = prepare_data(spec)
    recipe = spec.train.model_copy(update={"epochs": epochs, "lr": 0.1, "weight_decay": 0.0})
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    dp = None if side == "plain" else DpRecipe(max_grad_norm=1.0, delta=1e-5, noise_multiplier=1.0,
                                               poisson=side == "dp poisson")
    started, cpu_started = time.perf_counter(), time.process_time()
    model = build_model(arch, MODELS[arch], data.input_shape, data.num_classes, torch_generator("init", 0))
    log = fit(model, data.pool, recipe, torch_generator("order", 0), dp=dp)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    with torch.no_grad():
        test = data.eval_test_set
        accuracy = float((model.eval()(test.x).argmax(1) == test.y).float().mean())
    return {"seconds": seconds, "cpu_seconds": cpu, "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "accuracy": accuracy, "epsilon": (log.privacy or {}).get("epsilon")}


def run(side: str, arch: str, epochs: int) -> dict:
    return in_subprocess(__file__, side, arch, epochs)


def table(args: argparse.Namespace) -> str:
    import torch

    rows = []
    for arch in MODELS:
        runs: dict[str, list[dict]] = {side: [] for side in SIDES}
        for _ in range(args.repeats):
            for side in SIDES:
                runs[side].append(run(side, arch, args.epochs))
        best = {side: {**r[0], "seconds": min(x["seconds"] for x in r), "cpu_seconds": min(x["cpu_seconds"] for x in r)}
                for side, r in runs.items()}
        for side in SIDES:
            b, plain = best[side], best["plain"]
            epsilon = "–" if b["epsilon"] is None else f"{b['epsilon']:.2f}"
            rows.append(f"| {arch} | {side} | {b['seconds']:.2f} / {b['cpu_seconds']:.2f} | "
                        f"{b['cpu_seconds'] / plain['cpu_seconds']:.2f}x | {b['peak_mib']:.0f} | {epsilon} | "
                        f"{100 * b['accuracy']:.1f} |")
            print(rows[-1], flush=True)
    head = (f"One digits original trained on the pool ({args.epochs} epochs, batch 64), plain and through opacus "
            f"(σ = 1, clipping norm 1), each in its own process on one CPU thread ({platform.machine()}, "
            f"torch {torch.__version__}), fastest of {args.repeats} runs. Times: wall / CPU seconds; the cost is CPU "
            "time over plain training's. Memory: peak resident set in MiB. ε: the RDP accountant's at δ = 1e-5.\n\n"
            "| model | training | time (s) | cost | peak MiB | ε | TA % |\n|---|---|---|---|---|---|---|\n")
    return head + "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15, help="epochs of each training run")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each side; the fastest is reported")
    measured_main(parser, measure, table, RESULTS)


if __name__ == "__main__":
    main()
