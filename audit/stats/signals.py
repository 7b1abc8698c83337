"""Per-example membership signals computed from logits and labels, numerically stable."""

from __future__ import annotations

import numpy as np
from scipy.special import log_softmax, logsumexp


def _log_probs(logits: np.ndarray) -> np.ndarray:
    return log_softmax(np.asarray(logits, dtype=np.float64), axis=1)


def _true_class(values: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return values[np.arange(len(labels)), labels]


def probabilities(logits: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
    return np.exp(_log_probs(logits))


def confidence(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """p_y, the probability given to the true label."""
    return np.exp(_true_class(_log_probs(logits), labels))


def correctness(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return (np.argmax(logits, axis=1) == labels).astype(np.float64)


def loss(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Cross-entropy, -log p_y."""
    return -_true_class(_log_probs(logits), labels)


def entropy(logits: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
    log_p = _log_probs(logits)
    return -(np.exp(log_p) * log_p).sum(axis=1)


def modified_entropy(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Song & Mittal: -(1 - p_y) log p_y - sum over c != y of p_c log(1 - p_c)."""
    log_p = _log_probs(logits)
    p = np.exp(log_p)
    # log(1 - p_c) from the log-probabilities of the other classes, exact even when p_c -> 1
    log_one_minus = np.empty_like(log_p)
    for c in range(log_p.shape[1]):
        others = np.delete(log_p, c, axis=1)
        log_one_minus[:, c] = logsumexp(others, axis=1) if others.shape[1] else -np.inf
    rows = np.arange(len(labels))
    terms = -p * log_one_minus
    terms[rows, labels] = -(1 - p[rows, labels]) * log_p[rows, labels]
    return terms.sum(axis=1)


def modified_entropy_salun_code(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Modified entropy as SalUn's public MIA code computes it (kept to reproduce its numbers):
    log p where Song & Mittal have log(1 - p), and (1 - p) put in place of p for every class
    that occurs among `labels`, in every row (whole-column indexing), so each point's value
    depends on the labels of the set it is computed with. Probabilities of 0 read as 1e-30."""
    p = probabilities(logits)
    with np.errstate(divide="ignore"):
        log_p = np.where(p > 0, np.log(np.where(p > 0, p, 1.0)), np.log(1e-30))
    weights = p.copy()
    present = np.unique(labels)
    weights[:, present] = 1.0 - p[:, present]
    return -(weights * log_p).sum(axis=1)


def logit_scaled_confidence(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """phi = log p_y - log sum_{c != y} p_c, computed as z_y - logsumexp_{c != y} z_c."""
    z = np.asarray(logits, dtype=np.float64)
    rows = np.arange(len(labels))
    others = z.copy()
    others[rows, labels] = -np.inf
    return z[rows, labels] - logsumexp(others, axis=1)


FEATURES = {
    "confidence": confidence,
    "correctness": correctness,
    "entropy": entropy,
    "modified_entropy": modified_entropy,
    "modified_entropy_salun_code": modified_entropy_salun_code,
    "probabilities": probabilities,
}


def feature(name: str, logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """A 2-D feature matrix (one row per example) for the SVC attack."""
    values = FEATURES[name](logits, labels)
    return values.reshape(len(logits), -1)
