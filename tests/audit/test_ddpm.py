import math
import time

import numpy as np
import pytest
import torch
from torch import nn

from audit.core.contracts import Subset
from audit.nn.ddpm import Denoiser, NoiseSchedule, denoising_loss, guided_epsilon, sample, train_denoiser
from audit.core.seeds import torch_generator


def digits(count: int | None = None) -> tuple[Subset, float, float]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images / 16.0).astype(np.float32)[:, None]
    mean, std = float(images.mean()), float(images.std())
    x = torch.from_numpy((images - mean) / std)
    y = torch.from_numpy(bunch.target.astype(np.int64))
    return Subset(x[:count], y[:count]), mean, std


class Oracle(nn.Module):
    """The exact ε for data concentrated at one point per label (the last row is the null label's)."""

    def __init__(self, schedule: NoiseSchedule, points: torch.Tensor):
        super().__init__()
        self.schedule = schedule
        self.register_buffer("points", points)
        self.null_label = len(points) - 1

    def forward(self, x_t, t, labels):
        alpha_bar = self.schedule.alpha_bars[t].view(-1, 1, 1, 1)
        return (x_t - alpha_bar.sqrt() * self.points[labels]) / (1 - alpha_bar).sqrt()


def test_linear_schedule_endpoints_and_alpha_bars():
    ho = NoiseSchedule(1000)
    assert ho.betas[0].item() == pytest.approx(1e-4, rel=1e-6)
    assert ho.betas[-1].item() == pytest.approx(0.02, rel=1e-6)
    short = NoiseSchedule(200)
    assert short.betas[0].item() == pytest.approx(5e-4, rel=1e-6)
    assert short.betas[-1].item() == pytest.approx(0.1, rel=1e-6)
    for schedule in (ho, short, NoiseSchedule(200, "cosine")):
        bars = schedule.alpha_bars
        assert bars.dtype == torch.float32 and len(bars) == schedule.steps
        assert torch.all(bars[1:] < bars[:-1]) and torch.all(bars > 0) and torch.all(bars < 1)
        assert torch.allclose(schedule.alphas, 1 - schedule.betas)
        assert torch.allclose(bars, torch.cumprod(schedule.alphas.double(), 0).float())


def test_cosine_schedule_starts_near_one_and_clips_betas():
    cosine = NoiseSchedule(1000, "cosine")
    assert cosine.alpha_bars[0].item() > 0.9999
    assert cosine.betas.max().item() == pytest.approx(0.999, rel=1e-6)
    assert cosine.alpha_bars[-1].item() < 1e-6


@pytest.mark.parametrize("schedule", [NoiseSchedule(0), NoiseSchedule(-3), NoiseSchedule(10, "quadratic")])
def test_validate_rejects_bad_schedules(schedule):
    with pytest.raises(ValueError, match="steps|kind"):
        schedule.validate()


def test_q_sample_has_the_forward_process_mean_and_variance():
    schedule, step, n = NoiseSchedule(200), 60, 40_000
    alpha_bar = schedule.alpha_bars[step].item()
    x0 = torch.tensor([[[[1.5, -2.0], [0.0, 3.0]]]])
    t = torch.full((n,), step, dtype=torch.long)
    x_t = schedule.q_sample(x0.expand(n, -1, -1, -1), t, torch.randn((n, 1, 2, 2), generator=torch_generator("q")))
    mean_tol = 5 * math.sqrt((1 - alpha_bar) / n)
    var_tol = 5 * (1 - alpha_bar) * math.sqrt(2 / (n - 1))
    assert torch.allclose(x_t.mean(0), math.sqrt(alpha_bar) * x0[0], atol=mean_tol)
    assert torch.allclose(x_t.var(0), torch.full((1, 2, 2), 1 - alpha_bar), atol=var_tol)

    steps = torch.tensor([0, 17, 199])
    x0 = torch.randn((3, 1, 4, 4), generator=torch_generator("x0"))
    exact = schedule.alpha_bars[steps].sqrt().view(-1, 1, 1, 1) * x0
    assert torch.equal(schedule.q_sample(x0, steps, torch.zeros_like(x0)), exact)


