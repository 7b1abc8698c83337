"""The losses of SalUn (generation) and DiMUM on a small class-conditional denoiser."""

import torch
from torch import nn

from audit.nn.ddpm import Denoiser, NoiseSchedule, denoising_loss
from unlearners.generation_losses import (dimum_loss, fixed_pattern, replacement_classes, salun_forgetting_loss,
                                          salun_generation_loss)

SCHEDULE = NoiseSchedule(steps=50)


class ClassBlind(nn.Module):
    """A denoiser whose output ignores the class: nothing for SalUn's loss to move."""

    num_classes, null_label = 3, 3

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(0.5))

    def forward(self, x_t, t, labels):
        return self.scale * x_t


def batch(n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 4, 4, generator=g), torch.randint(0, 3, (n,), generator=g)


def test_the_replacement_class_is_the_next_one():
    assert replacement_classes(torch.tensor([0, 1, 9]), 10).tolist() == [1, 2, 0]


def test_the_forgetting_loss_is_zero_for_a_class_blind_denoiser_and_not_for_a_conditional_one():
    x, y = batch()
    assert salun_forgetting_loss(ClassBlind(), SCHEDULE, x, y, torch.Generator().manual_seed(1)).item() == 0.0
    model = Denoiser((1, 4, 4), 3, width=32, generator=torch.Generator().manual_seed(0))
    assert salun_forgetting_loss(model, SCHEDULE, x, y, torch.Generator().manual_seed(1)).item() > 0


def test_the_replacement_branch_is_a_fixed_target():
    model = Denoiser((1, 4, 4), 3, width=32, generator=torch.Generator().manual_seed(0))
    x, y = batch()
    loss = salun_forgetting_loss(model, SCHEDULE, x, y, torch.Generator().manual_seed(1))
    loss.backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad()
    from audit.nn.ddpm import noised

    x_t, t, _ = noised(SCHEDULE, x, torch.Generator().manual_seed(1))
    target = model(x_t, t, replacement_classes(y, 3)).detach()
    ((model(x_t, t, y) - target) ** 2).mean().backward()
    assert all(torch.allclose(grads[name], p.grad) for name, p in model.named_parameters())


def test_minimising_it_makes_the_forgotten_class_denoise_like_its_replacement():
    model = Denoiser((1, 4, 4), 3, width=32, generator=torch.Generator().manual_seed(0))
    x, y = batch(32)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for step in range(60):
        loss = salun_forgetting_loss(model, SCHEDULE, x, y, torch.Generator().manual_seed(step))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0]


def test_the_combined_losses_add_their_terms_with_one_generator():
    model = Denoiser((1, 4, 4), 3, width=32, generator=torch.Generator().manual_seed(0))
    forget, retain = batch(8, 1), batch(8, 2)
    g = lambda: torch.Generator().manual_seed(5)  # noqa: E731

    def replay(*terms):
        generator, total = g(), 0.0
        for fn, weight in terms:
            total = total + weight * fn(generator)
        return total

    expected = replay((lambda gen: salun_forgetting_loss(model, SCHEDULE, *forget, gen), 1.0),
                      (lambda gen: denoising_loss(model, SCHEDULE, *retain, gen), 1e-3))
    assert torch.equal(salun_generation_loss(model, SCHEDULE, forget, retain, 1e-3, g()), expected)
    alternative = fixed_pattern((8, 1, 4, 4))
    expected = replay((lambda gen: denoising_loss(model, SCHEDULE, alternative, forget[1], gen), 1.0),
                      (lambda gen: denoising_loss(model, SCHEDULE, *retain, gen), 1.0))
    assert torch.equal(dimum_loss(model, SCHEDULE, alternative, forget[1], retain, g()), expected)
    assert (alternative == 0).all()
