"""Seeds derived from names, so every random stream of an audit is explicit and independent."""

from __future__ import annotations

import hashlib
import json

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


def derive_seed(*parts: object) -> int:
    """A 63-bit seed that depends only on `parts` (JSON-serialisable values)."""
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":")).encode()
    return int.from_bytes(hashlib.sha256(blob).digest()[:8], "little") & (2**63 - 1)


def torch_generator(*parts: object) -> torch.Generator:
    """A CPU generator seeded from `parts`; callers move drawn tensors where they need them."""
    import torch  # here, so that validating a spec does not load torch

    generator = torch.Generator(device="cpu")
    generator.manual_seed(derive_seed(*parts))
    return generator


def numpy_generator(*parts: object) -> np.random.Generator:
    return np.random.default_rng(derive_seed(*parts))
