"""Judging a class-conditional image generator with an independent judge classifier.

UA (generation) = 1 − the share of images generated for the forgotten class c that the
judge assigns to c. Quality on the remaining classes: the judge's per-class agreement with
the conditioning label, and the Fréchet distance between real and generated images in the
judge's penultimate features (the feature extractor and both sample sizes are reported).
Everything returned is JSON-serialisable (plain floats, ints, lists).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch
from scipy import linalg
from torch import nn

from audit.nn.models import FeatureView
from audit.engine.observe import predict_logits
from audit.stats.basics import clopper_pearson


def judge_outputs(judge: nn.Module, images: torch.Tensor, batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """(logits (N, K), features (N, D)) as float32, in eval mode without gradients, in batches.

    features = judge.features(x), logits = judge.head(features); the mode of every module of
    the judge is restored afterwards.
    """
    modes = [m.training for m in judge.modules()]
    try:
        features = predict_logits(FeatureView(judge), images, batch_size)
        logits = predict_logits(judge.head, features, batch_size)
    finally:
        for module, mode in zip(judge.modules(), modes):
            module.training = mode
    return logits.numpy(), features.numpy()


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax (last axis) in float64, shifted by the row maximum so large logits cannot overflow."""
    z = np.asarray(logits, dtype=np.float64)
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def _share(hits: int, n: int, alpha: float) -> dict:
    low, high = clopper_pearson(hits, n, alpha)
    return {"value": hits / n, "ci95": [float(low), float(high)], "n_samples": int(n)}


def ua_generation(predictions: np.ndarray, forgotten: int, alpha: float = 0.05) -> dict:
    """UA = 1 − share of the judge's predictions on samples conditioned on c that equal c.

    ci95 is the Clopper-Pearson (1 − alpha) interval of that share, flipped: [1 − high, 1 − low].
    """
    predictions = np.asarray(predictions).ravel()
    if len(predictions) == 0:
        raise ValueError("ua_generation needs at least one generated sample")
    share = _share(int(np.sum(predictions == forgotten)), len(predictions), alpha)
    low, high = share["ci95"]
    return {"value": 1.0 - share["value"], "ci95": [1.0 - high, 1.0 - low], "n_samples": share["n_samples"]}


def class_accuracy(
    predictions: np.ndarray, conditioned_on: np.ndarray, classes: Sequence[int], alpha: float = 0.05
) -> dict[str, dict]:
    """Per class k in `classes` (keyed str(k)): share of samples conditioned on k the judge assigns to k.

    Each entry is {"value", "ci95" (Clopper-Pearson), "n_samples"}; a class without samples gets
    value and ci95 None. "mean" = {"value": unweighted mean over the classes with samples,
    "n_classes": how many, "n_samples": their total}.
    """
    predictions, conditioned_on = np.asarray(predictions).ravel(), np.asarray(conditioned_on).ravel()
    if predictions.shape != conditioned_on.shape:
        raise ValueError("predictions and conditioned_on must have the same length")
    out: dict[str, dict] = {}
    for k in classes:
        mask = conditioned_on == k
        n, hits = int(mask.sum()), int(np.sum(predictions[mask] == k))
        out[str(int(k))] = _share(hits, n, alpha) if n else {"value": None, "ci95": None, "n_samples": 0}
    present = [e for e in out.values() if e["n_samples"]]
    out["mean"] = {
        "value": float(np.mean([e["value"] for e in present])) if present else None,
        "n_classes": len(present),
        "n_samples": int(sum(e["n_samples"] for e in present)),
    }
    return out


def forgotten_class_probability(probabilities_on_c: np.ndarray) -> float:
    """Mean judge probability of c over samples conditioned on c.

    Pass the probability of c per sample, e.g. `softmax(logits)[:, c]` (shape (N,)); one value
    per seed, for the equivalence tests that compare populations of seeds.
    """
    p = np.asarray(probabilities_on_c, dtype=np.float64)
    if p.ndim != 1 or len(p) == 0:
        raise ValueError("pass a non-empty (N,) array of the judge's probability of c, e.g. softmax(logits)[:, c]")
    if np.any(~np.isfinite(p)) or np.any(p < 0) or np.any(p > 1):
        raise ValueError("probabilities must lie in [0, 1]")
    return float(p.mean())


def frechet_distance(real_features: np.ndarray, generated_features: np.ndarray, eps: float = 1e-6) -> dict:
    """||μ_r − μ_g||² + Tr(Σ_r + Σ_g − 2 (Σ_r Σ_g)^{1/2}) between two (N, D) feature samples.

    Covariances are unbiased (ddof=1), in float64. The matrix root is scipy.linalg.sqrtm's, real
    part; only if the product is singular or the root is not finite are both covariances
    regularised by eps·I and the root recomputed ("regularised" says so). Tiny negative totals from rounding are clipped to 0.
    Raises ValueError when a sample has fewer than 2 rows or the dimensions differ.
    """
    real, gen = np.asarray(real_features, dtype=np.float64), np.asarray(generated_features, dtype=np.float64)
    if real.ndim != 2 or gen.ndim != 2:
        raise ValueError("features must be (N, D) arrays")
    if len(real) < 2 or len(gen) < 2:
        raise ValueError("each sample needs at least 2 rows to estimate a covariance")
    if real.shape[1] != gen.shape[1]:
        raise ValueError(f"feature dimensions differ: {real.shape[1]} vs {gen.shape[1]}")
    mu_r, mu_g = real.mean(axis=0), gen.mean(axis=0)
    cov_r, cov_g = (np.atleast_2d(np.cov(sample, rowvar=False)) for sample in (real, gen))
    with warnings.catch_warnings(record=True) as singular:  # fewer samples than dimensions, say
        warnings.simplefilter("always", linalg.LinAlgWarning)
        root = linalg.sqrtm(cov_r @ cov_g)
    regularised = bool(singular) or not np.all(np.isfinite(root))
    if regularised:
        offset = eps * np.eye(cov_r.shape[0])
        root = linalg.sqrtm((cov_r + offset) @ (cov_g + offset))
    trace = np.trace(cov_r) + np.trace(cov_g) - 2.0 * np.trace(np.real(root))
    value = float(np.sum((mu_r - mu_g) ** 2) + trace)
    return {
        "value": max(value, 0.0),
        "n_real": len(real),
        "n_generated": len(gen),
        "dimensions": int(real.shape[1]),
        "features": "judge penultimate layer",
        "regularised": bool(regularised),
    }
