"""The forget examples an attack scores highest, with their images for the report: each as its
pool index, label, mean score and, for image data, 8-bit pixels."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

from audit.data.datasets import AuditData
from audit.results.images import denormalised

VULNERABLE = 10  # forget examples listed as the most exposed, per target and attack
THUMBNAIL = 32  # the longest side of a most exposed example's image in results.json, in pixels


def most_exposed(positives: np.ndarray, data: AuditData) -> list[dict[str, Any]]:
    """The VULNERABLE forget examples with the highest mean score: pool index, label, score and,
    for image data, the image as 8-bit pixels of the data's own units ([0, 1], as every built-in
    image dataset loads them)."""
    mean = positives.mean(axis=0)
    order = np.argsort(-mean)[:VULNERABLE]
    index = data.pool_index[data.forget]
    positions = data.forget[order]
    images = thumbnails(data.pool.x[positions].numpy(), data)
    return [{"index": int(index[i]), "label": int(data.pool.y[data.forget[i]]), "score": float(mean[i]),
             **image} for i, image in zip(order, images)]


def thumbnails(images: np.ndarray, data: AuditData) -> list[dict[str, Any]]:
    """Each image as {"image": {"shape": [C, H, W], "dtype": "uint8", "base64": its bytes in C, H, W
    order}}, every side subsampled to at most THUMBNAIL pixels: base64, as results.json is indented
    and a nested list would take a line per pixel. An empty entry each when the inputs are no images."""
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        return [{} for _ in images]
    step = -(-max(images.shape[2:]) // THUMBNAIL)
    pixels = np.asarray(denormalised(images[:, :, ::step, ::step], data), dtype=np.float64)
    eight_bit = np.round(np.clip(pixels, 0.0, 1.0) * 255).astype(np.uint8)
    return [{"image": {"shape": list(image.shape), "dtype": "uint8",
                       "base64": base64.b64encode(image.tobytes()).decode("ascii")}} for image in eight_bit]
