"""How each method's default hyperparameters were chosen for the default digits example.

For every method, every point of its grid below unlearns the originals of held-out seeds
(1000 to 1003, never among an audit's seeds 0..N-1) of the default example (digits, random
10 % forgetting, its model and recipe); the criterion is the mean Avg. Gap (UA, RA, TA,
MIA-Efficacy) to the model retrained on the retain set from the same held-out seed. The
best point of each grid is printed and written to `--out` as JSON. `--config` tunes for another
audit config instead (its data, forget request, model and recipe), e.g. the class-wise example. Epoch grids stop where a
method would cost about as much as retraining (30 epochs), which would defeat its purpose.

Run: python benchmarks/tune_defaults.py [--config PATH] [--methods salun scrub ...] [--out tune_defaults.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import time

import numpy as np
import torch

from audit.data.datasets import prepare_data
from audit.tasks.classification.jobs import make_task, new_model
from audit.tasks.classification.metrics import avg_gap, classification_metrics
from audit.engine.observe import observe
from audit.core.registry import UNLEARNERS
from audit.core.seeds import torch_generator
from audit.config.spec import default_spec, load_spec
from audit.nn.training import fit

HELD_OUT_SEEDS = (1000, 1001, 1002, 1003)

GRIDS: dict[str, dict[str, list]] = {
    "finetune": {"epochs": [5, 10, 20], "lr": [0.05, 0.1, 0.2, 0.4]},
    "random_label": {"epochs": [1, 2, 3, 5], "lr": [0.001, 0.002, 0.005, 0.01, 0.02]},
    "grad_ascent": {"epochs": [2, 5, 10, 20], "lr": [1e-4, 5e-4, 0.001, 0.002, 0.005, 0.01, 0.02]},
    "salun": {"epochs": [1, 2, 3, 5], "lr": [0.001, 0.002, 0.005, 0.01, 0.02], "mask_ratio": [0.5]},
    "salun_soft": {"epochs": [1, 2, 3, 5], "lr": [0.001, 0.002, 0.005, 0.01, 0.02], "mask_ratio": [0.5]},
    "neggrad_plus": {"epochs": [2, 5, 10], "lr": [0.001, 0.01, 0.05, 0.1], "alpha": [0.8, 0.9, 0.95, 0.99, 0.999]},
    "l1_sparse": {"epochs": [5, 10, 20], "lr": [0.01, 0.02, 0.05, 0.1], "alpha": [5e-4, 1e-3, 2e-3, 5e-3]},
    "influence": {"alpha": [1, 2, 5, 10, 20, 50, 100]},
    "boundary_shrink": {"epochs": [1, 2, 5, 10], "lr": [1e-5, 1e-4, 5e-4, 1e-3, 5e-3]},
    "boundary_expanding": {"epochs": [1, 2, 5, 10], "lr": [1e-5, 1e-4, 5e-4, 1e-3, 5e-3]},
    "scrub": {"epochs": [3, 5, 10], "max_epochs": [1, 2, 3], "lr": [0.01, 0.05, 0.1]},
    "manif_smc": {"epochs": [5, 10, 20], "lr": [0.1, 0.5, 1.0, 2.0, 5.0], "lam": [0.1]},
}


def grid_points(grid: dict[str, list]) -> list[dict]:
    return [dict(zip(grid, values)) for values in itertools.product(*grid.values())]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="*", default=list(GRIDS), choices=list(GRIDS))
    parser.add_argument("--config", help="audit config to tune for (default: the default example)")
    parser.add_argument("--out", default="tune_defaults.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    spec = load_spec(args.config) if args.config else default_spec()
    data = prepare_data(spec)
    cpu = torch.device("cpu")
    feature = spec.metrics.mia_feature
    pairs = []
    for seed in HELD_OUT_SEEDS:
        original = new_model(spec, data, torch_generator("init", seed), cpu)
        fit(original, data.pool, spec.train, torch_generator("order", seed))
        retrained = new_model(spec, data, torch_generator("init", seed), cpu)
        fit(retrained, data.retain_set, spec.train, torch_generator("order", seed))
        pairs.append((seed, original, classification_metrics(observe(retrained, data), data, feature)))
    report = {}
    for method in args.methods:
        rows = []
        for params in grid_points(GRIDS[method]):
            unlearner = UNLEARNERS.get(method)(**params)
            gaps, started = [], time.perf_counter()
            for seed, original, reference in pairs:
                task = make_task(unlearner, data, spec.train, lambda g: new_model(spec, data, g, cpu),
                                 torch_generator("tune", method, seed), cpu)
                try:
                    metrics = classification_metrics(observe(unlearner.unlearn(original, task), data), data, feature)
                    gaps.append(avg_gap(metrics, reference))
                except Exception as error:  # a diverging grid point is a result, not a crash
                    gaps.append(float("inf"))
                    print(f"  {method} {params}: {type(error).__name__}: {error}")
            rows.append({"params": params, "avg_gap": float(np.mean(gaps)),
                         "seconds": (time.perf_counter() - started) / len(pairs)})
        best = min(rows, key=lambda row: row["avg_gap"])
        report[method] = {"best": best, "grid": rows}
        print(f"{method:20s} best {best['params']}  Avg. Gap {100 * best['avg_gap']:.2f}  "
              f"({len(rows)} points, {best['seconds']:.2f} s per run)", flush=True)
    with open(args.out, "w") as handle:
        json.dump({"held_out_seeds": HELD_OUT_SEEDS, "methods": report}, handle, indent=1)


if __name__ == "__main__":
    main()
