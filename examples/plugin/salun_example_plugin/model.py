"""`example_tiny_mlp`: one hidden layer, its output the penultimate features."""

from __future__ import annotations

import math

import torch
from torch import nn

from audit.api import Classifier, SalunInputError


class TinyMLP(Classifier):
    def __init__(self, input_shape: tuple[int, ...], num_classes: int, hidden: int):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), hidden), nn.ReLU())
        self.head = nn.Linear(hidden, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def tiny_mlp(input_shape: tuple[int, ...], num_classes: int, hidden: int = 16) -> Classifier:
    """One hidden layer of `hidden` units on the flattened image; features = the hidden layer."""
    if hidden < 1:
        raise SalunInputError(f"model.hidden: must be at least 1, got {hidden}")
    return TinyMLP(input_shape, num_classes, hidden)
