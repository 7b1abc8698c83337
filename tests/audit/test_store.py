import json
import os
import shutil
import subprocess
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import torch

import audit.engine.store
from audit.core.files import sha256_of, write_text_atomic
from audit.engine.store import ARRAYS, DIGESTS, META, WEIGHTS, Store
from audit.engine.store_maintenance import plan_gc


def test_artifacts_round_trip(tmp_path):
    store = Store(tmp_path)
    store.put("ab" * 32, {"status": "ok"}, tensors={"w": torch.arange(4.0)}, arrays={"logits": np.eye(3)})
    assert store.has("ab" * 32)
    assert store.meta("ab" * 32) == {"status": "ok"}
    assert torch.equal(store.tensors("ab" * 32)["w"], torch.arange(4.0))
    assert np.array_equal(store.arrays("ab" * 32)["logits"], np.eye(3))


def test_a_crash_while_writing_leaves_no_artifact(tmp_path, monkeypatch):
    store = Store(tmp_path)

    def crash(*args):
        raise OSError("disk vanished")

    monkeypatch.setattr(os, "rename", crash)
    with pytest.raises(OSError):
        store.put("cd" * 32, {"status": "ok"}, tensors={"w": torch.zeros(2)})
    assert not store.has("cd" * 32)
    assert list(store.scratch.iterdir()) == []


def test_leftovers_of_dead_processes_are_cleared_and_first_writer_wins(tmp_path):
    store = Store(tmp_path)
    (store.scratch / "999999999.deadbeef.x").mkdir()
    (store.scratch / f"{os.getpid()}.live.x").mkdir()
    store.clear_scratch()
    assert [p.name for p in store.scratch.iterdir()] == [f"{os.getpid()}.live.x"]
    store.put("ef" * 32, {"n": 1})
    store.put("ef" * 32, {"n": 2})
    assert store.meta("ef" * 32) == {"n": 1}


def test_write_text_atomic_replaces_the_whole_file(tmp_path):
    path = tmp_path / "out" / "results.json"
    write_text_atomic(path, "first")
    write_text_atomic(path, "second")
    assert path.read_text() == "second"
    assert [p.name for p in path.parent.iterdir()] == ["results.json"]


def test_every_artifact_carries_sha256sums_that_coreutils_can_check(tmp_path):
    store = Store(tmp_path)
    store.put("ab" * 32, {"status": "ok"}, tensors={"w": torch.arange(4.0)}, arrays={"logits": np.eye(3)})
    folder = store.path("ab" * 32)
    assert sorted(p.name for p in folder.iterdir()) == [DIGESTS, ARRAYS, META, WEIGHTS]
    assert [line.split("  ")[1] for line in (folder / DIGESTS).read_text().splitlines()] == [ARRAYS, META, WEIGHTS]
    if shutil.which("sha256sum"):
        assert subprocess.run(["sha256sum", "--quiet", "-c", DIGESTS], cwd=folder).returncode == 0


def test_an_artifact_is_hashed_once_per_store_however_often_it_is_asked_for(tmp_path, monkeypatch):
    Store(tmp_path).put("ab" * 32, {"status": "ok"}, tensors={"w": torch.arange(4.0)})
    hashed = []
    monkeypatch.setattr(audit.engine.store, "sha256_of", lambda path: hashed.append(path.name) or sha256_of(path))
    store = Store(tmp_path)
    assert all(store.has("ab" * 32) for _ in range(5))
    assert sorted(hashed) == [META, WEIGHTS]


def test_record_use_writes_which_keys_an_audit_used(tmp_path):
    store = Store(tmp_path)
    path = store.record_use("small/1 digest", ["cd" * 32, "ab" * 32, "cd" * 32])
    assert path == tmp_path / "audits" / "small_1_digest.json"
    record = json.loads(path.read_text())
    assert record["keys"] == ["ab" * 32, "cd" * 32] and record["name"] == "small/1 digest"
    assert time.time() - datetime.fromisoformat(record["used_at"]).timestamp() < 60
    assert [p.name for p in store.audits.iterdir()] == ["small_1_digest.json"]


# salun store check and gc

DAY = 86400


def artifact_at(store: Store, key: str, age_days: float = 0) -> Path:
    store.put(key, {"status": "ok", "label": f"job {key[:2]}"}, arrays={"x": np.arange(100)})
    if age_days:
        stamp = time.time() - age_days * DAY
        os.utime(store.path(key), (stamp, stamp))
    return store.path(key)


