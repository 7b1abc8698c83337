"""The CIFAR-10 networks side by side: parameters, forward FLOPs and the time of one training step.

For each model (fastcifar with its default widths, resnet18 with width 64), built from a seed
as salun builds it: its parameter count, the FLOPs of one forward pass over one 3x32x32 image
(torch.utils.flop_counter), and the wall time of one SGD step (forward, cross-entropy,
backward, update) on a batch of random 3x32x32 tensors, after one warm-up step; `--repeats`
steps are timed and their median is reported. Writes a markdown table to `--out`.

Run: python benchmarks/cifar_models.py [--batch 1024] [--repeats 3] [--threads N] [--device cpu]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import torch
from memory import sync  # benchmarks/memory.py, beside this script
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from audit.core.seeds import torch_generator
from audit.nn.models import build_model

MODELS = (("fastcifar", {}), ("resnet18", {"width": 64}))
SHAPE = (3, 32, 32)


def forward_flops(model: torch.nn.Module, device: str) -> int:
    model.eval()
    with FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, *SHAPE, device=device))
    return counter.get_total_flops()


def step_seconds(model: torch.nn.Module, batch: int, repeats: int, device: str) -> float:
    """The median wall time of one SGD step on a random batch, after one warm-up step."""
    generator = torch_generator("benchmark-batch")
    x = torch.randn(batch, *SHAPE, generator=generator).to(device)
    y = torch.randint(10, (batch,), generator=generator).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    model.train()
    times = []
    for _ in range(repeats + 1):
        sync(device)
        started = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
        sync(device)
        times.append(time.perf_counter() - started)
    return statistics.median(times[1:])


def measure(batch: int, repeats: int, device: str) -> list[dict]:
    rows = []
    for arch, options in MODELS:
        model = build_model(arch, options, SHAPE, 10, torch_generator("benchmark-init"), device)
        rows.append({
            "model": arch if not options else f"{arch} ({', '.join(f'{k} {v}' for k, v in options.items())})",
            "params": sum(p.numel() for p in model.parameters()),
            "gflops": forward_flops(model, device) / 1e9,
            "step_s": step_seconds(model, batch, repeats, device),
        })
    return rows


def table(rows: list[dict], batch: int, repeats: int, device: str, load: float) -> str:
    slowest = max(row["step_s"] for row in rows)
    where = (torch.cuda.get_device_name(device) if device.startswith("cuda")
             else f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads")
    lines = [
        f"One SGD step (forward + backward + update) on {batch} random 3x32x32 images, median of "
        f"{repeats} after a warm-up, on {device} ({where}), torch {torch.__version__}; the machine's "
        f"1-minute load average was {load:.1f} when the run began.",
        "",
        "| model | parameters | forward GFLOPs / image | step on a batch of "
        f"{batch} (s) | images / s | speed-up |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(f"| {row['model']} | {row['params']:,} | {row['gflops']:.3f} | {row['step_s']:.2f} | "
                     f"{batch / row['step_s']:,.0f} | {slowest / row['step_s']:.1f}x |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads (default: torch's)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "cifar_models.md"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    load = os.getloadavg()[0]
    text = table(measure(args.batch, args.repeats, args.device), args.batch, args.repeats, args.device, load)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text, end="")


if __name__ == "__main__":
    main()
