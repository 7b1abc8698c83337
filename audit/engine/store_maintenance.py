"""Store upkeep: `salun store check` finds what is damaged or stray, `salun store gc` removes
what no recent audit uses.

check reads and never writes (unless asked to repair). gc keeps every artifact that an audit
record (`audits/*.json`, written by Store.record_use) of the last `keep_days` names, and every
artifact written within IN_FLIGHT_GRACE_S (an audit still running, or killed before it could
record its keys); the rest of objects/, the quarantine and the staging leftovers of dead
processes go.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from audit.core.errors import SalunInputError
from audit.engine.store import (AUDITS, CORRUPT, LEGACY, OBJECTS, ORPHAN, QUARANTINE, SCRATCH, USE_FORMAT,
                         ArtifactProblem, Store, dead_staging, label_of, verified_digests)

DAY_S = 86400.0
IN_FLIGHT_GRACE_S = DAY_S
_KEY = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Finding:
    path: Path
    problem: str
    key: str | None = None
    label: str | None = None
    kind: str = ORPHAN

    def describe(self, root: Path) -> str:
        what = f"{self.key[:12]} ({self.label})" if self.key else str(self.path.relative_to(root))
        return f"{what}: {self.problem}"


@dataclass
class CheckReport:
    root: Path
    intact: int = 0
    corrupt: list[Finding] = field(default_factory=list)
    legacy: list[Finding] = field(default_factory=list)
    orphans: list[Finding] = field(default_factory=list)
    quarantined: list[Path] = field(default_factory=list)
    bad_records: list[Finding] = field(default_factory=list)

    @property
    def damaged(self) -> list[Finding]:
        """The artifacts an audit would have to recompute."""
        return self.corrupt + self.legacy

    @property
    def clean(self) -> bool:
        return not (self.damaged or self.orphans or self.quarantined or self.bad_records)


@dataclass(frozen=True)
class AuditRecord:
    path: Path
    name: str
    used_at: float
    keys: frozenset[str]


@dataclass
class GcReport:
    removed: dict[str, list[Path]]  # "artifacts", "quarantined", "staging" -> what goes
    bytes: dict[str, int]
    kept: int
    records: list[AuditRecord]


def require_store(root: str | Path) -> Path:
    root = Path(root)
    if not (root / OBJECTS).is_dir():
        raise SalunInputError(f"{root} is not a salun store (it has no {OBJECTS}/ folder)")
    return root


def tree_bytes(path: Path) -> int:
    """The size of a file, or of every file under a folder."""
    if not path.is_dir() or path.is_symlink():
        return path.lstat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if not p.is_dir() or p.is_symlink())


def _entries(folder: Path) -> list[Path]:
    return sorted(folder.iterdir()) if folder.is_dir() else []


def artifact_folders(root: Path) -> tuple[list[Path], list[Finding]]:
    """The folders at objects/<key[:2]>/<key>, and whatever else objects/ holds, as orphans."""
    folders, orphans = [], []
    for prefix in _entries(root / OBJECTS):
        if not prefix.is_dir() or not re.fullmatch(r"[0-9a-f]{2}", prefix.name):
            orphans.append(Finding(prefix, "not an objects/<key[:2]> folder"))
            continue
        for entry in _entries(prefix):
            if not entry.is_dir() or entry.is_symlink():
                orphans.append(Finding(entry, "not an artifact folder"))
            elif not _KEY.fullmatch(entry.name) or entry.name[:2] != prefix.name:
                orphans.append(Finding(entry, "misplaced: not at objects/<key[:2]>/<key>"))
            else:
                folders.append(entry)
    return folders, orphans


def check_store(root: str | Path) -> CheckReport:
    """Every artifact verified against its digests, and everything else the store holds; read-only."""
    report = CheckReport(require_store(root))
    folders, report.orphans = artifact_folders(report.root)
    for folder in folders:
        try:
            verified_digests(folder)
            report.intact += 1
        except ArtifactProblem as problem:
            finding = Finding(folder, str(problem), folder.name, label_of(folder), problem.kind)
            {CORRUPT: report.corrupt, LEGACY: report.legacy, ORPHAN: report.orphans}[problem.kind].append(finding)
    report.orphans += [Finding(path, "staging leftover of a process that is gone")
                       for path in dead_staging(report.root / SCRATCH)]
    report.quarantined = _entries(report.root / QUARANTINE)
    _, report.bad_records = read_records(report.root)
    return report


def repair(report: CheckReport) -> list[Path]:
    """Move every damaged artifact of a check to the quarantine; where each went."""
    store = Store(report.root)
    return [destination for finding in report.damaged
            if (destination := store.set_aside(finding.key, ArtifactProblem(finding.problem, finding.kind)))]


def _record_of(path: Path) -> AuditRecord:
    record = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(record, dict) or record.get("format") != USE_FORMAT:
        raise ValueError(f"not a {USE_FORMAT} record")
    keys = record["keys"]
    if not isinstance(keys, list) or not all(isinstance(key, str) for key in keys):
        raise ValueError("keys is not a list of keys")
    used_at = datetime.fromisoformat(record["used_at"]).timestamp()
    return AuditRecord(path, str(record.get("name")), used_at, frozenset(keys))


def read_records(root: Path) -> tuple[list[AuditRecord], list[Finding]]:
    """The audit records of a store, and the files in audits/ that are not readable records."""
    records, bad = [], []
    for path in _entries(root / AUDITS):
        if path.name.startswith("."):
            continue  # a record being written (write_text_atomic's staging file)
        try:
            records.append(_record_of(path))
        except (OSError, ValueError, KeyError, TypeError) as error:
            bad.append(Finding(path, f"unreadable audit record ({error})"))
    return records, bad


def plan_gc(root: str | Path, keep_days: float = 30, all_unreferenced: bool = False,
            now: float | None = None) -> GcReport:
    """What gc removes; removes nothing."""
    root = require_store(root)
    now = time.time() if now is None else now
    records, bad = read_records(root)
    if bad:
        raise SalunInputError(f"store gc: {bad[0].describe(root)}; fix or delete it, so gc knows what that audit "
                              "uses")
    if not records and not all_unreferenced:
        raise SalunInputError(f"store gc: {root} has no audit records ({AUDITS}/*.json), so nothing says which "
                              "artifacts are in use; pass --all-unreferenced to remove every artifact older than "
                              f"{IN_FLIGHT_GRACE_S / 3600:g} hours")
    recent = [record for record in records if record.used_at >= now - keep_days * DAY_S]
    used = frozenset().union(*(record.keys for record in recent))
    folders, orphans = artifact_folders(root)
    unused = [folder for folder in folders if folder.name not in used and not _in_flight(folder, now)]
    removed = {"artifacts": sorted(unused + [finding.path for finding in orphans]),
               "quarantined": _entries(root / QUARANTINE),
               "staging": dead_staging(root / SCRATCH)}
    sizes = {kind: sum(tree_bytes(path) for path in paths) for kind, paths in removed.items()}
    return GcReport(removed, sizes, len(folders) - len(unused), recent)


def _in_flight(folder: Path, now: float) -> bool:
    return folder.stat().st_mtime > now - IN_FLIGHT_GRACE_S


def collect(report: GcReport, root: Path) -> None:
    """Remove what `plan_gc` listed. Artifacts leave objects/ in one rename each, so a reader
    sees a whole artifact or none."""
    trash = root / SCRATCH / f"{os.getpid()}.gc"
    trash.mkdir(exist_ok=True)
    try:
        for path in report.removed["artifacts"]:
            try:
                os.rename(path, trash / f"{path.parent.name}.{path.name}")
            except FileNotFoundError:
                continue
        for path in report.removed["quarantined"] + report.removed["staging"]:
            _remove(path)
    finally:
        shutil.rmtree(trash, ignore_errors=True)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def describe_size(count: int) -> str:
    size, unit = float(count), "B"
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            break
        size /= 1000
    return f"{count} B" if unit == "B" else f"{size:.1f} {unit}"
