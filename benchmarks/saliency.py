"""salun's SalUn mask and influence per-sample gradients against plain PyTorch loops.

Part 1, the SalUn weight-saliency mask: `forget_gradient(model, forget, batch)` followed by
`saliency_mask(gradient, 0.5)`, against the textbook loop

  model.eval(); model.zero_grad()
  for each batch: (-F.cross_entropy(model(x), y, reduction="sum") / n).backward()
  then a global top-50 % mask from torch.topk over the concatenated |p.grad|

on `mlp` (hidden [128, 64]) and `cnn` with the forget set of the default example (digits,
144 images of 1x8x8, batch 256 as SalUn uses), and on `resnet18` with 512 random
standard-normal 3x32x32 tensors and random labels out of 10 classes (no CIFAR is needed on
disk; the cost does not depend on the pixel values), batch 128. The script asserts once per
model that both masks are identical.

Part 2, influence per-sample gradients: throughput (examples per second) of
`per_sample_gradients(model, data, chunk=256)` (torch.func vmap + grad; the generator is
consumed fully) against a loop calling torch.autograd.grad on each example alone and
flattening the gradients into a row, on `mlp` and `cnn` with the first 1000 examples of the
default example's retain set. The script asserts that the first 8 rows agree (atol 1e-5).

Every model is built by audit.nn.models.build_model from seed 0 and left untrained (its
weights at init): the work done does not depend on the weights. Models are in eval mode.

Time: each contender is warmed up on 16 examples, then timed `--repeats` times, interleaved
with the other contender, on the same model and data; a timed sample calls it as many times
as needed to last about 0.2 s and is divided by that count. The median is reported with the
ratio salun / baseline (for seconds, below 1 means salun is faster; for examples per second,
above 1 means salun is faster). The masks compared are those of the last timed calls.

Peak memory: after the timings, each contender runs once more, alone, in a fresh process of
its own (multiprocessing, "spawn"; one at a time), after the same 16-example warm-up, so
one-time costs of a first call (lazy imports, thread pools) are left out, and
benchmarks/memory.py's peak_mib measures that call. On CPU the figure is the increase of the
process's resident-set high-water mark (the peak RSS) over its RSS just before the
computation (data loaded, model built): what the computation needed on top of what the
process already held; memory.py says how the mark is read and reset on Linux and what
happens elsewhere. On CUDA (--device cuda) the figure is torch.cuda.max_memory_allocated()
during the computation less the memory allocated before it.

The default run takes about 3 minutes on CPU: resnet18 about 1.5 of them (--no-resnet leaves
it out), and each fresh process several seconds just to start (importing torch and salun).
CPU runs use one intra-op thread, as salun's CPU jobs do, unless --threads says otherwise.
Run: python benchmarks/saliency.py [--repeats 3] [--threads 1] [--no-resnet] [--device cuda]
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import statistics
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor

import torch
from memory import peak_mib, sync  # benchmarks/memory.py, beside this script
from torch import nn
from torch.nn import functional as F

from audit.core.contracts import Subset
from audit.data.datasets import prepare_data
from audit.engine.execute import CPU_THREADS_PER_JOB
from audit.nn.models import build_model
from audit.config.spec import default_spec
from unlearners.influence import per_sample_gradients
from unlearners.saliency import forget_gradient, saliency_mask

RATIO = 0.5
CHUNK = 256  # the Influence unlearner's batch_size, its per_sample_gradients chunk
RETAIN_EXAMPLES = 1000
RANDOM_EXAMPLES = 512
CHECK_ROWS = 8
WARMUP_EXAMPLES = 16
MIN_SAMPLE_SECONDS = 0.2

# part 1: (arch, options, data, batch); part 2: (arch, options, data)
MASK_CASES = [
    ("mlp", {"hidden": [128, 64]}, "digits forget", 256),
    ("cnn", {}, "digits forget", 256),
    ("resnet18", {}, "random 3x32x32", 128),
]
ROW_CASES = [
    ("mlp", {"hidden": [128, 64]}, "digits retain"),
    ("cnn", {}, "digits retain"),
]


def load_case(arch: str, options: dict, data_name: str, device: str) -> tuple[nn.Module, Subset]:
    """The model (seed 0, untrained, eval mode) and the examples of one case, on `device`."""
    if data_name == "random 3x32x32":
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(RANDOM_EXAMPLES, 3, 32, 32, generator=generator)
        y = torch.randint(0, 10, (RANDOM_EXAMPLES,), generator=generator)
        data, input_shape, classes = Subset(x, y), (3, 32, 32), 10
    else:
        audit_data = prepare_data(default_spec())
        data = audit_data.forget_set if data_name == "digits forget" else audit_data.retain_set
        if data_name == "digits retain":
            data = Subset(data.x[:RETAIN_EXAMPLES], data.y[:RETAIN_EXAMPLES])
        input_shape, classes = audit_data.input_shape, audit_data.num_classes
    model = build_model(arch, options, input_shape, classes, torch.Generator().manual_seed(0), device)
    return model.eval(), data.to(device)


# ---- part 1: the SalUn mask --------------------------------------------------------------

def salun_mask(model: nn.Module, data: Subset, batch: int) -> torch.Tensor:
    masks = saliency_mask(forget_gradient(model, data, batch), RATIO)
    return torch.cat([mask.flatten() for mask in masks.values()])


def torch_mask(model: nn.Module, data: Subset, batch: int) -> torch.Tensor:
    model.eval()
    model.zero_grad()
    n = len(data)
    for start in range(0, n, batch):
        x, y = data.x[start : start + batch], data.y[start : start + batch]
        (-F.cross_entropy(model(x), y, reduction="sum") / n).backward()
    flat = torch.cat([p.grad.abs().flatten() for p in model.parameters()])
    model.zero_grad()
    mask = torch.zeros(flat.numel(), dtype=torch.bool, device=flat.device)
    mask[torch.topk(flat, round(RATIO * flat.numel()), sorted=False).indices] = True
    return mask


# ---- part 2: per-sample gradients --------------------------------------------------------

def salun_rows(model: nn.Module, data: Subset) -> Iterator[torch.Tensor]:
    yield from per_sample_gradients(model, data, CHUNK)


def loop_rows(model: nn.Module, data: Subset) -> Iterator[torch.Tensor]:
    params = list(model.parameters())
    for i in range(len(data)):
        grads = torch.autograd.grad(F.cross_entropy(model(data.x[i : i + 1]), data.y[i : i + 1]), params)
        yield torch.cat([g.flatten() for g in grads]).unsqueeze(0)


def consume(rows: Iterator[torch.Tensor]) -> None:
    for _ in rows:
        pass


MASK_CONTENDERS: dict[str, Callable] = {"salun": salun_mask, "torch": torch_mask}
ROW_CONTENDERS: dict[str, Callable] = {"salun": lambda m, d, _: consume(salun_rows(m, d)),
                                       "loop": lambda m, d, _: consume(loop_rows(m, d))}


# ---- measuring ---------------------------------------------------------------------------

def seconds(run: Callable, model: nn.Module, data: Subset, batch: int | None, number: int,
            device: str) -> tuple[float, object]:
    """Seconds per call of run(model, data, batch) over `number` calls, and the last call's output."""
    sync(device)
    started = time.perf_counter()
    for _ in range(number):
        output = run(model, data, batch)
    sync(device)
    return (time.perf_counter() - started) / number, output