def test_check_lists_orphans_and_quarantine_and_exits_1(tmp_path, cli):
    store = Store(tmp_path)
    artifact_at(store, "ab" * 32)
    assert cli("store", "check", str(tmp_path)) == (0, f"store {tmp_path}: 1 intact, 0 corrupt, 0 without digests, "
                                                       "0 orphaned, 0 quarantined\n", "")
    (store.objects / "ab" / ("cd" * 32)).mkdir()  # under the wrong prefix
    (store.objects / "ef" / ("ef" * 32)).mkdir(parents=True)  # no meta.json
    (store.scratch / "999999999.deadbeef.x").mkdir()
    (tmp_path / "quarantine" / f"{'12' * 32}.20240101T000000.000000Z").mkdir(parents=True)
    code, printed, _ = cli("store", "check", str(tmp_path))
    assert code == 1
    assert "1 intact, 0 corrupt, 0 without digests, 3 orphaned, 1 quarantined" in printed
    assert "misplaced" in printed and "holds neither meta.json nor SHA256SUMS" in printed
    assert "tmp/999999999.deadbeef.x: staging leftover" in printed and "quarantined: quarantine/1212" in printed
    assert (store.scratch / "999999999.deadbeef.x").is_dir()  # check changes nothing


def test_check_refuses_what_is_not_a_store(tmp_path, cli):
    code, _, err = cli("store", "check", str(tmp_path / "nowhere"))
    assert code == 2 and err.count("\n") == 1 and "is not a salun store" in err
    assert not (tmp_path / "nowhere").exists()
    code, _, err = cli("store", "check", str(tmp_path / "a"), "--store", str(tmp_path / "b"))
    assert code == 2 and "two stores given" in err


def test_gc_refuses_a_store_without_audit_records(tmp_path, cli):
    folder = artifact_at(Store(tmp_path), "ab" * 32, age_days=40)
    code, _, err = cli("store", "gc", str(tmp_path))
    assert code == 2 and "no audit records" in err and "--all-unreferenced" in err
    assert folder.is_dir()
    assert cli("store", "gc", str(tmp_path), "--all-unreferenced")[0] == 0
    assert not folder.exists()


def test_gc_keeps_what_recent_audits_used_and_what_is_being_written(tmp_path, cli):
    store = Store(tmp_path)
    used, unused, fresh = (artifact_at(store, "ab" * 32, 40), artifact_at(store, "cd" * 32, 40),
                           artifact_at(store, "ef" * 32))
    store.record_use("small", ["ab" * 32])
    (store.scratch / "999999999.deadbeef.x").mkdir()
    (store.quarantine / f"{'12' * 32}.20240101T000000.000000Z").mkdir(parents=True)
    code, printed, _ = cli("store", "gc", str(tmp_path), "--dry-run")
    assert code == 0 and "would remove 1 artifact(s) (" in printed and "1 quarantined" in printed
    assert "1 staging leftover(s)" in printed and "kept 2 artifact(s) used by 1 audit record(s)" in printed
    assert unused.is_dir() and (store.scratch / "999999999.deadbeef.x").is_dir()
    assert cli("store", "gc", "--store", str(tmp_path))[0] == 0
    assert used.is_dir() and fresh.is_dir() and not unused.exists()
    assert list(store.quarantine.iterdir()) == [] and list(store.scratch.iterdir()) == []
    assert Store(tmp_path).has("ab" * 32)


def test_an_old_audit_record_protects_nothing(tmp_path):
    store = Store(tmp_path)
    folder = artifact_at(store, "ab" * 32)
    store.record_use("small", ["ab" * 32])
    assert plan_gc(tmp_path, keep_days=30).removed["artifacts"] == []
    assert plan_gc(tmp_path, keep_days=30, now=time.time() + 31 * DAY).removed["artifacts"] == [folder]


def test_gc_refuses_when_an_audit_record_is_unreadable(tmp_path, cli):
    store = Store(tmp_path)
    folder = artifact_at(store, "ab" * 32, age_days=40)
    store.audits.mkdir()
    (store.audits / "broken.json").write_text("{")
    code, _, err = cli("store", "gc", str(tmp_path), "--all-unreferenced")
    assert code == 2 and "audits/broken.json: unreadable audit record" in err
    assert folder.is_dir()
