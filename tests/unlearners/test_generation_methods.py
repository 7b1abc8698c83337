"""Forgetting one class of a small class-conditional denoiser: SalUn, DiMUM and fine-tuning."""

import copy

import pytest
import torch
from torch import nn

from audit.core.contracts import Subset
from audit.nn.ddpm import Denoiser, NoiseSchedule, sample, train_denoiser
from unlearners.generation_methods import dimum, finetune_generation, salun_generation

SCHEDULE = NoiseSchedule(steps=100)
CLIP = (-1.5, 1.5)


def blobs(label, n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    sign = 1.0 if label == 0 else -1.0
    return Subset(sign + 0.1 * torch.randn(n, 1, 4, 4, generator=g), torch.full((n,), label))


def both(seed=0):
    a, b = blobs(0, seed=seed), blobs(1, seed=seed + 1)
    return Subset(torch.cat([a.x, b.x]), torch.cat([a.y, b.y]))


@pytest.fixture(scope="module")
def original():
    model = Denoiser((1, 4, 4), 2, width=32, generator=torch.Generator().manual_seed(0))
    train_denoiser(model, both(), SCHEDULE, 100, 3e-3, 32, torch.Generator().manual_seed(0))
    return model


def bright_share(model, label):
    """Share of the samples for `label` that come out bright (class 0's look)."""
    x = sample(model, SCHEDULE, torch.full((64,), label), 0.0, torch.Generator().manual_seed(9), (1, 4, 4), clip=CLIP)
    return float((x.flatten(1).mean(1) > 0).float().mean())


def test_the_original_draws_each_class(original):
    assert bright_share(original, 0) > 0.9 and bright_share(original, 1) < 0.1


def test_salun_moves_the_forgotten_class_onto_its_replacement_and_keeps_the_rest(original):
    before = copy.deepcopy(original.state_dict())
    unlearned = salun_generation(original, SCHEDULE, blobs(0, seed=3), blobs(1, seed=4),
                                 torch.Generator().manual_seed(1), alpha=1.0, lr=3e-3, iterations=200, batch_size=32)
    assert all(torch.equal(before[k], v) for k, v in original.state_dict().items())  # input untouched
    assert bright_share(unlearned, 0) < 0.2 and bright_share(unlearned, 1) < 0.1
    moved = [~torch.isclose(p, before[n]) for n, p in unlearned.state_dict().items() if n in dict(original.named_parameters())]
    share = float(sum(m.sum() for m in moved) / sum(m.numel() for m in moved))
    assert 0 < share <= 0.5 + 1e-6  # only salient weights move


def test_dimum_memorises_the_alternative_for_the_forgotten_condition(original):
    unlearned = dimum(original, SCHEDULE, 0, blobs(1, seed=5).x, blobs(1, seed=4), torch.Generator().manual_seed(1),
                      lr=3e-3, iterations=200, batch_size=32)
    assert bright_share(unlearned, 0) < 0.2 and bright_share(unlearned, 1) < 0.1


def test_finetuning_on_the_retained_class_keeps_it_and_is_deterministic(original):
    def run():
        return finetune_generation(original, SCHEDULE, blobs(1, seed=4), torch.Generator().manual_seed(1),
                                   lr=1e-3, iterations=30, batch_size=32)

    first, second = run(), run()
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))
    assert not all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), original.state_dict().values()))
    assert bright_share(first, 1) < 0.1
    assert isinstance(first, nn.Module)
