"""The NeurIPS 2023 competition ε, vectorised, against the transcription of metric.py.

Scores one synthetic forget set (``--examples`` forget examples, ``--models`` unlearned and
as many retrained values of φ each) two ways in one process:

  vectorised  audit.stats.neurips2023.per_example_epsilon on every example
  loop        the transcription of the published metric.py the tests check it against,
              one example and one rule at a time (tests/audit/test_equivalence_neurips.py),
              on the first ``--loop-examples`` examples only; its time for the whole set
              is extrapolated linearly

The loop's ε on its subset must equal the vectorised ε to 1e-6. Run:
python benchmarks/equivalence.py [--examples 2000] [--models 512] [--loop-examples 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from audit.stats.neurips2023 import forget_score, per_example_epsilon

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "audit"))
from test_equivalence_neurips import literal_epsilons


def synthetic_phi(examples: int, models: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per example, retrained φ ~ N(μ, σ) and unlearned φ ~ N(μ + shift, σ·scale)."""
    rng = np.random.default_rng(seed)
    mu, sigma = rng.normal(2.0, 1.5, examples), rng.uniform(0.3, 1.5, examples)
    shift, scale = rng.normal(0.0, 0.3, examples), rng.uniform(0.7, 1.3, examples)
    retrained = rng.normal(mu, sigma, (models, examples))
    unlearned = rng.normal(mu + shift, sigma * scale, (models, examples))
    return unlearned, retrained


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--models", type=int, default=512)
    parser.add_argument("--loop-examples", type=int, default=2)
    args = parser.parse_args()
    unlearned, retrained = synthetic_phi(args.examples, args.models)

    started = time.perf_counter()
    eps, unruled = per_example_epsilon(unlearned, retrained, return_unruled=True)
    vectorised = time.perf_counter() - started

    subset = min(args.loop_examples, args.examples)
    started = time.perf_counter()
    literal = literal_epsilons(unlearned[:, :subset], retrained[:, :subset])
    loop = (time.perf_counter() - started) * args.examples / subset
    gap = float(np.max(np.abs(literal - eps[:subset])))
    if gap > 1e-6:
        raise SystemExit(f"the loop and the vectorised ε differ by {gap:g}")

    print(f"{args.examples} forget examples x {args.models} models per side; "
          f"forget score {forget_score(eps, args.models):.4f}, median ε {np.median(eps):.3f}, "
          f"{int(unruled.sum())} with every rule discarded")
    print(f"loop timed on {subset} examples and extrapolated linearly; "
          f"its ε agrees to {gap:.1e}")
    print(f"{'contender':<12}{'seconds':>12}{'loop / it':>12}")
    for name, seconds in (("vectorised", vectorised), ("loop", loop)):
        print(f"{name:<12}{seconds:>12.2f}{loop / seconds:>12.1f}")


if __name__ == "__main__":
    main()
