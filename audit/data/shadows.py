"""Shadow models for per-example membership inference: who is IN, and what each forgets.

Shadow s trains on the pool points where `membership[s]` is True. Every point is IN for
exactly half of the shadows (a random half per point, as in LiRA), so per-example IN and
OUT distributions rest on equal numbers of models. For U-LiRA, shadow s is unlearned with
its own forget set, drawn from its IN half: the audit's forget points that it trained on,
topped up with other IN points to the audit's forget-set size, so that every audited forget
point is "trained then unlearned" in the shadows where it is IN and "never trained" elsewhere.
"""

from __future__ import annotations

import functools

import numpy as np

from audit.data.datasets import AuditData
from audit.core.seeds import numpy_generator


def keep_per_column(mask: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """`mask` with exactly `count` True entries kept per column, chosen at random (each column
    needs at least `count`): references matched in number for every example."""
    mask = np.asarray(mask, dtype=bool)
    if np.any(mask.sum(axis=0) < count):
        raise ValueError(f"every column needs at least {count} entries to keep")
    # the rank of a uniform draw within its column is a uniform random permutation of its entries
    ranks = np.argsort(np.argsort(np.where(mask, rng.random(mask.shape), np.inf), axis=0), axis=0)
    return mask & (ranks < count)


def _halves(rng: np.random.Generator, shadows: int, size: int) -> np.ndarray:
    """(shadows, size) booleans, exactly shadows // 2 True per column, each column its own draw."""
    halves = keep_per_column(np.ones((shadows, size), dtype=bool), shadows // 2, rng)
    halves.setflags(write=False)
    return halves


@functools.lru_cache(maxsize=8)
def shadow_membership(pool_size: int, shadows: int, seed: int) -> np.ndarray:
    """(shadows, pool_size) booleans, exactly shadows / 2 True per column."""
    return _halves(numpy_generator("shadow membership", pool_size, shadows, seed), shadows, pool_size)


@functools.lru_cache(maxsize=8)
def references_of_test_points(test_size: int, shadows: int, seed: int) -> np.ndarray:
    """(shadows, test_size) booleans: the shadows each test point is scored against, exactly
    shadows / 2 of them. No shadow trains on a test point, so all are OUT for it; keeping half
    gives it as many OUT references as a pool point has, so that members and non-members are
    scored against equally many models (a fit on more models has lighter tails)."""
    return _halves(numpy_generator("test references", test_size, shadows, seed), shadows, test_size)


def shadow_train_positions(data: AuditData, shadow: int, shadows: int, seed: int) -> np.ndarray:
    return np.flatnonzero(shadow_membership(len(data.pool), shadows, seed)[shadow])


def shadow_forget_positions(data: AuditData, shadow: int, shadows: int, seed: int) -> np.ndarray:
    """Sorted pool positions shadow `shadow` is asked to forget: all of its IN half of the
    audit's forget set, plus random other IN points up to the audit's forget-set size."""
    inside = shadow_train_positions(data, shadow, shadows, seed)
    audited = np.intersect1d(inside, data.forget)
    others = np.setdiff1d(inside, data.forget)
    extra = max(0, len(data.forget) - len(audited))
    rng = numpy_generator("shadow forget", shadow, shadows, seed)
    return np.sort(np.concatenate([audited, rng.choice(others, size=min(extra, len(others)), replace=False)]))


def shadow_split(data: AuditData, shadow: int, shadows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(forget, retain) pool positions of a shadow's unlearning task."""
    forget = shadow_forget_positions(data, shadow, shadows, seed)
    return forget, np.setdiff1d(shadow_train_positions(data, shadow, shadows, seed), forget)
