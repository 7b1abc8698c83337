"""Content-addressed artifacts on disk: weights as safetensors, metadata as JSON,
observations as .npz.

An artifact is a folder `objects/<key[:2]>/<key>/` that appears in one atomic rename after
every file in it was written and fsynced, so a killed run leaves either a whole artifact
or none, and a rerun resumes from what is there.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from audit.errors import SalunInputError

META = "meta.json"
WEIGHTS = "weights.safetensors"
ARRAYS = "arrays.npz"


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` in one rename, so a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, staging = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(staging, 0o666 & ~_umask())  # mkstemp's 0600 would hide reports from their readers
        os.replace(staging, path)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


class Store:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.objects = self.root / "objects"
        self.scratch = self.root / "tmp"
        try:
            self.objects.mkdir(parents=True, exist_ok=True)
            self.scratch.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise SalunInputError(f"audit.store: cannot use {self.root} as the store: {error}") from None

    def path(self, key: str) -> Path:
        return self.objects / key[:2] / key

    def has(self, key: str) -> bool:
        return (self.path(key) / META).is_file()

    def put(
        self,
        key: str,
        meta: dict[str, Any],
        tensors: dict[str, torch.Tensor] | None = None,
        arrays: dict[str, np.ndarray] | None = None,
    ) -> None:
        """Write an artifact atomically; if another process wrote it first, keep theirs."""
        final = self.path(key)
        if self.has(key):
            return
        staging = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}.{key[:16]}.", dir=self.scratch))
        try:
            if tensors is not None:
                save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, staging / WEIGHTS)
                _fsync_file(staging / WEIGHTS)
            if arrays is not None:
                with open(staging / ARRAYS, "wb") as handle:
                    np.savez(handle, **arrays)
                    handle.flush()
                    os.fsync(handle.fileno())
            with open(staging / META, "w", encoding="utf-8") as handle:
                json.dump(meta, handle, sort_keys=True, indent=1)
                handle.flush()
                os.fsync(handle.fileno())
            _fsync_dir(staging)
            final.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(staging, final)
            except OSError:
                if not self.has(key):
                    raise
            else:
                _fsync_dir(final.parent)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def meta(self, key: str) -> dict[str, Any]:
        return json.loads((self.path(key) / META).read_text(encoding="utf-8"))

    def tensors(self, key: str) -> dict[str, torch.Tensor]:
        path = self.path(key) / WEIGHTS
        try:
            return load_file(path)
        except (SafetensorError, OSError) as error:
            raise SalunInputError(f"store artifact {path} is unreadable ({error}); delete it and rerun") from None

    def arrays(self, key: str) -> dict[str, np.ndarray]:
        with np.load(self.path(key) / ARRAYS, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}

    def clear_scratch(self) -> None:
        """Remove what killed processes left half-written; whole artifacts are never there."""
        for leftover in self.scratch.iterdir():
            pid = leftover.name.split(".")[0]
            if not pid.isdigit() or not _alive(int(pid)):
                shutil.rmtree(leftover, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
