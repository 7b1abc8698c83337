"""Observations: a model's logits on every point any probe needs, computed once, in eval mode.

Probes read observations, not models, so attacks and statistics are cheap to rerun and
easy to test on synthetic arrays.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from audit.data import AuditData


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
