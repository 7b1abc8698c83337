"""`example_blobs`: 600 synthetic 8x8 one-channel images in 3 classes, the same on every call."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from audit.api import Source

SIZE = 8
CLASSES = 3
PER_CLASS = 200
CENTRES = ((2.0, 2.0), (2.0, 5.5), (5.5, 3.5))  # (row, column) of each class's blob
NOISE = 0.15


def _blob(centre: tuple[float, float]) -> np.ndarray:
    rows, columns = np.mgrid[0:SIZE, 0:SIZE]
    return np.exp(-((rows - centre[0]) ** 2 + (columns - centre[1]) ** 2) / 4.0)


def blobs(root: Path | None = None) -> Source:
    """600 synthetic 8x8 images of 3 classes: a bright blob whose position gives the class, plus noise."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(CLASSES), PER_CLASS)
    clean = np.stack([_blob(CENTRES[label]) for label in y])
    x = clean + NOISE * rng.standard_normal(clean.shape)
    order = rng.permutation(len(y))
    return Source(x=x[order, None].astype(np.float32), y=y[order].astype(np.int64), num_classes=CLASSES)
