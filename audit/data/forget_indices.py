"""A forget request given as a file (`forget.indices_file`): dataset indices, one per line,
or a `.json` array, or a `.npy` array; every index must lie in the training pool."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from audit.core.errors import SalunInputError


def indices_from_file(path: Path, pool_index: np.ndarray) -> np.ndarray:
    """The pool positions of the dataset indices a forget request file lists."""
    field = "forget.indices_file"
    try:
        if not path.is_file():
            raise SalunInputError(f"{field}: file not found: {path}")
        if path.suffix == ".npy":
            values = np.load(path, allow_pickle=False)
        elif path.suffix == ".json":
            values = _json_indices(path)
        else:
            values = np.loadtxt(path, dtype=np.int64, ndmin=1, comments="#", delimiter=None)
    except (ValueError, OSError, EOFError, OverflowError, RecursionError) as error:
        raise SalunInputError(f"{field}: cannot read {path}: {' '.join(str(error).split())}") from None
    values = np.asarray(values).ravel()
    integral = values.dtype.kind == "f" and bool(np.all(np.isfinite(values) & (np.mod(values, 1) == 0)))
    if values.size == 0 or not (values.dtype.kind in "iu" or integral):
        raise SalunInputError(f"{field}: {path} must hold a non-empty list of integer indices")
    values = values.astype(np.int64)
    if len(np.unique(values)) != len(values):
        raise SalunInputError(f"{field}: {path} lists some indices more than once")
    where = {int(v): i for i, v in enumerate(pool_index)}
    outside = [int(v) for v in values if int(v) not in where]
    if outside:
        shown = ", ".join(map(str, outside[:5])) + (" ..." if len(outside) > 5 else "")
        raise SalunInputError(
            f"{field}: {len(outside)} indices are not in the training pool (held out for test, "
            f"or out of range): {shown}"
        )
    positions = np.sort(np.array([where[int(v)] for v in values], dtype=np.int64))
    if len(positions) >= len(pool_index):
        raise SalunInputError(f"{field}: forgetting the whole pool leaves nothing to retain")
    return positions


_JSON_KINDS = {dict: "an object", str: "a string", int: "a number", float: "a number", bool: "a boolean",
               type(None): "null"}


def _json_indices(path: Path) -> list[int]:
    """The indices of a .json file: one array of integers, nothing else."""
    values = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(values, list):
        raise SalunInputError(f"forget.indices_file: {path} holds {_JSON_KINDS[type(values)]}; "
                              "expected a JSON array of integer indices")
    if not all(type(v) is int for v in values):
        raise SalunInputError(f"forget.indices_file: {path} must hold integer indices only")
    return values
