"""Images as results.json holds them: standardised model inputs back in the data's own pixel units."""

from __future__ import annotations

import numpy as np

from audit.data.datasets import AuditData


def denormalised(images: np.ndarray, data: AuditData) -> list:
    """(…, C, H, W) standardised images in the data's own pixel units, rounded for the report."""
    mean = np.asarray(data.channel_mean).reshape(-1, 1, 1)
    std = np.asarray(data.channel_std).reshape(-1, 1, 1)
    return np.round(images * std + mean, 3).tolist()