def test_sampling_with_the_oracle_denoiser_returns_the_data_point():
    schedule = NoiseSchedule(200)
    point = torch.randn((1, 1, 3, 3), generator=torch_generator("point"))
    oracle = Oracle(schedule, torch.cat([point, torch.zeros_like(point)]))
    labels = torch.zeros(20, dtype=torch.long)
    out = sample(oracle, schedule, labels, 0.0, torch_generator("s"), (1, 3, 3))
    assert out.shape == (20, 1, 3, 3)
    assert torch.allclose(out, point.expand_as(out), atol=1e-3)


def test_each_label_lands_at_its_own_point_and_guidance_extrapolates_from_the_null_point():
    schedule = NoiseSchedule(200)
    points = torch.tensor([[2.0, -1.0], [-3.0, 0.5], [0.5, 0.5]]).view(3, 1, 1, 2)
    oracle = Oracle(schedule, points)
    labels = torch.tensor([0, 1, 1, 0, 1, 0])
    plain = sample(oracle, schedule, labels, 0.0, torch_generator("s"), (1, 1, 2))
    assert torch.allclose(plain, points[labels], atol=1e-3)
    w = 2.0
    guided = sample(oracle, schedule, labels, w, torch_generator("s"), (1, 1, 2))
    assert torch.allclose(guided, (1 + w) * points[labels] - w * points[2], atol=1e-3)


def test_sampling_batches_internally_and_clips_the_predicted_x0():
    schedule = NoiseSchedule(50, "cosine")
    points = torch.tensor([[1.0], [-1.0], [0.0]]).view(3, 1, 1, 1)
    oracle = Oracle(schedule, points)
    labels = torch.arange(2).repeat(7)
    out = sample(oracle, schedule, labels, 0.0, torch_generator("s"), (1, 1, 1), batch_size=4)
    assert torch.allclose(out, points[labels], atol=1e-3)
    clipped = sample(oracle, schedule, labels, 0.0, torch_generator("s"), (1, 1, 1), clip=(-0.5, 2.0))
    assert torch.allclose(clipped, points[labels].clamp(-0.5, 2.0), atol=1e-3)


class Known(nn.Module):
    null_label = 5

    def forward(self, x_t, t, labels):
        return torch.zeros_like(x_t) + (10.0 * labels + t).view(-1, 1, 1, 1)


def test_guided_epsilon_is_the_classifier_free_combination():
    x_t = torch.zeros((3, 1, 2, 2))
    t, labels = torch.tensor([1, 2, 3]), torch.tensor([0, 3, 4])
    for w in (0.0, 0.5, 3.0):
        expected = (1 + w) * (10.0 * labels + t) - w * (10.0 * 5 + t)
        assert torch.allclose(guided_epsilon(Known(), x_t, t, labels, w), expected.view(-1, 1, 1, 1).expand_as(x_t))


def state(model: nn.Module) -> list[torch.Tensor]:
    return list(model.state_dict().values())


@pytest.mark.parametrize("arch", ["mlp", "unet"])
def test_equal_generators_give_identical_weights(arch):
    first = Denoiser((1, 8, 8), 10, arch, 16, torch_generator("init"))
    again = Denoiser((1, 8, 8), 10, arch, 16, torch_generator("init"))
    other = Denoiser((1, 8, 8), 10, arch, 16, torch_generator("other"))
    assert all(torch.equal(a, b) for a, b in zip(state(first), state(again)))
    assert not all(torch.equal(a, b) for a, b in zip(state(first), state(other)))


