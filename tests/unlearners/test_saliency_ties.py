"""SalUn's mask is a function of the gradient alone, ties included."""

from __future__ import annotations

import torch

from unlearners.saliency import saliency_mask


def test_entries_tied_at_the_threshold_go_to_the_earlier_ones_on_every_call():
    gradient = {"a.weight": torch.ones(40, 30), "a.bias": torch.ones(30), "b.weight": torch.full((10, 30), 2.0)}
    masks = [saliency_mask(gradient, 0.5) for _ in range(20)]
    total = sum(g.numel() for g in gradient.values())
    for mask in masks:
        assert sum(int(m.sum()) for m in mask.values()) == round(0.5 * total)
        assert bool(mask["b.weight"].all())  # the largest entries, whatever the ties below them
        assert bool(mask["a.weight"].flatten()[: round(0.5 * total) - 300].all())
        assert not bool(mask["a.bias"].any())


def test_a_gradient_with_many_exact_ties_gives_one_mask():
    generator = torch.Generator().manual_seed(0)
    gradient = {"w": torch.randint(0, 3, (200, 100), generator=generator).float(), "v": torch.zeros(5000)}
    first = saliency_mask(gradient, 0.3)
    for _ in range(10):
        again = saliency_mask(gradient, 0.3)
        assert all(torch.equal(first[name], again[name]) for name in first)
