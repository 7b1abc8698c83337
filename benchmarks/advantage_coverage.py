"""How often the membership advantage's 95 % interval covers the true advantage, measured.

A synthetic game with the structure of the default audit's: 10 target models score 144 forget
examples (members) and 360 test examples; every score is the example's own effect, N(shift, 1)
for members and N(0, 1) for non-members, plus model noise N(0, 0.3²), so examples recur in every
model. The true advantage of two normals a shift apart with standard deviation σ is
2Φ(shift / 2σ) − 1. For each shift, `--draws` fresh games; reported per shift: the share of
draws whose interval holds the truth, for the percentile interval of the two-way resamples and
for the basic interval salun reports (attacks/mia/units.py), with a 95 % Clopper-Pearson interval.

Run: python benchmarks/advantage_coverage.py [--draws 100] [--resamples 500]
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy.stats import beta, norm

from attacks.mia.units import Units, _Game, auc_intervals

MODELS, FORGET, TEST, MODEL_SD = 10, 144, 360, 0.3


def game(rng: np.random.Generator, shift: float) -> tuple[np.ndarray, np.ndarray, Units]:
    positives = (rng.normal(size=FORGET) + shift)[None] + MODEL_SD * rng.normal(size=(MODELS, FORGET))
    negatives = rng.normal(size=TEST)[None] + MODEL_SD * rng.normal(size=(MODELS, TEST))
    scores = np.concatenate([positives.ravel(), negatives.ravel()])
    is_member = np.concatenate([np.ones(positives.size, bool), np.zeros(negatives.size, bool)])
    return scores, is_member, Units.grid(positives.shape, negatives.shape, shared_models=True, shared_examples=False)


def clopper_pearson(hits: int, n: int) -> tuple[float, float]:
    low = beta.ppf(0.025, hits, n - hits + 1) if hits else 0.0
    high = beta.ppf(0.975, hits + 1, n - hits) if hits < n else 1.0
    return float(low), float(high)


def coverage(shift: float, draws: int, resamples: int) -> tuple[float, int, int]:
    truth = 2 * norm.cdf(shift / 2 / np.sqrt(1 + MODEL_SD ** 2)) - 1
    percentile = basic = 0
    for draw in range(draws):
        scores, is_member, units = game(np.random.default_rng(1000 + draw), shift)
        low, high = auc_intervals(scores, is_member, units, np.random.default_rng(draw), resamples)["advantage"]["ci95"]
        basic += low <= truth <= high
        both = np.random.default_rng(draw).spawn(3)[0]  # the stream auc_intervals draws its two-way resamples from
        values = _Game(scores, is_member, units).aucs(("models", "examples"), both, resamples, with_advantage=True)[:, 1]
        low, high = np.quantile(values, [0.025, 0.975])
        percentile += low <= truth <= high
    return float(truth), percentile, basic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=100)
    parser.add_argument("--resamples", type=int, default=500)
    args = parser.parse_args()
    print(f"{args.draws} games per row, {args.resamples} two-way resamples each\n")
    print("| true advantage | percentile interval | basic interval (salun) |\n|---|---|---|")
    for shift in (0.0, 0.25, 0.5, 1.0):
        truth, percentile, basic = coverage(shift, args.draws, args.resamples)
        cells = [f"{hits / args.draws:.2f} [{low:.2f}, {high:.2f}]"
                 for hits in (percentile, basic) for low, high in [clopper_pearson(hits, args.draws)]]
        print(f"| {truth:.3f} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
