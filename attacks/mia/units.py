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
TWO_WAY = "two-way over models and examples (product weights, stratified by side)"


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


def _strata(ids: np.ndarray, is_member: np.ndarray,
            groups: np.ndarray | None = None) -> tuple[np.ndarray, list[np.ndarray]]:
    """(dense ids, the dense ids of each stratum): units seen only among members, only among
    non-members, and on both sides are resampled separately, and within each of those the units
    of each group (a cell's group in `groups`) apart."""
    unique, dense = np.unique(ids, return_inverse=True)
    on_member = np.bincount(dense[is_member], minlength=len(unique)) > 0
    on_other = np.bincount(dense[~is_member], minlength=len(unique)) > 0
    key = on_member * 1 + on_other * 2  # 1: members only, 2: non-members only, 3: both
    if groups is not None:
        unit_group = np.zeros(len(unique), dtype=np.int64)
        unit_group[dense] = np.unique(groups, return_inverse=True)[1]
        key = key + 4 * unit_group
    return dense, [np.flatnonzero(key == k) for k in np.unique(key)]


def _multiplicities(strata: list[np.ndarray], size: int, draws: int, rng: np.random.Generator) -> np.ndarray:
    """(draws, size) counts: each stratum's units drawn with replacement, as many as it holds."""
    flat = np.zeros(draws * size)
    offsets = (np.arange(draws) * size)[:, None]
    for stratum in strata:
        picked = stratum[rng.integers(0, len(stratum), (draws, len(stratum)))]
        flat += np.bincount((offsets + picked).ravel(), minlength=draws * size)
    return flat.reshape(draws, size)


