"""Observations: a model's logits on every point any probe needs, computed once, in eval mode.

Probes read observations, not models, so attacks and statistics are cheap to rerun and
easy to test on synthetic arrays.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from audit.data.datasets import AuditData
from audit.engine.job import Plan
from audit.engine.store import Store


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Logits in eval mode, computed in batches on the model's device, returned on the CPU."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = [model(x[i : i + batch_size].to(device)).float().cpu() for i in range(0, len(x), batch_size)]
    model.train(was_training)
    return torch.cat(out) if out else torch.empty(0)


def observe(model: nn.Module, data: AuditData) -> dict[str, np.ndarray]:
    """Logits on the whole training pool and the whole test set (float32)."""
    return {
        "pool_logits": predict_logits(model, data.pool.x).numpy(),
        "test_logits": predict_logits(model, data.test.x).numpy(),
    }


class StoredObservations:
    """Reads the stored observations of a plan's models, each once, and the signals probes compute from them."""

    def __init__(self, store: Store, plan: Plan, data: AuditData):
        self.store, self.plan = store, plan
        self.y_pool, self.y_test = data.pool.y.numpy(), data.test.y.numpy()
        self._arrays: dict[str, dict[str, np.ndarray]] = {}

    def arrays(self, key: str) -> dict[str, np.ndarray]:
        """The stored observation of model `key`, read once."""
        if key not in self._arrays:
            self._arrays[key] = self.store.arrays(self.plan.observation_of[key])
        return self._arrays[key]

    def usable(self, keys: list[str]) -> list[str]:
        return [k for k in keys if self.store.meta(self.plan.observation_of[k]).get("status") == "ok"]

    def signal(self, keys: list[str], fn) -> tuple[np.ndarray, np.ndarray]:
        """`fn(logits, labels)` on the pool and on the test set: two (models, examples) arrays."""
        pool, test = [], []
        for key in keys:
            arrays = self.arrays(key)
            pool.append(fn(arrays["pool_logits"], self.y_pool))
            test.append(fn(arrays["test_logits"], self.y_test))
        return np.array(pool), np.array(test)
