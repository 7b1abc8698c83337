import os

import numpy as np
import pytest
import torch

from audit.store import Store, write_text_atomic


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
