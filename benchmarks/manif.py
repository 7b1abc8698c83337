"""ManiF-SMC's neighbour search against a dense PyTorch baseline.

For each forget point, ManiF-SMC finds its k most cosine-similar retain points in feature
space. salun's `nearest_neighbours(queries, keys, k, chunk)` (unlearners/manif_smc.py) goes
`chunk` queries and keys at a time with a running top-k, so it never holds the forget ×
retain similarity matrix; the baseline is the plain computation that does,

  torch.topk(queries @ keys.T, k, dim=1)

on 50,000 retain × 1,000 forget points of 512-dimensional features, k = 5 (the defaults).
The features are standard-normal random tensors from a torch.Generator seeded 0 (retain
points first), L2-normalised along each row; the cost does not depend on their values. The
script asserts that both contenders return the same neighbour indices; should ties ever
order them differently, it asserts instead that the similarities agree (torch.allclose) and
says so.

Time: each contender is warmed up once on the full inputs, then timed `--repeats` times,
interleaved with the other. The median is reported with the ratio to dense (below 1 means
faster than dense).

Peak memory: after the timings, each contender runs once more, alone, in a fresh process of
its own (multiprocessing, "spawn"; one at a time), after building its inputs and a warm-up
call on the first 16 forget points (which loads the code paths and thread pools without
leaving freed full-size buffers for the measured call to reuse). benchmarks/memory.py's
peak_mib measures that call: on CPU the increase of the peak RSS over the RSS just before it,
on CUDA (--device cuda) torch.cuda.max_memory_allocated() less the memory allocated before
it. The size of the dense similarity matrix is printed for reference.

Measured here: 2026-11-29, defaults, CPU (2 cores), 1 thread, median of 3, three runs:
salun 0.558–0.577 s, dense 0.613–0.622 s (salun/dense 0.90–0.94); peak RSS increase salun
34.1–34.2 MiB, dense 195.4–195.6 MiB, against a 190.7 MiB dense similarity matrix;
neighbour indices identical. Each step of salun's loop holds one 1,000 × 4,096 float32 block
(16 MiB) and only the block's own top-k besides the running one. The run takes about 17 s.

CPU runs use one intra-op thread, as salun's CPU jobs do, unless --threads says otherwise.
Run: python benchmarks/manif.py [--retain 50000] [--forget 1000] [--dim 512] [--k 5]
     [--repeats 3] [--threads 1] [--device cpu|cuda] [--chunk 4096]
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

import torch
from memory import MIB, peak_mib, sync  # benchmarks/memory.py, beside this script
from torch.nn import functional as F

from audit.engine.execute import CPU_THREADS_PER_JOB
from unlearners.manif_smc import nearest_neighbours

SEED = 0
WARMUP_QUERIES = 16

Neighbours = tuple[torch.Tensor, torch.Tensor]  # (indices, similarities), each (queries, k)


def features(args: argparse.Namespace) -> tuple[torch.Tensor, torch.Tensor]:
    """(forget queries, retain keys): L2-normalised standard-normal rows, on args.device."""
    generator = torch.Generator().manual_seed(SEED)
    keys = torch.randn(args.retain, args.dim, generator=generator)
    queries = torch.randn(args.forget, args.dim, generator=generator)
    return F.normalize(queries, dim=1).to(args.device), F.normalize(keys, dim=1).to(args.device)


def salun_neighbours(queries: torch.Tensor, keys: torch.Tensor, args: argparse.Namespace) -> Neighbours:
    return nearest_neighbours(queries, keys, args.k, chunk=args.chunk)


def dense_neighbours(queries: torch.Tensor, keys: torch.Tensor, args: argparse.Namespace) -> Neighbours:
    similarities, indices = torch.topk(queries @ keys.T, args.k, dim=1)
    return indices, similarities


CONTENDERS: dict[str, Callable[[torch.Tensor, torch.Tensor, argparse.Namespace], Neighbours]] = {
    "salun": salun_neighbours,
    "dense": dense_neighbours,
}


def timed(run: Callable[[], Neighbours], device: str) -> tuple[float, Neighbours]:
    """Seconds of one call of run(), and its output."""
    sync(device)
    started = time.perf_counter()
    output = run()
    sync(device)
    return time.perf_counter() - started, output


def median_seconds(queries: torch.Tensor, keys: torch.Tensor,
                   args: argparse.Namespace) -> tuple[dict[str, float], dict[str, Neighbours]]:
    """Each contender's median seconds per call and its last output."""
    for run in CONTENDERS.values():
        run(queries, keys, args)
    times: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    outputs = {}
    for _ in range(args.repeats):
        for name, run in CONTENDERS.items():
            elapsed, outputs[name] = timed(lambda run=run: run(queries, keys, args), args.device)
            times[name].append(elapsed)
    return {name: statistics.median(values) for name, values in times.items()}, outputs