def test_loss_and_samples_are_deterministic_and_leave_the_global_rng_alone():
    global_state = torch.random.get_rng_state()
    schedule = NoiseSchedule(20)
    model = Denoiser((1, 8, 8), 10, "mlp", 32, torch_generator("init"))
    x0 = torch.randn((16, 1, 8, 8), generator=torch_generator("x0"))
    labels = torch.arange(16) % 10
    losses = [denoising_loss(model, schedule, x0, labels, torch_generator("loss"), 0.5).item() for _ in range(2)]
    assert losses[0] == losses[1]
    assert losses[0] != denoising_loss(model, schedule, x0, labels, torch_generator("else"), 0.5).item()
    model.train()
    runs = [sample(model, schedule, labels, 2.0, torch_generator("sample"), (1, 8, 8)) for _ in range(2)]
    assert model.training
    assert torch.equal(runs[0], runs[1]) and runs[0].shape == (16, 1, 8, 8)
    assert torch.equal(torch.random.get_rng_state(), global_state)


def test_training_the_mlp_denoiser_lowers_the_loss():
    data, _, _ = digits(200)
    model = Denoiser((1, 8, 8), 10, "mlp", 64, torch_generator("init"))
    losses = train_denoiser(model, data, NoiseSchedule(100), 20, 2e-3, 50, torch_generator("train"))
    assert len(losses) == 20
    assert losses[-1] < 0.7 * losses[0]


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 16, 16), (1, 14, 14)])
def test_unet_predicts_noise_of_the_input_shape(shape):
    model = Denoiser(shape, 10, "unet", 8, torch_generator("init"))
    x_t = torch.randn((2, *shape), generator=torch_generator("x"))
    out = model(x_t, torch.tensor([0, 99]), torch.tensor([3, model.null_label]))
    assert out.shape == x_t.shape and torch.isfinite(out).all()


@pytest.mark.slow
def test_guided_samples_of_the_mlp_denoiser_are_recognisable_digits():
    from sklearn.linear_model import LogisticRegression

    torch.set_num_threads(2)
    data, _, _ = digits()
    schedule = NoiseSchedule(200, "linear")
    model = Denoiser((1, 8, 8), 10, "mlp", 256, torch_generator("ddpm", "init"))
    start = time.perf_counter()
    losses = train_denoiser(model, data, schedule, 100, 1e-3, 128, torch_generator("ddpm", "train"), p_uncond=0.1)
    trained = time.perf_counter() - start
    labels = torch.arange(10).repeat_interleave(50)
    images = sample(model, schedule, labels, 2.0, torch_generator("ddpm", "sample"), (1, 8, 8))
    classifier = LogisticRegression(max_iter=2000).fit(data.x.flatten(1).numpy(), data.y.numpy())
    accuracy = (classifier.predict(images.flatten(1).numpy()) == labels.numpy()).mean()
    print(f"ddpm digits: trained in {trained:.1f} s (loss {losses[0]:.3f} -> {losses[-1]:.3f}), "
          f"sampled in {time.perf_counter() - start - trained:.1f} s, accuracy {accuracy:.3f}")
    assert accuracy >= 0.8


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_the_unet_trains_and_samples_on_cuda_as_it_does_on_the_cpu(shape):
    data = Subset(torch.randn((64, *shape), generator=torch_generator("cuda data")), torch.arange(64) % 10)
    schedule = NoiseSchedule(20)
    results = {}
    for device in ("cpu", "cuda"):
        model = Denoiser(shape, 10, "unet", 16, torch_generator("init")).to(device)
        losses = train_denoiser(model, data.to(device), schedule, 2, 1e-3, 32, torch_generator("train"))
        images = sample(model, schedule, torch.arange(10), 2.0, torch_generator("sample"), shape, clip=(-3.0, 3.0))
        assert images.device.type == device and torch.isfinite(images).all()
        results[device] = (losses, images.cpu())
    # the same draws on either device; cuDNN's TF32 convolutions round differently
    assert results["cuda"][0] == pytest.approx(results["cpu"][0], rel=1e-2)
    assert torch.allclose(results["cuda"][1], results["cpu"][1], atol=5e-2)
