"""Training-time augmentation policies (Falcao & Cordeiro): random crop and horizontal flip,
then at most one automatic policy, drawn independently for every image of a batch.

A policy works on pixels in [0, 1]: the standardised batch is mapped back to pixels,
augmented image by image with torchvision's v2 transforms (in float, so nothing is
quantised), and standardised again. The work is done on the CPU even for a batch on a
GPU: single small images would cost a kernel launch per operation there, and on the CPU
the augmented batch depends on the run's generator alone, not on the device.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import torch

from audit.config.sections import AUGMENTATION_POLICIES as POLICIES

if TYPE_CHECKING:
    from torchvision.transforms import v2

    from audit.core.contracts import Augment



def make_augmentation(policy: str, channel_mean: np.ndarray, channel_std: np.ndarray) -> Augment | None:
    """The policy as a function of (standardised batch, generator); None for `none`.

    `channel_mean` and `channel_std` are the statistics the images were standardised with.
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown augmentation policy {policy!r}; expected one of {', '.join(POLICIES)}")
    if policy == "none":
        return None
    mean = torch.as_tensor(channel_mean, dtype=torch.float32).reshape(-1, 1, 1)
    std = torch.as_tensor(channel_std, dtype=torch.float32).reshape(-1, 1, 1)
    fill = tuple(float(m) for m in np.ravel(channel_mean))

    def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        seed = int(torch.randint(2**63 - 1, (), generator=generator, device=generator.device))
        transform = _pipeline(policy, x.shape[-2], x.shape[-1], fill)
        # pixels are in [0, 1] by the data contract; the clamp removes the round-off of un-standardising
        pixels = (x.detach().cpu().float() * std + mean).clamp_(0.0, 1.0)
        # torchvision draws from the global CPU generator: lend it the run's randomness, then restore it
        with torch.random.fork_rng(devices=[]), _one_thread():
            torch.default_generator.manual_seed(seed)
            pixels = torch.stack([transform(image) for image in pixels])
        return ((pixels - mean) / std).to(device=x.device, dtype=x.dtype)

    return augment


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Intra-op threads only slow down operations on single small images."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@functools.lru_cache(maxsize=32)
def _pipeline(policy: str, height: int, width: int, fill: tuple[float, ...]) -> v2.Compose:
    # imported here: the spec reads POLICIES and need not pay for importing torchvision
    from torchvision.transforms import v2

    then = {
        "crop_flip": lambda: [],
        "randaugment": lambda: [v2.RandAugment()],
        "autoaugment": lambda: [v2.AutoAugment(v2.AutoAugmentPolicy.CIFAR10)],
        "trivialaugment": lambda: [v2.TrivialAugmentWide()],
        "augmix": lambda: [v2.AugMix()],
        # erased pixels take the channel mean, which is 0 in standardised units
        "random_erasing": lambda: [v2.RandomErasing(value=fill)],
    }[policy]
    crop = v2.RandomCrop((height, width), padding=min(height, width) // 8)
    return v2.Compose([crop, v2.RandomHorizontalFlip(), *then()])
