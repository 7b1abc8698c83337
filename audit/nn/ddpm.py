"""A small class-conditional DDPM with classifier-free guidance.

Ho et al. 2020 (denoising diffusion, ε-prediction, ancestral sampling) with the
classifier-free guidance of Ho & Salimans 2022: one network learns ε̂(x_t, t, c) and, by
training with labels dropped to a null label, ε̂(x_t, t, ∅). Two denoisers: an MLP for
8×8 digits (trains on CPU in minutes) and a small two-resolution UNet for 28×28 / 32×32
images (GPU-sized). Every random draw comes from an explicit CPU `torch.Generator`, so a
generator fixes the weights, the training run and the samples on any device.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from audit.core.contracts import Subset
from audit.nn.models import initialise
from audit.nn.training import batches, descend, make_optimizer

KINDS = ("linear", "cosine")


@dataclass(frozen=True)
class NoiseSchedule:
    """β_1..β_T of the forward process. "linear": Ho et al.'s β_start..β_end for 1,000
    steps, scaled by 1000/steps for other lengths; "cosine": Nichol & Dhariwal (s = 0.008),
    whose samples need `sample(..., clip=...)`."""

    steps: int
    kind: str = "linear"
    beta_start: float = 1e-4
    beta_end: float = 0.02

    def validate(self) -> None:
        if not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"noise schedule: steps must be an integer >= 1, got {self.steps!r}")
        if self.kind not in KINDS:
            raise ValueError(f"noise schedule: unknown kind {self.kind!r}; expected one of {', '.join(KINDS)}")
        if self.kind == "linear" and not 0 < self.beta_start <= self.beta_end < 1:
            raise ValueError(
                f"noise schedule: need 0 < beta_start <= beta_end < 1, got {self.beta_start}, {self.beta_end}"
            )

    @functools.cached_property
    def _table(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(β, ᾱ) in float64, from which the float32 properties are cast."""
        self.validate()
        if self.kind == "linear":
            scale = 1000 / self.steps
            betas = torch.linspace(self.beta_start * scale, self.beta_end * scale, self.steps, dtype=torch.float64)
        else:
            s = 0.008
            f = torch.cos((torch.arange(self.steps + 1, dtype=torch.float64) / self.steps + s) / (1 + s) * math.pi / 2) ** 2
            betas = 1 - f[1:] / f[:-1]
        betas = betas.clamp(max=0.999)
        return betas, torch.cumprod(1 - betas, 0)

    @functools.cached_property
    def betas(self) -> torch.Tensor:
        return self._table[0].float()

    @functools.cached_property
    def alphas(self) -> torch.Tensor:
        return (1 - self._table[0]).float()

    @functools.cached_property
    def alpha_bars(self) -> torch.Tensor:
        return self._table[1].float()

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(ᾱ_t) x0 + sqrt(1 − ᾱ_t) noise, for a step index t (N,) per example."""
        alpha_bar = self.alpha_bars.to(x0.device)[t].view(-1, *[1] * (x0.dim() - 1))
        return alpha_bar.sqrt() * x0 + (1 - alpha_bar).sqrt() * noise


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([args.sin(), args.cos()], dim=1)


class _MLPBlock(nn.Module):
    def __init__(self, width: int, emb: int):
        super().__init__()
        self.norm, self.inner, self.outer = nn.LayerNorm(width), nn.Linear(width, width), nn.Linear(width, width)
        self.emb = nn.Linear(emb, width)

    def forward(self, h: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        return h + self.outer(F.silu(self.inner(F.silu(self.norm(h))) + self.emb(e)))


def _groups(channels: int) -> int:
    return math.gcd(channels, 8)


class _ResBlock(nn.Module):
    def __init__(self, inputs: int, outputs: int, emb: int):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(_groups(inputs), inputs), nn.Conv2d(inputs, outputs, 3, padding=1)
        self.emb = nn.Linear(emb, outputs)
        self.norm2, self.conv2 = nn.GroupNorm(_groups(outputs), outputs), nn.Conv2d(outputs, outputs, 3, padding=1)
        self.skip = nn.Conv2d(inputs, outputs, 1) if inputs != outputs else nn.Identity()

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x))) + self.emb(e)[:, :, None, None]
        return self.skip(x) + self.conv2(F.silu(self.norm2(h)))


class _UNet(nn.Module):
    """Two resolutions: `width` channels at full size, 2·width at half size."""

    def __init__(self, channels: int, width: int, emb: int):
        super().__init__()
        wide = 2 * width
        self.stem = nn.Conv2d(channels, width, 3, padding=1)
        self.down = nn.ModuleList([_ResBlock(width, width, emb), _ResBlock(width, width, emb)])
        self.pool = nn.Conv2d(width, wide, 3, stride=2, padding=1)
        self.mid = nn.ModuleList([_ResBlock(wide, wide, emb) for _ in range(3)])
        self.lift = nn.Conv2d(wide, width, 3, padding=1)
        self.up = nn.ModuleList([_ResBlock(2 * width, width, emb), _ResBlock(width, width, emb)])
        self.norm, self.head = nn.GroupNorm(_groups(width), width), nn.Conv2d(width, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        for block in self.down:
            h = block(h, e)
        skip, h = h, self.pool(h)
        for block in self.mid:
            h = block(h, e)
        h = self.lift(F.interpolate(h, size=skip.shape[-2:], mode="nearest"))
        h = torch.cat([h, skip], dim=1)
        for block in self.up:
            h = block(h, e)
        return self.head(F.silu(self.norm(h)))


class Denoiser(nn.Module):
    """ε̂(x_t, t, label); label `num_classes` (`null_label`) means unconditional.

    arch "mlp" (8×8 digits): `width` hidden units, three residual blocks. arch "unet"
    (28×28 / 32×32, GPU): `width` base channels; 64 suits MNIST/CIFAR-sized data.
    """

    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, arch: str = "mlp",
                 width: int = 256, generator: torch.Generator | None = None):
        super().__init__()
        if arch not in ("mlp", "unet"):
            raise ValueError(f"denoiser: unknown arch {arch!r}; expected mlp or unet")
        self.input_shape, self.num_classes, self.null_label, self.arch = tuple(input_shape), num_classes, num_classes, arch
        with torch.device("meta"):  # weights come from `generator` below, never from the global RNG
            emb = width if arch == "mlp" else 4 * width
            self.emb_dim = emb
            self.time = nn.Sequential(nn.Linear(emb, emb), nn.SiLU(), nn.Linear(emb, emb))
            self.label = nn.Embedding(num_classes + 1, emb)
            if arch == "mlp":
                size = math.prod(self.input_shape)
                self.stem = nn.Linear(size, width)
                self.blocks = nn.ModuleList([_MLPBlock(width, emb) for _ in range(3)])
                self.head = nn.Sequential(nn.LayerNorm(width), nn.SiLU(), nn.Linear(width, size))
            else:
                self.unet = _UNet(self.input_shape[0], width, emb)
        self.to_empty(device="cpu")
        initialise(self, generator if generator is not None else torch.Generator())

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        e = F.silu(self.time(timestep_embedding(t, self.emb_dim)) + self.label(labels))
        if self.arch == "unet":
            return self.unet(x_t, e)
        h = self.stem(x_t.flatten(1))
        for block in self.blocks:
            h = block(h, e)
        return self.head(h).view_as(x_t)


def noised(schedule: NoiseSchedule, x0: torch.Tensor,
           generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x_t, t, ε) with t ~ U{0..steps−1} and ε ~ N(0, I), drawn on the CPU so every device
    sees the same numbers."""
    t = torch.randint(schedule.steps, (len(x0),), generator=generator).to(x0.device)
    noise = torch.randn(x0.shape, generator=generator).to(x0.device)
    return schedule.q_sample(x0, t, noise), t, noise


