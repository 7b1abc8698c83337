"""The most exposed forget examples: highest mean score first, with their images as 8-bit pixels
in the data's own units for image data, subsampled to at most THUMBNAIL pixels a side."""

from __future__ import annotations

import base64
from types import SimpleNamespace

import numpy as np
import torch

from attacks.mia.exposed import THUMBNAIL, VULNERABLE, most_exposed


def _data(images: np.ndarray, mean: float = 0.5, std: float = 0.25) -> SimpleNamespace:
    """A pool of `images` (in [0, 1]) standardised as an audit stores them; the forget set is every
    other pool position."""
    channels = images.shape[1] if images.ndim == 4 else 1
    n = len(images)
    return SimpleNamespace(pool=SimpleNamespace(x=torch.tensor((images - mean) / std, dtype=torch.float32),
                                                y=torch.arange(n) % 10),
                           pool_index=np.arange(n) + 1000, forget=np.arange(0, n, 2),
                           channel_mean=np.full(channels, mean), channel_std=np.full(channels, std))


def pixels(entry: dict) -> np.ndarray:
    image = entry["image"]
    assert image["dtype"] == "uint8"
    return np.frombuffer(base64.b64decode(image["base64"]), np.uint8).reshape(image["shape"])


def test_the_most_exposed_carry_their_images_back_in_eight_bit_pixels():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (30, 1, 8, 8)) / 255.0
    data = _data(images)
    scores = rng.normal(size=(3, len(data.forget)))
    exposed = most_exposed(scores, data)
    order = np.argsort(-scores.mean(axis=0))[:VULNERABLE]
    assert [e["index"] for e in exposed] == [1000 + 2 * i for i in order]
    assert [e["score"] for e in exposed] == sorted((e["score"] for e in exposed), reverse=True)
    for entry, i in zip(exposed, order):
        assert entry["image"]["shape"] == [1, 8, 8] and entry["label"] == (2 * i) % 10
        assert np.array_equal(pixels(entry), np.round(images[2 * i] * 255))


def test_large_images_are_subsampled_and_features_carry_no_image():
    images = np.random.default_rng(1).random((4, 3, 70, 64))
    exposed = most_exposed(np.ones((2, 2)), _data(images))
    assert exposed[0]["image"]["shape"] == [3, 24, 22] and max(exposed[0]["image"]["shape"][1:]) <= THUMBNAIL
    # the shared denormalisation keeps three decimals of a unit: within one level of 255
    assert np.abs(pixels(exposed[0]) - np.round(images[0][:, ::3, ::3] * 255)).max() <= 1
    tabular = most_exposed(np.ones((2, 3)), _data(np.random.default_rng(2).random((6, 5))))
    assert len(tabular) == 3 and all("image" not in e for e in tabular)