def median_seconds(case: tuple, contenders: dict[str, Callable], args) -> tuple[int, int, dict, dict]:
    """#examples, #parameters, and each contender's median seconds per call and last output."""
    model, data = load_case(*case[:3], args.device)
    batch = case[3] if len(case) > 3 else None
    warmup = Subset(data.x[:WARMUP_EXAMPLES], data.y[:WARMUP_EXAMPLES])
    number = {}
    for name, run in contenders.items():
        run(model, warmup, batch)
        estimate = seconds(run, model, warmup, batch, 1, args.device)[0] * len(data) / len(warmup)
        number[name] = math.ceil(MIN_SAMPLE_SECONDS / max(estimate, 1e-6)) if estimate < MIN_SAMPLE_SECONDS else 1
    times: dict[str, list[float]] = {name: [] for name in contenders}
    outputs = {}
    for _ in range(args.repeats):
        for name, run in contenders.items():
            elapsed, outputs[name] = seconds(run, model, data, batch, number[name], args.device)
            times[name].append(elapsed)
    medians = {name: statistics.median(values) for name, values in times.items()}
    return len(data), sum(p.numel() for p in model.parameters()), medians, outputs


def peak_memory_worker(part: str, case: tuple, name: str, threads: int, device: str) -> float:
    """In a fresh process: the peak memory, in MiB, of one call of a contender after setup."""
    torch.set_num_threads(threads)
    model, data = load_case(*case[:3], device)
    batch = case[3] if len(case) > 3 else None
    run = (MASK_CONTENDERS if part == "mask" else ROW_CONTENDERS)[name]
    run(model, Subset(data.x[:WARMUP_EXAMPLES], data.y[:WARMUP_EXAMPLES]), batch)  # as before timing
    return peak_mib(lambda: run(model, data, batch), device)