def denoising_loss(model: nn.Module, schedule: NoiseSchedule, x0: torch.Tensor, labels: torch.Tensor,
                   generator: torch.Generator, p_uncond: float = 0.0) -> torch.Tensor:
    """E‖ε̂(x_t, t, c) − ε‖² with t ~ U{0..steps−1}, ε ~ N(0, I) and c dropped to ∅ w.p. p_uncond."""
    n, device = len(x0), x0.device
    x_t, t, noise = noised(schedule, x0, generator)
    if p_uncond > 0:
        drop = (torch.rand(n, generator=generator) < p_uncond).to(device)
        labels = torch.where(drop, torch.full_like(labels, model.null_label), labels)
    return F.mse_loss(model(x_t, t, labels), noise)


def guided_epsilon(model: nn.Module, x_t: torch.Tensor, t: torch.Tensor, labels: torch.Tensor,
                   guidance: float) -> torch.Tensor:
    """(1 + w) ε̂(x_t, t, c) − w ε̂(x_t, t, ∅) with w = guidance; `model` needs `null_label`."""
    if guidance == 0:
        return model(x_t, t, labels)
    null = torch.full_like(labels, model.null_label)
    conditional, unconditional = model(torch.cat([x_t, x_t]), torch.cat([t, t]), torch.cat([labels, null])).chunk(2)
    return (1 + guidance) * conditional - guidance * unconditional


