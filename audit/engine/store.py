"""Content-addressed artifacts on disk: weights as safetensors, metadata as JSON,
observations as .npz.

An artifact is a folder `objects/<key[:2]>/<key>/` that appears in one atomic rename after
every file in it was written and fsynced, so a killed run leaves either a whole artifact
or none, and a rerun resumes from what is there.

The last file written into an artifact is SHA256SUMS: the SHA-256 of each of its other files,
in the format of `sha256sum` (so `sha256sum -c SHA256SUMS` checks one by hand). `has` counts
an artifact as present only once every digest matches (checked once per key per Store), and
every read checks the bytes it returns against the digests. An artifact that fails, or has no
SHA256SUMS (written by an older salun), is moved to `quarantine/<key>.<UTC time>` and is
recomputed like a missing one.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from audit.core.files import fsync_dir, sha256_of, write_synced, write_text_atomic
from audit.core.errors import SalunInputError

META = "meta.json"
WEIGHTS = "weights.safetensors"
ARRAYS = "arrays.npz"
ARTIFACT_FILES = (META, WEIGHTS, ARRAYS)
DIGESTS = "SHA256SUMS"
OBJECTS, SCRATCH, QUARANTINE, AUDITS = "objects", "tmp", "quarantine", "audits"
USE_FORMAT = "salun.store-use/1"
CORRUPT, LEGACY, ORPHAN = "corrupt", "legacy", "orphan"

_DIGEST_LINE = re.compile(r"([0-9a-f]{64})  (.+)")
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")

log = logging.getLogger("salun")


class CorruptArtifact(SalunInputError):
    """An artifact failed its digests when read; it was moved aside, and a rerun recomputes it."""

    def __init__(self, key: str, label: str, problem: str, destination: str | None):
        super().__init__(key, label, problem, destination)  # all in args, so it crosses process pools
        self.key, self.label, self.problem, self.destination = key, label, problem, destination

    def __str__(self) -> str:
        where = f"moved it to {self.destination}" if self.destination else "it is no longer in the store"
        return (f"store artifact {self.key[:12]} ({self.label}) is corrupt: {self.problem}; {where}; "
                "run the audit again to recompute it")


class ArtifactProblem(Exception):
    """What is wrong with an artifact folder; `kind` is CORRUPT, LEGACY (no SHA256SUMS) or ORPHAN."""

    def __init__(self, message: str, kind: str = CORRUPT):
        super().__init__(message)
        self.kind = kind


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def format_digests(digests: dict[str, str]) -> str:
    return "".join(f"{digest}  {name}\n" for name, digest in sorted(digests.items()))


def parse_digests(data: bytes) -> dict[str, str]:
    """File name -> SHA-256 from the bytes of a SHA256SUMS file; any deviation is a problem."""
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise ArtifactProblem(f"{DIGESTS} is not ASCII text") from None
    if not text.endswith("\n"):
        raise ArtifactProblem(f"{DIGESTS} is truncated (no final newline)")
    digests: dict[str, str] = {}
    for number, line in enumerate(text[:-1].split("\n"), 1):
        match = _DIGEST_LINE.fullmatch(line)
        if match is None or match[2] not in ARTIFACT_FILES or match[2] in digests:
            raise ArtifactProblem(f"{DIGESTS} line {number} is not '<sha256>  <artifact file>'")
        digests[match[2]] = match[1]
    if META not in digests:
        raise ArtifactProblem(f"{DIGESTS} does not list {META}")
    return digests


def read_digests(folder: Path) -> dict[str, str]:
    path = folder / DIGESTS
    if not os.path.lexists(folder):
        raise ArtifactProblem("is not in the store")
    try:
        return parse_digests(path.read_bytes())
    except FileNotFoundError:
        if (folder / META).is_file():
            raise ArtifactProblem(f"{DIGESTS} is missing (written by an older salun, or deleted)", LEGACY) from None
        raise ArtifactProblem(f"holds neither {META} nor {DIGESTS}", ORPHAN) from None
    except OSError as error:
        raise ArtifactProblem(f"{DIGESTS} is unreadable ({error.strerror or error})") from None


def _parse_meta(data: bytes) -> dict[str, Any]:
    try:
        meta = json.loads(data.decode("utf-8"))
    except ValueError as error:
        raise ArtifactProblem(f"{META} is not JSON ({error})") from None
    if not isinstance(meta, dict):
        raise ArtifactProblem(f"{META} holds a {type(meta).__name__}, not an object")
    return meta


def verified_digests(folder: Path) -> dict[str, str]:
    """The digests of an intact artifact folder; raises ArtifactProblem naming what is wrong.

    Reads every file; changes nothing."""
    digests = read_digests(folder)
    try:
        unlisted = sorted({path.name for path in folder.iterdir()} - set(digests) - {DIGESTS})
        if unlisted:
            raise ArtifactProblem(f"{unlisted[0]} is not listed in {DIGESTS}")
        for name, digest in digests.items():
            if not (folder / name).is_file():
                raise ArtifactProblem(f"{name} is missing")
            if sha256_of(folder / name) != digest:
                raise ArtifactProblem(f"{name} does not match its SHA-256 in {DIGESTS}")
        _parse_meta((folder / META).read_bytes())
    except OSError as error:
        raise ArtifactProblem(f"unreadable ({error.strerror or error})") from None
    return digests


def label_of(folder: Path) -> str:
    """The job label an artifact's meta.json names, read without trusting it: for messages only."""
    try:
        return str(json.loads((folder / META).read_text(encoding="utf-8")).get("label") or "unlabelled")
    except (OSError, ValueError, AttributeError):
        return "unlabelled"


