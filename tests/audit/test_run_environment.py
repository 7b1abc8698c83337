"""The machine under the audit: killed parents, Ctrl-C, read-only and full disks.

Each test runs the real command in a subprocess. The disk tests mount a small tmpfs, which
needs root; elsewhere they are skipped with the reason.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import processes_where, small_config, write_toml

RUN = small_config(audit={"seeds": 3}, train={"epochs": 40})
COMMAND = [sys.executable, "-m", "audit.cli", "-q", "audit", "audit.toml", "--out", "out"]


def _children(pid: int) -> list[int]:
    return processes_where(1, pid)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")  # a zombie has ended; only its parent's wait is missing


def _artifacts(store: Path) -> int:
    return sum(1 for _ in (store / "objects").glob("*/*")) if (store / "objects").exists() else 0


def _start(folder: Path, *extra: str) -> subprocess.Popen:
    write_toml(folder / "audit.toml", RUN)
    return subprocess.Popen([*COMMAND, *extra], cwd=folder, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_workers(process: subprocess.Popen, store: Path, count: int = 2) -> list[int]:
    """The worker processes, once `count` artifacts show the pool is busy."""
    deadline = time.time() + 120
    while _artifacts(store) < count and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert process.poll() is None, "the audit ended before the test could interrupt it"
    return _children(process.pid)


def _wait_until_gone(pids: list[int], seconds: float) -> list[int]:
    deadline = time.time() + seconds
    while time.time() < deadline and any(map(_alive, pids)):
        time.sleep(0.1)
    return [pid for pid in pids if _alive(pid)]


def test_workers_die_within_seconds_of_their_parent_being_killed(tmp_path):
    process = _start(tmp_path, "--workers", "2")
    try:
        descendants = _wait_for_workers(process, tmp_path / ".salun-store")
        assert len(descendants) >= 2, "expected the pool's workers (and the resource tracker)"
        os.kill(process.pid, signal.SIGKILL)  # the parent alone, as the OOM killer would
        process.wait()
        assert _wait_until_gone(descendants, seconds=5) == []
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


@pytest.mark.parametrize("stop", ["ctrl-c", "sigterm"])
def test_an_interrupt_stops_every_process_promptly_with_one_line(tmp_path, stop):
    process = _start(tmp_path, "--workers", "2")
    try:
        descendants = _wait_for_workers(process, tmp_path / ".salun-store")
        started = time.time()
        if stop == "ctrl-c":
            os.killpg(process.pid, signal.SIGINT)  # a terminal signals the whole process group
        else:
            os.kill(process.pid, signal.SIGTERM)  # a job runner's cancel signals the command alone
        _, stderr = process.communicate(timeout=30)
        assert time.time() - started < 10
        assert process.returncode == 130
        assert stderr.strip().splitlines() == [
            "salun: interrupted; finished jobs are kept in the store and a rerun resumes"]
        assert _wait_until_gone(descendants, seconds=5) == []
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


@contextlib.contextmanager
def _tmpfs(path: Path, size: str):
    """A small filesystem at `path`, or a skip where mounting is not allowed."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip() or 'mount failed'}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _remount(path: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(path)], check=True)


def _audit(folder: Path, store: Path, out: Path) -> subprocess.CompletedProcess:
    """The smallest whole audit: two seeds, a short recipe, one method, one rule."""
    config = small_config(audit={"seeds": 2, "store": str(store)}, train={"epochs": 2}, unlearners={"identity": {}},
                          policy={"rules": ["metrics.RA >= 0.1"]})
    write_toml(folder / "audit.toml", config)
    return subprocess.run([sys.executable, "-m", "audit.cli", "-q", "audit", "audit.toml", "--out", str(out)],
                          cwd=folder, capture_output=True, text=True, timeout=300)


def _one_error_line(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("salun: error: "), result.stderr
    return lines[0]


def test_a_read_only_output_folder_is_refused_before_any_training(tmp_path):
    with _tmpfs(tmp_path / "ro", "1m") as mount:
        _remount(mount, "ro")
        result = _audit(tmp_path, tmp_path / "store", mount / "out")
    assert result.returncode == 2
    assert "--out" in _one_error_line(result) and "Read-only" in result.stderr
    assert _artifacts(tmp_path / "store") == 0


def _fill(folder: Path) -> None:
    with open(folder / "filler", "wb") as handle:
        with contextlib.suppress(OSError):
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()


@pytest.mark.parametrize("full", ["out", "store"])
def test_a_full_disk_is_refused_before_any_training(tmp_path, full):
    with _tmpfs(tmp_path / "full", "512k") as mount:
        _fill(mount)
        store = mount / "store" if full == "store" else tmp_path / "store"
        if full == "store":  # the store's folders exist, as in a store that filled up earlier
            (mount / "filler").unlink()
            (store / "objects").mkdir(parents=True)
            (store / "tmp").mkdir()
            _fill(mount)
        result = _audit(tmp_path, store, mount / "out" if full == "out" else tmp_path / "out")
        assert _artifacts(store) == 0
    assert result.returncode == 2
    line = _one_error_line(result)
    assert ("--out" if full == "out" else "audit.store") in line and "No space left on device" in line


def test_an_output_path_that_names_a_file_is_refused_before_any_training(tmp_path):
    (tmp_path / "out").write_text("not a folder")
    result = _audit(tmp_path, tmp_path / "store", tmp_path / "out")
    assert result.returncode == 2
    assert "is a file, not a folder" in _one_error_line(result)
    assert _artifacts(tmp_path / "store") == 0


def test_a_read_only_store_is_refused_when_jobs_are_needed_and_used_when_none_are(tmp_path):
    with _tmpfs(tmp_path / "store", "64m") as store:
        _remount(store, "ro")
        refused = _audit(tmp_path, store, tmp_path / "out")
        assert refused.returncode == 2
        assert "audit.store" in _one_error_line(refused) and "Read-only" in refused.stderr
        assert not (tmp_path / "out" / "results.json").exists()

        _remount(store, "rw")
        assert _audit(tmp_path, store, tmp_path / "first").returncode == 0
        assert len(list((store / "audits").glob("*.json"))) == 1, "the audit records what `store gc` must keep"
        _remount(store, "ro")
        cached = _audit(tmp_path, store, tmp_path / "second")
    assert cached.returncode == 0, cached.stderr
    assert (tmp_path / "second" / "results.json").is_file()


def test_a_disk_that_fills_mid_run_is_one_line_and_the_rerun_resumes(tmp_path):
    with _tmpfs(tmp_path / "store", "300k") as store:
        full = _audit(tmp_path, store, tmp_path / "out")
        assert full.returncode == 2, full.stderr
        assert "No space left on device" in _one_error_line(full)
        kept = _artifacts(store)
        assert kept > 0, "the disk filled before the first artifact: make the tmpfs larger"

        _remount(store, "size=64m")
        resumed = _audit(tmp_path, store, tmp_path / "out")
    assert resumed.returncode == 0, resumed.stderr
    assert (tmp_path / "out" / "results.json").is_file()
