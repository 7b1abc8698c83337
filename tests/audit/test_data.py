import json
import struct

import numpy as np
import pytest

from audit.data.datasets import prepare_data
from audit.core.errors import SalunInputError
from audit.core.registry import DATASETS
from helpers import small_spec


def test_digits_split_is_stratified_disjoint_and_fixed_by_the_data_seed(tmp_path):
    data = prepare_data(small_spec(tmp_path))
    again = prepare_data(small_spec(tmp_path, audit={"name": "other"}))
    other_seed = prepare_data(small_spec(tmp_path, data={"seed": 1}))
    assert len(data.pool) + len(data.test) == 1797
    assert not set(data.pool_index) & set(data.test_index)
    assert np.array_equal(data.pool_index, again.pool_index)
    assert not np.array_equal(data.pool_index, other_seed.pool_index)
    test_share = np.bincount(data.test.y.numpy()) / np.bincount(data.pool.y.numpy() ,minlength=10).clip(1)
    assert np.all(np.abs(test_share - 0.25) < 0.03)  # 20 % held out of each class


def test_random_forget_set_is_drawn_from_the_training_pool(tmp_path):
    data = prepare_data(small_spec(tmp_path, forget={"fraction": None, "count": 100}))
    assert len(data.forget) == 100 and len(np.unique(data.forget)) == 100
    assert data.forget.max() < len(data.pool)
    assert len(data.retain) == len(data.pool) - 100
    assert np.array_equal(data.forget_set.y.numpy(), data.pool.y.numpy()[data.forget])
    assert data.digest != prepare_data(small_spec(tmp_path, forget={"fraction": None, "count": 101})).digest
    assert data.pool_digest == prepare_data(small_spec(tmp_path, forget={"fraction": None, "count": 101})).pool_digest


def test_class_forgetting_takes_the_whole_class_and_removes_it_from_the_test_metric(tmp_path):
    data = prepare_data(small_spec(tmp_path, forget={"kind": "class", "fraction": None, "classes": [3]}))
    assert set(data.forget_set.y.tolist()) == {3}
    assert 3 not in set(data.retain_set.y.tolist())
    assert data.forget_classes == (3,)
    assert not np.any(data.test.y.numpy()[data.eval_test_mask] == 3)
    with pytest.raises(SalunInputError, match=r"forget.classes: \[12\] not in 0..9"):
        prepare_data(small_spec(tmp_path, forget={"kind": "class", "fraction": None, "classes": [12]}))


def test_indices_file_names_points_held_out_for_testing(tmp_path):
    pool = prepare_data(small_spec(tmp_path))
    chosen = pool.pool_index[[5, 1, 40]]
    (tmp_path / "forget.txt").write_text("\n".join(map(str, chosen)) + "\n")
    (tmp_path / "forget.json").write_text(json.dumps([int(pool.test_index[0]), int(chosen[0])]))
    spec = small_spec(tmp_path, forget={"kind": "indices", "fraction": None, "indices_file": "forget.txt"})
    assert list(prepare_data(spec).forget) == [1, 5, 40]
    with pytest.raises(SalunInputError, match="forget.indices_file: 1 indices are not in the training pool"):
        prepare_data(small_spec(tmp_path, forget={"kind": "indices", "fraction": None, "indices_file": "forget.json"}))
    with pytest.raises(SalunInputError, match="forget.indices_file: file not found"):
        prepare_data(small_spec(tmp_path, forget={"kind": "indices", "fraction": None, "indices_file": "none.txt"}))


def test_forget_count_as_large_as_the_pool_is_refused(tmp_path):
    with pytest.raises(SalunInputError, match="forget.count: 5000 is not smaller than the training pool"):
        prepare_data(small_spec(tmp_path, forget={"fraction": None, "count": 5000}))


def test_torchvision_dataset_without_root_or_files_says_where_to_put_them(tmp_path):
    with pytest.raises(SalunInputError, match="data.root: MNIST is read from a local folder and never downloaded"):
        prepare_data(small_spec(tmp_path, data={"dataset": "MNIST"}))
    with pytest.raises(SalunInputError, match="data.root: folder not found"):
        prepare_data(small_spec(tmp_path, data={"dataset": "MNIST", "root": "missing"}))
    (tmp_path / "empty").mkdir()
    with pytest.raises(SalunInputError, match="data.root: MNIST not found under .*never downloads"):
        prepare_data(small_spec(tmp_path, data={"dataset": "MNIST", "root": "empty"}))


def _write_idx(path, magic, array):
    with open(path, "wb") as handle:
        handle.write(struct.pack(">i", magic) + b"".join(struct.pack(">i", d) for d in array.shape))
        handle.write(array.astype(np.uint8).tobytes())


def test_mnist_is_read_from_a_local_folder_in_torchvision_layout(tmp_path):
    rng = np.random.default_rng(0)
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, n in (("train", 60), ("t10k", 20)):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", 2051, rng.integers(0, 256, (n, 28, 28)))
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", 2049, np.arange(n) % 10)
    data = prepare_data(small_spec(tmp_path, data={"dataset": "MNIST", "root": "data"}))
    assert data.input_shape == (1, 28, 28)
    assert len(data.pool) == 60 and len(data.test) == 20 and len(data.forget) == 6
    assert abs(float(data.pool.x.mean())) < 1e-5  # standardised by the pool's statistics


def test_datasets_from_entry_points_are_registered(monkeypatch):
    from importlib import metadata

    from audit.core.registry import Registry

    def fake_entry_points(group):
        return [metadata.EntryPoint("tiny", "audit.data.datasets:digits", group)] if group == "salun.datasets" else []

    monkeypatch.setattr(metadata, "entry_points", fake_entry_points)
    registry = Registry("dataset", "salun.datasets", ())
    assert registry.names() == ["tiny"]
    assert registry.origin("tiny").entry_point == "salun.datasets:tiny"
    assert registry.get("tiny") is DATASETS.get("digits")
