"""salun's vectorised membership-inference attacks against a per-example Python loop doing the same math.

Synthetic observations, seeded: N points (default 10,000) with random labels out of 10
classes, and models whose logits are standard normal plus, on the true class, a per-point
difficulty ~ N(0, 1) and a membership shift (+1 when the model trained on the point):

  references   64 models, each point IN for exactly half of them, on the N points and on a
               population of M points (default 2,000) that no model trained on
  targets      64 models, each point IN with probability 1/2 (never a population point),
               on the same N + M points
  U-LiRA       64 unlearned shadows (a point trained then forgotten gets a residual +0.3,
               trained and kept +1, never trained 0) and 64 targets (each point forgotten,
               +0.3, or never trained, 0, with probability 1/2), on the N points

Each attack runs in two stages, both timed: "signal", the logit-scaled confidence phi (LiRA,
U-LiRA) or p_y (RMIA) of every model on every point from the logits, and "scores", the
attack on those signals:

  LiRA     lira.online_scores + lira.offline_scores (per-example scale) of the targets
           against the references
  RMIA     offline RMIA (a = 0.5, trim 0.1, gamma 2): rmia.reference_probability over the
           OUT references, then rmia.scores of the N points against the M population points
  U-LiRA   ulira.scores of the targets against the unlearned shadows (per-example scale)

Vectorised: signals.logit_scaled_confidence / signals.confidence on all models x points as
one batch, then the attack modules. Loop: a Python loop over the points (and, for RMIA, over
the population points) doing the same math for one point at a time with numpy/scipy over
its models: phi or p_y by scipy.special.logsumexp, np.median, np.std(ddof=1),
scipy.stats.trim_mean, and the LR of one x against every z. The script asserts that both
give the same signals and scores (max abs difference <= 1e-6). Everything runs in one
process, the loops over all N points (nothing is extrapolated). Each attack is run once
untimed (the first touch of fresh arrays costs page faults), then both ways are timed
`--repeats` times, interleaved, and the medians are reported with the ratio loop /
vectorised. The default run takes about 30 s on 2 cores.

Run: python benchmarks/mia.py [--points 10000] [--population 2000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from scipy.special import logsumexp
from scipy.stats import trim_mean

from attacks.mia import lira, rmia, ulira
from audit.stats.signals import confidence, logit_scaled_confidence

MODELS, CLASSES, SHIFT, RESIDUAL = 64, 10, 1.0, 0.3
A, TRIM, GAMMA = 0.5, 0.1, 2.0


def halves(rng: np.random.Generator, models: int, n: int) -> np.ndarray:
    return np.argsort(rng.random((models, n)), axis=0) < models // 2


def make_logits(rng, labels, difficulty, shift) -> np.ndarray:
    """(models, n, classes): standard normal, plus difficulty + shift on the true class."""
    logits = rng.normal(size=(*shift.shape, CLASSES))
    logits[:, np.arange(len(labels)), labels] += difficulty + shift
    return logits


def make_data(points: int, population: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    total = points + population
    labels = rng.integers(0, CLASSES, total)
    difficulty = rng.normal(size=total)
    ref_in = np.zeros((MODELS, total), bool)
    ref_in[:, :points] = halves(rng, MODELS, points)
    target_in = np.zeros((MODELS, total), bool)
    target_in[:, :points] = rng.random((MODELS, points)) < 0.5
    trained = halves(rng, MODELS, points)
    forgot = trained & (rng.random((MODELS, points)) < 0.5)
    target_forgot = rng.random((MODELS, points)) < 0.5
    return {
        "labels": labels, "points": points, "ref_in": ref_in,
        "ref": make_logits(rng, labels, difficulty, SHIFT * ref_in),
        "target": make_logits(rng, labels, difficulty, SHIFT * target_in),
        "forgot": forgot, "never": ~trained,
        "shadow_u": make_logits(rng, labels[:points], difficulty[:points],
                                RESIDUAL * forgot + SHIFT * (trained & ~forgot)),
        "target_u": make_logits(rng, labels[:points], difficulty[:points], RESIDUAL * target_forgot),
    }


def signal(fn, logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """fn over (models, n, classes) logits as one (models * n) batch: (models, n)."""
    models, n, classes = logits.shape
    return fn(logits.reshape(-1, classes), np.tile(labels[:n], models)).reshape(models, n)


# --- vectorised: signals as one batch over models x points, then the attack modules -------

def lira_signals(d: dict) -> tuple[np.ndarray, np.ndarray]:
    n = d["points"]
    return (signal(logit_scaled_confidence, d["ref"][:, :n], d["labels"]),
            signal(logit_scaled_confidence, d["target"][:, :n], d["labels"]))


def lira_scores(d: dict, signals: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    phi, target = signals
    in_mask = d["ref_in"][:, : d["points"]]
    online = lira.online_scores(target, phi, in_mask, "per_example")
    offline = lira.offline_scores(target, phi, in_mask, "per_example")
    return np.stack([online, offline])


def rmia_signals(d: dict) -> tuple[np.ndarray, np.ndarray]:
    return signal(confidence, d["ref"], d["labels"]), signal(confidence, d["target"], d["labels"])


def rmia_scores(d: dict, signals: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    p_ref, p_target = signals
    n = d["points"]
    p_all = rmia.reference_probability(p_ref, d["ref_in"], True, A, TRIM)
    return rmia.scores(p_target[:, :n], p_all[:n], p_target[:, n:], p_all[n:], GAMMA)


def ulira_signals(d: dict) -> tuple[np.ndarray, np.ndarray]:
    return (signal(logit_scaled_confidence, d["shadow_u"], d["labels"]),
            signal(logit_scaled_confidence, d["target_u"], d["labels"]))


def ulira_scores(d: dict, signals: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    shadow, target = signals
    return ulira.scores(target, shadow, d["forgot"], d["never"], "per_example")


# --- per-example loops: one point at a time, numpy/scipy over its models -----------------

def phi_of(logits: np.ndarray, label: int) -> np.ndarray:
    """phi of one point over the models, from its (models, classes) logits."""
    return logits[:, label] - logsumexp(np.delete(logits, label, axis=1), axis=1)


def p_of(logits: np.ndarray, label: int) -> np.ndarray:
    return np.exp(logits[:, label] - logsumexp(logits, axis=1))


def signals_loop(fn, names: tuple[str, str], population: bool = False):
    """A loop over the points computing fn(logits of the point, label) for each array named."""
    def compute(d: dict) -> tuple[np.ndarray, ...]:
        arrays = [d[name] for name in names]
        points = arrays[0].shape[1] if population else d["points"]
        out = tuple(np.empty((MODELS, points)) for _ in arrays)
        for i in range(points):
            for logits, values in zip(arrays, out):
                values[:, i] = fn(logits[:, i], d["labels"][i])
        return out
    return compute


def gaussian(values: np.ndarray) -> tuple[float, float]:
    return float(np.median(values)), max(float(np.std(values, ddof=1)), lira.SIGMA_FLOOR)


def log_ratio(x, mu_a, sd_a, mu_b, sd_b):
    return (-0.5 * ((x - mu_a) / sd_a) ** 2 - np.log(sd_a)) - (-0.5 * ((x - mu_b) / sd_b) ** 2 - np.log(sd_b))


def lira_loop(d: dict, signals: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    phi, target = signals
    n = d["points"]
    out = np.empty((2, MODELS, n))
    for i in range(n):
        member = d["ref_in"][:, i]
        mu_in, sd_in = gaussian(phi[member, i])
        mu_out, sd_out = gaussian(phi[~member, i])
        out[0, :, i] = log_ratio(target[:, i], mu_in, sd_in, mu_out, sd_out)
        out[1, :, i] = (target[:, i] - mu_out) / sd_out
    return out


def rmia_loop(d: dict, signals: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    p_ref, p_target = signals
    n, total = d["points"], p_ref.shape[1]

    def ratio(j):  # the targets' p_y on point j over its offline P(j)
        p_out = trim_mean(p_ref[~d["ref_in"][:, j], j], TRIM)
        return p_target[:, j] / (0.5 * ((1 + A) * p_out + (1 - A)))

    ratio_z = np.empty((MODELS, total - n))
    for j in range(n, total):
        ratio_z[:, j - n] = ratio(j)
    out = np.empty((MODELS, n))
    for i in range(n):
        lr = ratio(i)[:, None] / ratio_z
        out[:, i] = np.mean(lr >= GAMMA, axis=1)
    return out


def ulira_loop(d: dict, signals: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    shadow, target = signals
    n = d["points"]
    out = np.empty((MODELS, n))
    for i in range(n):
        mu_u, sd_u = gaussian(shadow[d["forgot"][:, i], i])
        mu_n, sd_n = gaussian(shadow[d["never"][:, i], i])
        out[:, i] = log_ratio(target[:, i], mu_u, sd_u, mu_n, sd_n)
    return out


CONTENDERS = {  # attack: (vectorised signals, vectorised scores, loop signals, loop scores)
    "LiRA (online + offline)": (lira_signals, lira_scores, signals_loop(phi_of, ("ref", "target")), lira_loop),
    "RMIA (offline)": (rmia_signals, rmia_scores, signals_loop(p_of, ("ref", "target"), population=True), rmia_loop),
    "U-LiRA": (ulira_signals, ulira_scores, signals_loop(phi_of, ("shadow_u", "target_u")), ulira_loop),
}


def timed(fn, *args) -> tuple[float, np.ndarray]:
    started = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=10_000, help="points scored (default 10,000)")
    parser.add_argument("--population", type=int, default=2_000, help="RMIA population points z (default 2,000)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    data = make_data(args.points, args.population, args.seed)
    for signals, scores, _, _ in CONTENDERS.values():
        scores(data, signals(data))  # untimed: first touch of fresh arrays
    stages = ("signal", "scores")
    times = {(name, stage, way): [] for name in CONTENDERS for stage in stages for way in ("vec", "loop")}
    worst: dict[str, float] = {}
    for _ in range(args.repeats):
        for name, (signals_vec, scores_vec, signals_lp, scores_lp) in CONTENDERS.items():
            for way, (get_signals, get_scores) in {"vec": (signals_vec, scores_vec),
                                                    "loop": (signals_lp, scores_lp)}.items():
                seconds, signals = timed(get_signals, data)
                times[name, "signal", way].append(seconds)
                seconds, result = timed(get_scores, data, signals)
                times[name, "scores", way].append(seconds)
                if way == "vec":
                    fast = (signals, result)
            diff = max(float(np.max(np.abs(a - b))) for a, b in zip((*fast[0], fast[1]), (*signals, result)))
            worst[name] = max(worst.get(name, 0.0), diff)
            assert worst[name] <= 1e-6, (name, worst[name])
    print(f"{args.points} points x {MODELS} models ({MODELS} references + {MODELS} targets; U-LiRA {MODELS} "
          f"unlearned shadows + {MODELS} targets), {CLASSES} classes, RMIA population {args.population}, "
          f"median of {args.repeats}")
    print("signal: phi (or p_y) from the logits; scores: the attack on those signals")
    print(f"{'attack':<26}{'stage':<8}{'vectorised s':>14}{'loop s':>10}{'loop / vec':>12}{'max |diff|':>12}")
    for name in CONTENDERS:
        median = {key[1:]: statistics.median(v) for key, v in times.items() if key[0] == name}
        for stage in (*stages, "total"):
            if stage == "total":
                fast, slow = (sum(median[s, way] for s in stages) for way in ("vec", "loop"))
            else:
                fast, slow = median[stage, "vec"], median[stage, "loop"]
            diff = f"{worst[name]:>12.1e}" if stage == "total" else ""
            label = name if stage == "signal" else ""
            print(f"{label:<26}{stage:<8}{fast:>14.3f}{slow:>10.2f}{slow / fast:>12.1f}{diff}")


if __name__ == "__main__":
    main()