def check_agreement(salun: Neighbours, dense: Neighbours) -> str:
    """Assert that both contenders found the same neighbours; say how they were compared."""
    if torch.equal(salun[0], dense[0]):
        return "neighbour indices identical (asserted)"
    differing = int((salun[0] != dense[0]).any(dim=1).sum())
    assert torch.allclose(salun[1], dense[1]), (
        f"neighbours differ on {differing} queries, similarities by up to "
        f"{float((salun[1] - dense[1]).abs().max()):.3g}")
    return (f"neighbour indices differ on {differing} queries (ties); "
            f"similarities agree within torch.allclose (asserted)")


def peak_memory_worker(name: str, args: argparse.Namespace) -> float:
    """In a fresh process: the peak memory, in MiB, of one call of a contender after setup."""
    torch.set_num_threads(args.threads)
    queries, keys = features(args)
    run = CONTENDERS[name]
    run(queries[:WARMUP_QUERIES], keys, args)
    return peak_mib(lambda: run(queries, keys, args), args.device)


def peak_memory(name: str, args: argparse.Namespace) -> float:
    """peak_memory_worker in a fresh process of its own."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(peak_memory_worker, name, args).result()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--retain", type=int, default=50_000, help="retain points, the keys (default 50000)")
    parser.add_argument("--forget", type=int, default=1_000, help="forget points, the queries (default 1000)")
    parser.add_argument("--dim", type=int, default=512, help="feature dimension (default 512)")
    parser.add_argument("--k", type=int, default=5, help="neighbours per forget point (default 5)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=CPU_THREADS_PER_JOB,
                        help=f"intra-op threads (default {CPU_THREADS_PER_JOB}, as salun's CPU jobs)")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--chunk", type=int, default=4096, help="nearest_neighbours' chunk (default 4096)")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if not 1 <= args.k <= args.retain:
        parser.error("--k must be between 1 and --retain")
    return args


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    queries, keys = features(args)
    median, outputs = median_seconds(queries, keys, args)
    agreement = check_agreement(outputs["salun"], outputs["dense"])
    peak = {name: peak_memory(name, args) for name in CONTENDERS}

    dense_matrix_mib = args.forget * args.retain * queries.element_size() / MIB
    where = f"{args.device}, {torch.get_num_threads()} thread(s)" if args.device == "cpu" else args.device
    mem = "peak RSS increase" if args.device == "cpu" else "peak allocated"
    print(f"ManiF-SMC neighbour search: nearest_neighbours(chunk {args.chunk}) vs "
          f"torch.topk(queries @ keys.T); {args.retain:,} retain x {args.forget:,} forget, "
          f"dim {args.dim}, k {args.k}; {where}, median of {args.repeats}; {mem} in MiB")
    print(f"{'contender':<11}{'seconds':>10}{'/dense':>8}{'peak MiB':>10}")
    for name in CONTENDERS:
        print(f"{name:<11}{median[name]:>10.4f}{median[name] / median['dense']:>8.2f}{peak[name]:>10.1f}")
    print(f"dense similarity matrix: {dense_matrix_mib:.1f} MiB; {agreement}")


if __name__ == "__main__":
    main()