def peak_memory(part: str, case: tuple, name: str, args) -> float:
    """peak_memory_worker in a fresh process of its own."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(peak_memory_worker, part, case, name, args.threads, args.device).result()


def check_rows(case: tuple, device: str) -> None:
    model, data = load_case(*case[:3], device)
    first = Subset(data.x[:CHECK_ROWS], data.y[:CHECK_ROWS])
    salun, loop = torch.cat(list(salun_rows(model, first))), torch.cat(list(loop_rows(model, first)))
    assert torch.allclose(salun, loop, atol=1e-5), (
        f"{case[0]}: per-sample gradients differ by up to {float((salun - loop).abs().max()):.3g}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=CPU_THREADS_PER_JOB,
                        help=f"intra-op threads (default {CPU_THREADS_PER_JOB}, as salun's CPU jobs)")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--no-resnet", action="store_true", help="leave out resnet18 (most of the run time on CPU)")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    torch.set_num_threads(args.threads)
    prepare_data(default_spec())  # load once so no contender pays for it
    mask_cases = [case for case in MASK_CASES if not (args.no_resnet and case[0] == "resnet18")]

    mask_rows, row_rows = [], []
    for case in mask_cases:
        n, params, median, outputs = median_seconds(case, MASK_CONTENDERS, args)
        salun, plain = outputs["salun"], outputs["torch"]
        assert torch.equal(salun, plain), (
            f"{case[0]}: SalUn masks differ on {int((salun != plain).sum())} of {salun.numel()} weights")
        mask_rows.append((case, n, params, median))
    for case in ROW_CASES:
        check_rows(case, args.device)
        n, params, median, _ = median_seconds(case, ROW_CONTENDERS, args)
        row_rows.append((case, n, params, median))
    peak = {("mask", case[0], name): peak_memory("mask", case, name, args)
            for case in mask_cases for name in MASK_CONTENDERS}
    peak |= {("rows", case[0], name): peak_memory("rows", case, name, args)
             for case in ROW_CASES for name in ROW_CONTENDERS}

    where = f"{args.device}, {torch.get_num_threads()} thread(s)" if args.device == "cpu" else args.device
    mem = "peak RSS increase" if args.device == "cpu" else "peak allocated"
    print(f"SalUn mask: forget_gradient + saliency_mask({RATIO}) vs a .backward() loop + torch.topk; "
          f"{where}, median of {args.repeats}, untrained models; {mem} in MiB")
    print(f"{'model':<10}{'data':<16}{'n':>5}{'batch':>6}{'params':>12}"
          f"{'salun s':>10}{'torch s':>10}{'salun/torch':>13}{'salun MiB':>11}{'torch MiB':>11}")
    for case, n, params, median in mask_rows:
        print(f"{case[0]:<10}{case[2]:<16}{n:>5}{case[3]:>6}{params:>12,}{median['salun']:>10.4f}"
              f"{median['torch']:>10.4f}{median['salun'] / median['torch']:>13.2f}"
              f"{peak['mask', case[0], 'salun']:>11.1f}{peak['mask', case[0], 'torch']:>11.1f}")
    print("masks identical (asserted) on every model")
    print()
    print(f"Per-sample gradients: per_sample_gradients (vmap, chunk {CHUNK}) vs an autograd.grad loop per "
          f"example; {where}, median of {args.repeats}, untrained models in eval mode; {mem} in MiB")
    print(f"{'model':<10}{'data':<16}{'n':>5}{'params':>12}"
          f"{'salun ex/s':>12}{'loop ex/s':>11}{'salun/loop':>12}{'salun MiB':>11}{'loop MiB':>10}")
    for case, n, params, median in row_rows:
        salun, loop = n / median["salun"], n / median["loop"]
        print(f"{case[0]:<10}{case[2]:<16}{n:>5}{params:>12,}{salun:>12,.0f}{loop:>11,.0f}{salun / loop:>12.2f}"
              f"{peak['rows', case[0], 'salun']:>11.1f}{peak['rows', case[0], 'loop']:>10.1f}")
    print(f"first {CHECK_ROWS} rows agree within atol 1e-5 (asserted) on every model")


if __name__ == "__main__":
    main()