def _device(model: nn.Module, fallback: torch.device) -> torch.device:
    first = next(itertools.chain(model.parameters(), model.buffers()), None)
    return fallback if first is None else first.device


@torch.no_grad()
def sample(model: nn.Module, schedule: NoiseSchedule, labels: torch.Tensor, guidance: float,
           generator: torch.Generator, shape: tuple[int, int, int], batch_size: int = 512,
           clip: tuple[float, float] | None = None) -> torch.Tensor:
    """x_0 for each label by DDPM ancestral sampling from x_T ~ N(0, I), on the model's device.

    Each step draws x_{t−1} ~ N(μ(x_t, ε̂), β̃_t I) with the posterior variance
    β̃_t = (1 − ᾱ_{t−1}) / (1 − ᾱ_t) · β_t (Ho et al.'s σ_t² = β̃_t choice; no noise at the
    last step), ε̂ the guided estimate. Labels go `batch_size` at a time. `clip` = (low, high)
    clamps the predicted x_0 to the (standardised) data range and takes the posterior mean
    from it; the cosine schedule needs it, as its last β ≈ 0.999 amplifies errors in ε̂ ~30×.
    """
    device = _device(model, labels.device)
    betas, alpha_bars = (a.tolist() for a in schedule._table)
    was_training = model.training
    model.eval()
    try:
        out = []
        for chunk in labels.to(device).split(batch_size):
            x = torch.randn((len(chunk), *shape), generator=generator).to(device)
            for step in reversed(range(schedule.steps)):
                beta, alpha_bar = betas[step], alpha_bars[step]
                t = torch.full((len(chunk),), step, dtype=torch.long, device=device)
                eps = guided_epsilon(model, x, t, chunk, guidance)
                if clip is None:
                    x = (x - beta / math.sqrt(1 - alpha_bar) * eps) / math.sqrt(1 - beta)
                else:
                    previous = alpha_bars[step - 1] if step > 0 else 1.0
                    x0 = ((x - math.sqrt(1 - alpha_bar) * eps) / math.sqrt(alpha_bar)).clamp(*clip)
                    x = (math.sqrt(previous) * beta * x0 + math.sqrt(1 - beta) * (1 - previous) * x) / (1 - alpha_bar)
                if step > 0:
                    variance = (1 - alpha_bars[step - 1]) / (1 - alpha_bar) * beta
                    x = x + math.sqrt(variance) * torch.randn(x.shape, generator=generator).to(device)
            out.append(x)
        return torch.cat(out) if out else torch.empty((0, *shape), device=device)
    finally:
        model.train(was_training)


def train_denoiser(model: nn.Module, data: Subset, schedule: NoiseSchedule, epochs: int, lr: float,
                   batch_size: int, generator: torch.Generator, p_uncond: float = 0.1) -> list[float]:
    """Adam on the denoising loss for `epochs` shuffled passes; the mean loss of each epoch."""
    data = data.to(_device(model, data.x.device))
    optimizer = make_optimizer(model.parameters(), "adam", lr)
    model.train()
    losses = []
    for _ in range(epochs):
        steps = (denoising_loss(model, schedule, x, y, generator, p_uncond) for x, y in batches(data, batch_size, generator))
        losses.append(descend(steps, optimizer))
    return losses