class _Game:
    """The weighted Mann-Whitney AUC of one game under bootstrap weights: a cell weighs the
    product of its model's and its example's multiplicities (ties count 1/2)."""

    def __init__(self, scores: np.ndarray, is_member: np.ndarray, units: Units,
                 example_groups: np.ndarray | None = None):
        scores = np.asarray(scores, dtype=np.float64)
        is_member = np.asarray(is_member, dtype=bool)
        order = np.argsort(scores[~is_member], kind="stable")
        negative = scores[~is_member][order]
        self.left = np.searchsorted(negative, scores[is_member], side="left")
        self.right = np.searchsorted(negative, scores[is_member], side="right")
        self.factors = {}
        for name in ("models", "examples"):
            dense, strata = _strata(getattr(units, name), is_member, example_groups if name == "examples" else None)
            self.factors[name] = (dense, strata, int(dense.max()) + 1)
        self.positive_cells, self.negative_cells = np.flatnonzero(is_member), np.flatnonzero(~is_member)[order]
        positive = scores[is_member]
        self.positive_order = np.argsort(positive, kind="stable")
        self.at_or_above = np.searchsorted(positive[self.positive_order], positive, side="left")
        self.chunk = max(1, _CELLS_PER_CHUNK // len(scores))

    def _weights(self, which: tuple[str, ...], counts: dict[str, np.ndarray], cells: np.ndarray) -> np.ndarray:
        weight = None
        for name in which:
            factor = counts[name][:, self.factors[name][0][cells]]
            weight = factor if weight is None else weight * factor
        return weight

    def _advantage(self, w_pos: np.ndarray, cumulative: np.ndarray) -> np.ndarray:
        """max over thresholds of TPR − FPR, each draw's: the largest is at a member's score (or
        at no threshold, 0), counting every score at or above it."""
        above = np.zeros((len(w_pos), w_pos.shape[1] + 1))
        np.cumsum(w_pos[:, self.positive_order], axis=1, out=above[:, 1:])
        with np.errstate(invalid="ignore", divide="ignore"):
            tpr = (above[:, -1:] - above[:, self.at_or_above]) / above[:, -1:]
            fpr = (cumulative[:, -1:] - cumulative[:, self.left]) / cumulative[:, -1:]
        return np.maximum(np.max(tpr - fpr, axis=1), 0.0)

    def advantage_at_unit_weights(self) -> float:
        ones = np.ones((1, len(self.positive_cells)))
        cumulative = np.arange(len(self.negative_cells) + 1, dtype=np.float64)[None]
        return float(self._advantage(ones, cumulative)[0])

    def aucs(self, which: tuple[str, ...], stream: np.random.Generator, resamples: int,
             member_groups: list[np.ndarray] | None = None, with_advantage: bool = False) -> np.ndarray:
        """(resamples, groups) AUCs with `which` units resampled: of each group of members (a mask
        over the member cells) against every non-member, or of all members when no groups; and
        with a last column of the membership advantage on the same draws when `with_advantage`."""
        groups = member_groups or [np.ones(len(self.positive_cells), dtype=bool)]
        values = []
        for start in range(0, resamples, self.chunk):
            draws = min(self.chunk, resamples - start)
            counts = {name: _multiplicities(self.factors[name][1], self.factors[name][2], draws, stream)
                      for name in which}
            w_pos = self._weights(which, counts, self.positive_cells)
            w_neg = self._weights(which, counts, self.negative_cells)
            cumulative = np.zeros((draws, len(self.negative_cells) + 1))
            np.cumsum(w_neg, axis=1, out=cumulative[:, 1:])
            columns = []
            for group in groups:
                w, left, right = w_pos[:, group], self.left[group], self.right[group]
                wins = np.einsum("ij,ij->i", w, cumulative[:, left] + cumulative[:, right]) / 2
                with np.errstate(invalid="ignore", divide="ignore"):
                    columns.append(wins / (w.sum(axis=1) * cumulative[:, -1]))
            if with_advantage:
                columns.append(self._advantage(w_pos, cumulative))
            values.append(np.stack(columns, axis=1))
        return np.concatenate(values)


def _interval(values: np.ndarray, confidence: float) -> dict[str, Any]:
    low, high = np.nanquantile(values, [(1 - confidence) / 2, (1 + confidence) / 2])
    return {"ci95": [float(low), float(high)], "se": float(np.nanstd(values, ddof=1))}


def _advantage_interval(game: _Game, values: np.ndarray, confidence: float) -> dict[str, Any]:
    """The basic (reverse-percentile) interval 2·a − q, widened to hold the sample's a and clipped
    to [0, 1]: the advantage is a maximum over thresholds, so resampled values sit above the
    sample's (above 0 even where the true advantage is 0), and the percentile interval would miss
    small advantages; the basic one alone may lie below the sample's, which is biased upward."""
    point = game.advantage_at_unit_weights()
    percentile = _interval(values, confidence)
    low, high = percentile["ci95"]
    return {"ci95": [float(max(min(2 * point - high, point), 0.0)), float(min(max(2 * point - low, point), 1.0))],
            "se": percentile["se"], "interval": "basic (reverse percentile), holding the sample's"}


def auc_intervals(scores: np.ndarray, is_member: np.ndarray, units: Units, rng: np.random.Generator,
                  resamples: int = 1000, confidence: float = 0.95) -> dict[str, Any]:
    """Percentile intervals of the AUC: two-way over models and examples (`ci95`), and one-way
    over examples only and over models only (`ci95_by_unit`), with each bootstrap's standard
    error."""
    game = _Game(scores, is_member, units)
    rngs = dict(zip(("both", "examples", "models"), rng.spawn(3)))
    draws = game.aucs(("models", "examples"), rngs["both"], resamples, with_advantage=True)
    two_way = _interval(draws[:, 0], confidence)
    return {
        "ci95": two_way["ci95"], "se": two_way["se"], "resamples": int(resamples),
        "bootstrap": TWO_WAY, "advantage": _advantage_interval(game, draws[:, 1], confidence),
        "ci95_by_unit": {name: _interval(game.aucs((name,), rngs[name], resamples)[:, 0], confidence)
                         for name in ("examples", "models")},
    }


def advantage_interval(scores: np.ndarray, is_member: np.ndarray, rng: np.random.Generator, resamples: int = 1000,
                       confidence: float = 0.95) -> dict[str, Any]:
    """The membership advantage's interval with every score an independent unit."""
    cells = np.arange(len(scores))
    game = _Game(scores, is_member, Units(np.zeros_like(cells), cells))
    return _advantage_interval(game, game.aucs(("examples",), rng, resamples, with_advantage=True)[:, 1], confidence)


def grouped_auc_intervals(scores: np.ndarray, is_member: np.ndarray, units: Units, groups: np.ndarray,
                          rng: np.random.Generator, resamples: int = 1000, confidence: float = 0.95, *,
                          within_groups: bool) -> dict[Any, dict[str, Any]]:
    """The two-way interval of each group's AUC (a cell's group in `groups`, e.g. its class): its
    members against every non-member, or only against the non-members of the same group
    (`within_groups`). Each resample keeps every group's count of examples: the examples are
    stratified by side and by group."""
    scores, is_member, groups = np.asarray(scores, dtype=np.float64), np.asarray(is_member, dtype=bool), np.asarray(groups)
    names = np.unique(groups[is_member])
    two_way = ("models", "examples")
    if within_groups:
        out = {}
        for name, stream in zip(names, rng.spawn(len(names))):
            cells = groups == name
            game = _Game(scores[cells], is_member[cells], Units(units.models[cells], units.examples[cells]))
            out[name] = _interval(game.aucs(two_way, stream, resamples)[:, 0], confidence)
    else:
        game = _Game(scores, is_member, units, example_groups=np.where(is_member, groups, -1))
        member_groups = groups[is_member]
        values = game.aucs(two_way, rng, resamples, [member_groups == name for name in names])
        out = {name: _interval(values[:, i], confidence) for i, name in enumerate(names)}
    return {name: {**interval, "resamples": int(resamples)} for name, interval in out.items()}


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
