"""salun's cost of training one population against plain PyTorch loops doing the same work.

Trains N originals of the default example (digits, its model and recipe) three ways in
one process, each on one intra-op thread as salun's CPU jobs run:

  salun       build the plan and execute the N training jobs into a fresh store
              (init from a seed, shuffled batches, safetensors write, fsync, rename)
  dataloader  the textbook loop: DataLoader(TensorDataset, shuffle=True), same model,
              optimiser and schedule
  tensors     the same loop indexing in-memory tensors, without a DataLoader

Each is timed `--repeats` times, interleaved, and the median is reported with the ratio
salun / baseline. Run: python benchmarks/overhead.py [--seeds 10] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from audit.data.datasets import prepare_data
from audit.engine.execute import CPU_THREADS_PER_JOB, execute
from audit.engine.job import TRAIN
from audit.tasks.classification.plan import build_plan
from audit.core.registry import MODELS
from audit.config.spec import default_spec, spec_from_dict
from audit.engine.store import Store


def salun_population(spec, seeds: int) -> float:
    with tempfile.TemporaryDirectory() as store_dir:
        resolved = spec.to_dict()
        resolved["audit"].update(seeds=seeds, store=store_dir)
        population_spec = spec_from_dict(resolved)
        started = time.perf_counter()
        data = prepare_data(population_spec)
        plan = build_plan(population_spec, data, torch.device("cpu"))
        originals = [job for job in plan.jobs if job.kind == TRAIN and job.key in plan.originals]
        execute(originals, population_spec, Store(store_dir))
        return time.perf_counter() - started


def _plain_model(spec, data, seed: int) -> nn.Module:
    """The same architecture, built and initialised the usual way, from the global RNG."""
    torch.manual_seed(seed)
    return MODELS.get(spec.model.arch)(data.input_shape, data.num_classes, **spec.model.options)


def _optimiser(spec, model, steps: int):
    recipe = spec.train
    optimizer = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                                weight_decay=recipe.weight_decay)
    return optimizer, torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)


def dataloader_population(spec, seeds: int) -> float:
    data = prepare_data(spec)
    started = time.perf_counter()
    for seed in range(seeds):
        model = _plain_model(spec, data, seed)
        loader = DataLoader(TensorDataset(data.pool.x, data.pool.y), batch_size=spec.train.batch_size, shuffle=True)
        optimizer, scheduler = _optimiser(spec, model, spec.train.epochs * len(loader))
        model.train()
        for _ in range(spec.train.epochs):
            for x, y in loader:
                optimizer.zero_grad()
                F.cross_entropy(model(x), y).backward()
                optimizer.step()
                scheduler.step()
    return time.perf_counter() - started


def tensor_population(spec, seeds: int) -> float:
    data = prepare_data(spec)
    x, y, n, batch = data.pool.x, data.pool.y, len(data.pool), spec.train.batch_size
    started = time.perf_counter()
    for seed in range(seeds):
        model = _plain_model(spec, data, seed)
        optimizer, scheduler = _optimiser(spec, model, spec.train.epochs * -(-n // batch))
        model.train()
        for _ in range(spec.train.epochs):
            order = torch.randperm(n)
            for start in range(0, n, batch):
                index = order[start : start + batch]
                optimizer.zero_grad()
                F.cross_entropy(model(x[index]), y[index]).backward()
                optimizer.step()
                scheduler.step()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="models in the population (default 10)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--arch", default=None, help="model instead of the default example's (e.g. cnn)")
    args = parser.parse_args()
    torch.set_num_threads(CPU_THREADS_PER_JOB)
    spec = default_spec()
    if args.arch:
        resolved = spec.to_dict()
        resolved["model"] = {"arch": args.arch}
        spec = spec_from_dict(resolved)
    prepare_data(spec)  # load once so no contender pays for it
    contenders = {"salun": salun_population, "dataloader": dataloader_population, "tensors": tensor_population}
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(args.repeats):
        for name, run in contenders.items():
            times[name].append(run(spec, args.seeds))
    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"population of {args.seeds} {spec.model.arch} models, {spec.train.epochs} epochs on digits, "
          f"{torch.get_num_threads()} thread, median of {args.repeats}")
    print(f"{'contender':<12}{'seconds':>10}{'salun / it':>12}")
    for name, seconds in median.items():
        print(f"{name:<12}{seconds:>10.2f}{median['salun'] / seconds:>12.2f}")


if __name__ == "__main__":
    main()
