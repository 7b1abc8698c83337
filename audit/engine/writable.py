"""Folders the audit writes to: checked before any training, and a failed write later is one line.

An audit trains for minutes before it writes its reports, so a folder that cannot take them
(a read-only mount, a full disk, a path that names a file) is found first, by writing and
removing a probe file the way every artifact is written.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from audit.core.errors import SalunEnvironmentError
from audit.core.files import reason_of


def require_writable(folder: Path, field: str) -> None:
    """Create `folder` if needed and prove a file can be written, synced and removed in it."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise SalunEnvironmentError(f"{field}: {folder} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        descriptor, probe = tempfile.mkstemp(prefix=".salun-write-check.", dir=folder)
        try:
            os.write(descriptor, b"salun")
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
            os.unlink(probe)
    except OSError as error:
        raise SalunEnvironmentError(f"{field}: cannot write to {folder}: {reason_of(error)}") from None
