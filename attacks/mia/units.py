"""The independent units behind a membership game, and the AUC's interval resampled over them.

A game scores cells (model, example). Cells are not independent trials: every target model
scores every example, and every example recurs in every model. `Units` names, per cell, its
model and its example, so intervals can resample what really varies independently:

- examples: the forget and test points are random draws from the data;
- models: each model's seed is a random draw of training randomness.

The interval is a two-way (pigeonhole) bootstrap in the sense of Owen (2007): each resample
draws models and examples with replacement, each within its stratum (units seen only among
members, only among non-members, or on both sides), and weighs a cell by the product of its
model's and its example's multiplicities. Its variance is at least that of either one-way
bootstrap (and mildly conservative), so it is the interval reported; the one-way intervals
are reported beside it, to show which units the uncertainty comes from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

_CELLS_PER_CHUNK = 2_000_000


@dataclass(frozen=True)
class Units:
    """Per cell of a game, the model and the example it belongs to (integer ids)."""

    models: np.ndarray
    examples: np.ndarray

    @staticmethod
    def grid(positives_shape: tuple[int, int], negatives_shape: tuple[int, int], *,
             shared_models: bool, shared_examples: bool) -> "Units":
        """Units of positives (models, examples) followed by negatives (models, examples), in
        ravel order: models shared (the same targets score both sides) or distinct, and
        examples shared (the same points on both sides) or distinct."""
        (mp, ep), (mn, en) = positives_shape, negatives_shape
        if shared_models and mp != mn:
            raise ValueError(f"shared models need equal counts, got {mp} and {mn}")
        if shared_examples and ep != en:
            raise ValueError(f"shared examples need equal counts, got {ep} and {en}")
        neg_models = np.arange(mn) + (0 if shared_models else mp)
        neg_examples = np.arange(en) + (0 if shared_examples else ep)
        models = np.concatenate([np.repeat(np.arange(mp), ep), np.repeat(neg_models, en)])
        examples = np.concatenate([np.tile(np.arange(ep), mp), np.tile(neg_examples, mn)])
        return Units(models, examples)

    @staticmethod
    def matrix(shape: tuple[int, int]) -> "Units":
        """Units of one (models, examples) matrix in ravel order (membership varies by cell)."""
        models, examples = np.indices(shape)
        return Units(models.ravel(), examples.ravel())

    def counts(self, is_member: np.ndarray) -> dict[str, Any]:
        """How many independent units of each kind stand behind the members and the non-members."""
        def count(ids: np.ndarray) -> dict[str, int]:
            member, other = set(np.unique(ids[is_member])), set(np.unique(ids[~is_member]))
            return {"members": len(member), "nonmembers": len(other), "shared": len(member & other)}
        return {"models": count(self.models), "examples": count(self.examples)}


def _strata(ids: np.ndarray, is_member: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """(dense ids, the dense ids of each stratum): units seen only among members, only among
    non-members, and on both sides are resampled separately."""
    unique, dense = np.unique(ids, return_inverse=True)
    on_member = np.bincount(dense[is_member], minlength=len(unique)) > 0
    on_other = np.bincount(dense[~is_member], minlength=len(unique)) > 0
    strata = [np.flatnonzero(on_member & ~on_other), np.flatnonzero(~on_member & on_other),
              np.flatnonzero(on_member & on_other)]
    return dense, [s for s in strata if len(s)]


def _multiplicities(strata: list[np.ndarray], size: int, draws: int, rng: np.random.Generator) -> np.ndarray:
    """(draws, size) counts: each stratum's units drawn with replacement, as many as it holds."""
    flat = np.zeros(draws * size)
    offsets = (np.arange(draws) * size)[:, None]
    for stratum in strata:
        picked = stratum[rng.integers(0, len(stratum), (draws, len(stratum)))]
        flat += np.bincount((offsets + picked).ravel(), minlength=draws * size)
    return flat.reshape(draws, size)


def auc_intervals(scores: np.ndarray, is_member: np.ndarray, units: Units, rng: np.random.Generator,
                  resamples: int = 1000, confidence: float = 0.95) -> dict[str, Any]:
    """Percentile intervals of the AUC: two-way over models and examples (`ci95`), and one-way
    over examples only and over models only (`ci95_by_unit`), with each bootstrap's standard
    error. The AUC of weighted cells is the weighted Mann-Whitney probability (ties 1/2)."""
    scores = np.asarray(scores, dtype=np.float64)
    is_member = np.asarray(is_member, dtype=bool)
    order = np.argsort(scores[~is_member], kind="stable")
    negative = scores[~is_member][order]
    left = np.searchsorted(negative, scores[is_member], side="left")
    right = np.searchsorted(negative, scores[is_member], side="right")
    factors = {}
    for name in ("models", "examples"):
        dense, strata = _strata(getattr(units, name), is_member)
        factors[name] = (dense, strata, int(dense.max()) + 1)
    positive_cells, negative_cells = np.flatnonzero(is_member), np.flatnonzero(~is_member)[order]
    rngs = dict(zip(("both", "examples", "models"), rng.spawn(3)))
    chunk = max(1, _CELLS_PER_CHUNK // len(scores))

    def side_weights(which: tuple[str, ...], counts: dict[str, np.ndarray], cells: np.ndarray) -> np.ndarray:
        weight = None
        for name in which:
            dense = factors[name][0]
            factor = counts[name][:, dense[cells]]
            weight = factor if weight is None else weight * factor
        return weight

    def bootstrap(which: tuple[str, ...], stream: np.random.Generator) -> np.ndarray:
        values = []
        for start in range(0, resamples, chunk):
            draws = min(chunk, resamples - start)
            counts = {name: _multiplicities(factors[name][1], factors[name][2], draws, stream) for name in which}
            w_pos, w_neg = side_weights(which, counts, positive_cells), side_weights(which, counts, negative_cells)
            cumulative = np.zeros((draws, len(negative_cells) + 1))
            np.cumsum(w_neg, axis=1, out=cumulative[:, 1:])
            wins = np.einsum("ij,ij->i", w_pos, cumulative[:, left] + cumulative[:, right]) / 2
            with np.errstate(invalid="ignore", divide="ignore"):
                values.append(wins / (w_pos.sum(axis=1) * cumulative[:, -1]))
        return np.concatenate(values)

    tail = [(1 - confidence) / 2, (1 + confidence) / 2]

    def interval(values: np.ndarray) -> dict[str, Any]:
        low, high = np.nanquantile(values, tail)
        return {"ci95": [float(low), float(high)], "se": float(np.nanstd(values, ddof=1))}

    two_way = interval(bootstrap(("models", "examples"), rngs["both"]))
    return {
        "ci95": two_way["ci95"], "se": two_way["se"], "resamples": int(resamples),
        "bootstrap": "two-way over models and examples (product weights, stratified by side)",
        "ci95_by_unit": {name: interval(bootstrap((name,), rngs[name])) for name in ("examples", "models")},
    }


def one_cell_per_unit(units: np.ndarray, is_member: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices of one cell per (unit, side), drawn at random: independent trials for a bound
    that counts them (a unit's cells share the unit and are not independent of each other)."""
    units = np.asarray(units)
    picked = []
    for side in (True, False):
        cells = np.flatnonzero(is_member == side)
        shuffled = cells[rng.permutation(len(cells))]
        _, first = np.unique(units[shuffled], return_index=True)
        picked.append(np.sort(shuffled[first]))
    return np.concatenate(picked)
