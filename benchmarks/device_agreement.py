"""Section (a) of benchmarks/gpu_check.py: every model family trained on two devices from the same
init and the same batches, and how far the results drift apart.

Classifiers (every built-in arch) are built by `build_model` from one generator on each device and
trained with salun's own loop (`run_pass`, SGD with momentum and weight decay) on the same random
3x32x32 batches; the DDPM denoisers (MLP on 1x8x8, UNet on 3x32x32) are trained with
`train_denoiser` and sampled with `sample`, every draw from a CPU generator of the same seed.

A difference is max |a - b| / max(1, max |a|), `a` the CPU's tensor: a relative error for large
values, an absolute one for small. TOLERANCE says what counts as agreement.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from memory import sync  # benchmarks/memory.py, beside this script

from audit.core.contracts import Subset
from audit.core.seeds import torch_generator
from audit.nn.ddpm import Denoiser, NoiseSchedule, sample, train_denoiser
from audit.nn.models import build_model
from audit.nn.training import make_optimizer, run_pass

# float32 rounding differs between devices (reduction order, TF32 convolutions in cuDNN's default);
# a few training steps keep it near 1e-3, a 50-step sampling chain amplifies it
TOLERANCE = {"logits": 1e-3, "weights": 1e-3, "samples": 1e-2}
CLASSES = 10


@dataclass(frozen=True)
class AgreementSizes:
    images: int             # random training images per model
    batch: int
    passes: int             # shuffled passes over them (steps = passes * images / batch)
    options: dict           # arch -> its model options
    unet_width: int
    diffusion_steps: int
    samples: int            # images each denoiser samples


def difference(reference: torch.Tensor, other: torch.Tensor) -> float:
    reference, other = reference.detach().double().cpu(), other.detach().double().cpu()
    if reference.numel() == 0:
        return 0.0
    return float((reference - other).abs().max() / max(1.0, float(reference.abs().max())))


def state_difference(reference: torch.nn.Module, other: torch.nn.Module) -> float:
    theirs = other.state_dict()
    return max(difference(tensor, theirs[name]) for name, tensor in reference.state_dict().items()
               if tensor.is_floating_point())


def _train_classifier(arch: str, options: dict, data: Subset, sizes: AgreementSizes, device: str):
    model = build_model(arch, options, tuple(data.x.shape[1:]), CLASSES, torch_generator("gpu-check", arch), device)
    optimizer = make_optimizer(model.parameters(), "sgd", 0.05, 0.9, 5e-4)
    order = torch_generator("gpu-check-order", arch)
    on_device = data.to(device)
    started = time.perf_counter()
    for _ in range(sizes.passes):
        run_pass(model, on_device, batch_size=sizes.batch, generator=order, optimizer=optimizer)
    sync(device)
    seconds = time.perf_counter() - started
    model.eval()
    with torch.no_grad():
        logits = model(on_device.x[: sizes.batch])
    return model, logits, seconds


def classifier_agreement(arch: str, sizes: AgreementSizes, device: str) -> dict:
    generator = torch_generator("gpu-check-data")
    data = Subset(torch.randn(sizes.images, 3, 32, 32, generator=generator),
                  torch.randint(CLASSES, (sizes.images,), generator=generator))
    options = sizes.options.get(arch, {})
    cpu_model, cpu_logits, cpu_seconds = _train_classifier(arch, options, data, sizes, "cpu")
    model, logits, seconds = _train_classifier(arch, options, data, sizes, device)
    row = {"kind": "classifier", "arch": arch, "options": options,
           "steps": sizes.passes * -(-sizes.images // sizes.batch),
           "logits": difference(cpu_logits, logits), "weights": state_difference(cpu_model, model),
           "seconds": {"cpu": cpu_seconds, "device": seconds}}
    row["within_tolerance"] = row["logits"] <= TOLERANCE["logits"] and row["weights"] <= TOLERANCE["weights"]
    return row


def _train_and_sample(arch: str, shape: tuple[int, int, int], width: int, data: Subset, sizes: AgreementSizes,
                      device: str):
    schedule = NoiseSchedule(sizes.diffusion_steps)
    model = Denoiser(shape, CLASSES, arch, width, torch_generator("gpu-check-ddpm", arch)).to(device)
    generator = torch_generator("gpu-check-ddpm-run", arch)
    started = time.perf_counter()
    train_denoiser(model, data, schedule, sizes.passes, 1e-3, sizes.batch, generator)
    labels = torch.arange(sizes.samples) % CLASSES
    images = sample(model, schedule, labels, 2.0, generator, shape, clip=(-3.0, 3.0))
    sync(device)
    return model, images, time.perf_counter() - started


def ddpm_agreement(arch: str, sizes: AgreementSizes, device: str) -> dict:
    shape = (1, 8, 8) if arch == "mlp" else (3, 32, 32)
    width = 128 if arch == "mlp" else sizes.unet_width
    generator = torch_generator("gpu-check-ddpm-data", arch)
    data = Subset(torch.randn(sizes.images, *shape, generator=generator).clamp(-3, 3),
                  torch.randint(CLASSES, (sizes.images,), generator=generator))
    cpu_model, cpu_images, cpu_seconds = _train_and_sample(arch, shape, width, data, sizes, "cpu")
    model, images, seconds = _train_and_sample(arch, shape, width, data, sizes, device)
    row = {"kind": "ddpm", "arch": arch, "width": width, "diffusion_steps": sizes.diffusion_steps,
           "weights": state_difference(cpu_model, model), "samples": difference(cpu_images, images),
           "seconds": {"cpu": cpu_seconds, "device": seconds}}
    row["within_tolerance"] = row["weights"] <= TOLERANCE["weights"] and row["samples"] <= TOLERANCE["samples"]
    return row


def device_agreement(archs: tuple[str, ...], sizes: AgreementSizes, device: str) -> dict:
    """Section (a): one row per classifier arch and per denoiser, CPU against `device`."""
    rows = [classifier_agreement(arch, sizes, device) for arch in archs]
    rows += [ddpm_agreement(arch, sizes, device) for arch in ("mlp", "unet")]
    flags = {}
    if device.startswith("cuda"):
        flags = {"cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
                 "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
                 "cudnn_deterministic": torch.backends.cudnn.deterministic}
    return {"against": device, "tolerance": TOLERANCE, "backend_flags": flags, "rows": rows,
            "all_within_tolerance": all(row["within_tolerance"] for row in rows)}
