"""Canaries of the one-run privacy audit: m pool points given a wrong label, of which each model
trains on a random half (its own draw) and never sees the rest.

A wrong label is what a model can only fit by memorising the example, so a canary it trained
on stands out from one it did not; the true-label copy of every canary is left out of the
training set either way, so that only the inclusion of the mislabelled copy differs.
"""

from __future__ import annotations

import numpy as np

from audit.core.contracts import Subset
from audit.core.errors import SalunInputError
from audit.core.seeds import numpy_generator


def canary_positions(pool_size: int, count: int, seed: int) -> np.ndarray:
    """Sorted pool positions of the `count` canaries."""
    if count > pool_size:
        raise SalunInputError(f"train.dp.canaries: {count} canaries but the pool holds {pool_size} examples")
    return np.sort(numpy_generator("canaries", pool_size, count, seed).choice(pool_size, count, replace=False))


def canary_labels(labels: np.ndarray, num_classes: int, seed: int) -> np.ndarray:
    """Each canary's wrong label: its own shifted by a random 1 .. num_classes - 1."""
    shift = numpy_generator("canary labels", len(labels), seed).integers(1, num_classes, len(labels))
    return (np.asarray(labels) + shift) % num_classes


def canary_inclusion(count: int, seed: int, model: int | str) -> np.ndarray:
    """(count,) bool, exactly half True: the canaries model `model` trains on."""
    included = np.zeros(count, bool)
    included[numpy_generator("canary inclusion", count, seed, model).permutation(count)[: count // 2]] = True
    return included


def canary_training_set(pool: Subset, num_classes: int, count: int, seed: int, model: int | str) -> Subset:
    """The pool without its canaries, then the included canaries with their wrong labels."""
    import torch

    positions = canary_positions(len(pool), count, seed)
    kept = torch.from_numpy(np.setdiff1d(np.arange(len(pool)), positions))
    chosen = torch.from_numpy(positions[canary_inclusion(count, seed, model)])
    wrong = torch.from_numpy(canary_labels(pool.y[torch.from_numpy(positions)].numpy(), num_classes, seed))
    wrong = wrong[torch.from_numpy(canary_inclusion(count, seed, model))].to(pool.y.dtype)
    return Subset(torch.cat([pool.x[kept], pool.x[chosen]]), torch.cat([pool.y[kept], wrong]))
