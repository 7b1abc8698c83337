"""The store as a job sees it on a worker that cannot reach the audit's store: the input artifacts
it was sent, and the artifact it writes, kept in memory for the audit's own process to write with
`Store.put` (its atomic writes), so the job runners stay as they are.

An artifact written here and then written with `Store.put` gives the same bytes as one the runner
wrote into a Store directly: the same meta, tensors and arrays are serialised the same way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from audit.core.errors import SalunInputError
from audit.engine.store import ARRAYS, WEIGHTS, Store, read_digests


@dataclass(frozen=True)
class Artifact:
    meta: dict[str, Any]
    tensors: dict[str, torch.Tensor] | None = None
    arrays: dict[str, np.ndarray] | None = None

    def write(self, store: Store, key: str) -> None:
        store.put(key, self.meta, self.tensors, self.arrays)


def read_artifact(store: Store, key: str) -> Artifact:
    """The artifact of `key` as its files hold it, each checked against its digest."""
    files = read_digests(store.path(key))
    return Artifact(store.meta(key), store.tensors(key) if WEIGHTS in files else None,
                    store.arrays(key) if ARRAYS in files else None)


class MemoryStore:
    """The reads and the write a job runner makes of a Store (`has`, `meta`, `tensors`, `arrays`,
    `put`), over artifacts in memory. Each read returns a fresh copy, as a Store's does."""

    def __init__(self, inputs: dict[str, Artifact]):
        self.artifacts = dict(inputs)
        self.written: dict[str, Artifact] = {}

    def has(self, key: str) -> bool:
        return key in self.artifacts

    def put(self, key: str, meta: dict[str, Any], tensors: dict[str, torch.Tensor] | None = None,
            arrays: dict[str, np.ndarray] | None = None) -> None:
        if key in self.artifacts:
            return
        artifact = Artifact(
            json.loads(json.dumps(meta, sort_keys=True)),  # what a Store gives back: JSON's types
            None if tensors is None else {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()},
            None if arrays is None else {k: np.array(v) for k, v in arrays.items()},
        )
        self.artifacts[key] = self.written[key] = artifact

    def _artifact(self, key: str) -> Artifact:
        if key not in self.artifacts:
            raise SalunInputError(f"store artifact {key[:12]} was not sent to this worker")
        return self.artifacts[key]

    def meta(self, key: str) -> dict[str, Any]:
        return json.loads(json.dumps(self._artifact(key).meta))

    def tensors(self, key: str) -> dict[str, torch.Tensor]:
        return {name: tensor.clone() for name, tensor in self._held(key, "tensors", WEIGHTS).items()}

    def arrays(self, key: str) -> dict[str, np.ndarray]:
        return {name: array.copy() for name, array in self._held(key, "arrays", ARRAYS).items()}

    def _held(self, key: str, part: str, file: str) -> dict[str, Any]:
        held = getattr(self._artifact(key), part)
        if held is None:
            raise SalunInputError(f"store artifact {key[:12]} ({self.meta(key).get('label', 'unlabelled')}) "
                                  f"holds no {file}")
        return held