def _serialised(meta: dict[str, Any], tensors: dict[str, torch.Tensor] | None,
                arrays: dict[str, np.ndarray] | None) -> dict[str, bytes]:
    files = {META: json.dumps(meta, sort_keys=True, indent=1).encode("utf-8")}
    if tensors is not None:
        files[WEIGHTS] = save_safetensors({k: v.detach().cpu().contiguous() for k, v in tensors.items()})
    if arrays is not None:
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        files[ARRAYS] = buffer.getvalue()
    return files


def _load_arrays(data: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def _utc_stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")


class Store:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.objects = self.root / OBJECTS
        self.scratch = self.root / SCRATCH
        self.quarantine = self.root / QUARANTINE
        self.audits = self.root / AUDITS
        self._intact: dict[str, dict[str, str]] = {}  # key -> digests, for artifacts verified whole
        self._legacy_reported = False
        try:
            self.objects.mkdir(parents=True, exist_ok=True)
            self.scratch.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise SalunInputError(f"audit.store: cannot use {self.root} as the store: {error}") from None

    def path(self, key: str) -> Path:
        return self.objects / key[:2] / key

    def has(self, key: str) -> bool:
        """Whether an intact artifact of `key` is here; a damaged one is moved aside first."""
        if key in self._intact:
            return True
        folder = self.path(key)
        if not os.path.lexists(folder):
            return False
        try:
            self._intact[key] = verified_digests(folder)
        except ArtifactProblem as problem:
            self.set_aside(key, problem)
            return False
        return True

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
        files = _serialised(meta, tensors, arrays)
        digests = {name: _sha256_bytes(data) for name, data in files.items()}
        staging = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}.{key[:16]}.", dir=self.scratch))
        try:
            for name, data in files.items():
                write_synced(staging / name, data)
            write_synced(staging / DIGESTS, format_digests(digests).encode("ascii"))
            fsync_dir(staging)
            final.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(staging, final)
            except OSError:
                if not self.has(key):
                    raise
            else:
                fsync_dir(final.parent)
                self._intact[key] = digests
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def meta(self, key: str) -> dict[str, Any]:
        return self._parsed(key, META, _parse_meta)

    def tensors(self, key: str) -> dict[str, torch.Tensor]:
        return self._parsed(key, WEIGHTS, load_safetensors)

    def arrays(self, key: str) -> dict[str, np.ndarray]:
        return self._parsed(key, ARRAYS, _load_arrays)

    def _parsed(self, key: str, name: str, parse: Callable[[bytes], Any]) -> Any:
        """One file of an artifact, parsed from bytes whose SHA-256 was checked."""
        try:
            data = self._verified_bytes(key, name)
            try:
                return parse(data)
            except (ValueError, OSError, SafetensorError) as error:
                raise ArtifactProblem(f"{name} does not parse ({error})") from None
        except ArtifactProblem as problem:
            self._intact.pop(key, None)
            destination = self.set_aside(key, problem)
            label = label_of(destination) if destination else "unlabelled"
            raise CorruptArtifact(key, label, str(problem), destination and str(destination)) from None

    def _verified_bytes(self, key: str, name: str) -> bytes:
        digests = self._intact.get(key) or read_digests(self.path(key))
        if name not in digests:
            raise SalunInputError(f"store artifact {key[:12]} ({label_of(self.path(key))}) holds no {name}")
        try:
            data = (self.path(key) / name).read_bytes()
        except OSError as error:
            raise ArtifactProblem(f"{name} is unreadable ({error.strerror or error})") from None
        if _sha256_bytes(data) != digests[name]:
            raise ArtifactProblem(f"{name} does not match its SHA-256 in {DIGESTS}")
        return data

    def set_aside(self, key: str, problem: ArtifactProblem) -> Path | None:
        """Move a damaged artifact to quarantine/ and log why; None if it is already gone."""
        folder = self.path(key)
        label = label_of(folder)
        if problem.kind == LEGACY:
            self._report_legacy(key, label)
        destination = self.quarantine / f"{key}.{_utc_stamp()}"
        try:
            self.quarantine.mkdir(exist_ok=True)
            os.rename(folder, destination)
        except FileNotFoundError:
            return None  # a concurrent reader moved it first
        except OSError as error:
            raise SalunInputError(f"store artifact {key[:12]} ({label}) is damaged ({problem}), and cannot be moved "
                                  f"aside: {error}") from None
        if problem.kind != LEGACY:
            log.warning("store artifact %s (%s) is corrupt: %s; moved it to %s to recompute it",
                        key[:12], label, problem, destination)
        return destination

    def _report_legacy(self, key: str, label: str) -> None:
        if self._legacy_reported:
            log.debug("store artifact %s (%s) has no %s; recomputing it", key[:12], label, DIGESTS)
            return
        self._legacy_reported = True
        count = sum(1 for folder in self.objects.glob("*/*") if not (folder / DIGESTS).exists())
        log.warning("store artifact %s (%s) has no %s: this store holds %d artifact(s) without digests (written by "
                    "an older salun, or the file was deleted); each is moved to %s and recomputed when an audit "
                    "uses it, and 'salun store gc' removes the rest", key[:12], label, DIGESTS, count, self.quarantine)

    def record_use(self, name: str, keys: Iterable[str]) -> Path:
        """Record that the audit `name` used `keys` now, so `salun store gc` keeps them."""
        record = {"format": USE_FORMAT, "name": name, "used_at": datetime.now(timezone.utc).isoformat(),
                  "keys": sorted(set(keys))}
        path = self.audits / f"{_UNSAFE_NAME.sub('_', name) or '_'}.json"
        write_text_atomic(path, json.dumps(record, indent=1) + "\n")
        return path

    def clear_scratch(self) -> None:
        """Remove what killed processes left half-written."""
        for leftover in dead_staging(self.scratch):
            shutil.rmtree(leftover, ignore_errors=True)


def dead_staging(scratch: Path) -> list[Path]:
    """Staging folders whose writing process is gone; whole artifacts are never there."""
    if not scratch.is_dir():
        return []
    return [leftover for leftover in sorted(scratch.iterdir()) if not _staged_by_live_process(leftover)]


def _staged_by_live_process(leftover: Path) -> bool:
    pid = leftover.name.split(".")[0]
    return pid.isdigit() and _alive(int(pid))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
