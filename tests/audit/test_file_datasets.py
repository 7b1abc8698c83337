"""The file datasets: `imagefolder` (class subfolders of images) and `csv` (a feature table)."""

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from audit.data.datasets import load_source, prepare_data
from audit.core.errors import SalunInputError
from audit.pipeline import run_audit
from audit.config.spec import spec_from_dict
from helpers import small_config, small_spec

CLASSES = ("cat", "ant", "bee")  # written out of order: labels follow the sorted names


def write_images(folder: Path, classes=CLASSES, per_class: int = 12, size=(8, 8), mode: str = "L") -> Path:
    """`per_class` PNGs per class folder; a class's pixels sit near 40 * (its sorted position + 1)."""
    rng = np.random.default_rng(0)
    for name in classes:
        (folder / name).mkdir(parents=True, exist_ok=True)
        level = 40 * (sorted(classes).index(name) + 1)
        for i in range(per_class):
            pixels = (level + rng.integers(0, 10, size)).astype(np.uint8)
            image = Image.fromarray(pixels, "L")
            (image.convert(mode) if mode != "L" else image).save(folder / name / f"{i}.png")
    return folder


def image_spec(tmp_path: Path, **data):
    return small_spec(tmp_path, data={"dataset": "imagefolder", "root": "images", **data})


def test_grayscale_folder_is_one_channel_in_sorted_class_order_and_split_by_test_fraction(tmp_path):
    write_images(tmp_path / "images")
    source = load_source("imagefolder", tmp_path / "images")
    assert source.x.shape == (36, 1, 8, 8) and source.x.dtype == np.float32
    assert source.num_classes == 3 and source.x_test is None
    assert 0 <= source.x.min() and source.x.max() <= 1
    brightness = [source.x[source.y == label].mean() for label in range(3)]  # ant, bee, cat
    assert np.allclose(brightness, [(40 * k + 4.5) / 255 for k in (1, 2, 3)], atol=0.01)
    data = prepare_data(image_spec(tmp_path))
    assert data.input_shape == (1, 8, 8)
    assert len(data.test) == 6 and len(data.pool) == 30  # 20 % of each class of 12
    assert abs(float(data.pool.x.mean())) < 1e-5


def test_any_colour_image_makes_the_whole_folder_rgb(tmp_path):
    write_images(tmp_path / "images", classes=("ant", "bee"))
    write_images(tmp_path / "images", classes=("cat",), mode="RGB")
    source = load_source("imagefolder", tmp_path / "images")
    assert source.x.shape == (36, 3, 8, 8)
    assert np.array_equal(source.x[:, 0], source.x[:, 2])  # grey stays grey in RGB
    assert prepare_data(image_spec(tmp_path)).input_shape == (3, 8, 8)


def test_train_and_test_subfolders_are_the_official_split(tmp_path):
    write_images(tmp_path / "images" / "train", per_class=10)
    write_images(tmp_path / "images" / "test", per_class=3)
    data = prepare_data(image_spec(tmp_path))
    assert len(data.pool) == 30 and len(data.test) == 9
    assert sorted(np.bincount(data.test.y.numpy())) == [3, 3, 3]


def test_images_of_several_sizes_need_image_size(tmp_path):
    write_images(tmp_path / "images", classes=("ant", "bee"))
    write_images(tmp_path / "images", classes=("cat",), size=(10, 6))
    with pytest.raises(SalunInputError, match=r"data.image_size: .* differ in size \(H x W: 8x8, 10x6\)"):
        prepare_data(image_spec(tmp_path))
    assert prepare_data(image_spec(tmp_path, image_size=[6, 7])).input_shape == (1, 6, 7)


@pytest.mark.parametrize("damage, message", [
    (lambda root: None, "data.root: not found: .*images"),
    (lambda root: (root.mkdir(), (root / "a.png").write_bytes(b"")), "data.root: .*images has no class subfolders"),
    (lambda root: (write_images(root), (root / "dog").mkdir()), "data.root: class folders without images in .*: dog"),
    (lambda root: (write_images(root), (root / "ant" / "5.png").write_bytes(b"not a png")),
     r"data.root: cannot read image .*ant.5\.png"),
    (lambda root: (write_images(root / "train"), write_images(root / "test", classes=("ant", "bee"))),
     "data.root: .*train and .*test must hold the same class folders"),
])
def test_broken_image_folders_are_named(tmp_path, damage, message):
    damage(tmp_path / "images")
    with pytest.raises(SalunInputError, match=message):
        prepare_data(image_spec(tmp_path))


def test_an_option_the_dataset_does_not_take_is_refused(tmp_path):
    with pytest.raises(SalunInputError, match="data.image_size: dataset 'digits' has no such option"):
        prepare_data(small_spec(tmp_path, data={"image_size": [8, 8]}))


def write_table(path: Path, labels, header="f1,f2,f3,label") -> Path:
    """Three features that separate the classes, then the label, one row per label."""
    names = sorted(set(labels))
    rows = [f"{names.index(label)}.5,{i % 7},{-2.0 * names.index(label)},{label}" for i, label in enumerate(labels)]
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def table_spec(tmp_path: Path, **data):
    return small_spec(tmp_path, data={"dataset": "csv", "root": "table.csv", **data})


def test_csv_with_integer_labels_keeps_them_as_classes(tmp_path):
    write_table(tmp_path / "table.csv", [i % 3 for i in range(60)])
    source = load_source("csv", tmp_path / "table.csv")
    assert source.x.shape == (60, 1, 1, 3) and source.x.dtype == np.float32
    assert source.num_classes == 3 and list(source.y[:4]) == [0, 1, 2, 0]
    assert list(source.x[1, 0, 0]) == [1.5, 1.0, -2.0]
    data = prepare_data(table_spec(tmp_path))
    assert data.input_shape == (1, 1, 3) and len(data.pool) + len(data.test) == 60


def test_csv_with_text_labels_numbers_them_in_sorted_order(tmp_path):
    labels = ["virginica", "setosa", "versicolor"] * 10
    path = write_table(tmp_path / "table.csv", labels, header="f1,f2,f3,species")
    source = load_source("csv", path, {"label_column": "species"})
    assert source.num_classes == 3 and list(source.y[:3]) == [2, 0, 1]
    assert prepare_data(table_spec(tmp_path, label_column="species")).num_classes == 3


@pytest.mark.parametrize("content, data, message", [
    (None, {}, "data.root: not found: .*table.csv"),
    ("f1,f2,class\n1,2,a\n", {}, "data.label_column: no column 'label' in .*; columns found: f1, f2, class"),
    ("f1,f2,label\n1,2,a\n1,x,b\n", {}, r"data.root: .*table.csv line 3, column 'f2': 'x' is not a finite number"),
    ("f1,label\n1,a\n2,a\n", {}, "data.label_column: column 'label' of .* holds 1 class"),
])
def test_broken_csv_files_are_named(tmp_path, content, data, message):
    if content is not None:
        (tmp_path / "table.csv").write_text(content)
    with pytest.raises(SalunInputError, match=message):
        prepare_data(table_spec(tmp_path, **data))


def test_an_audit_runs_on_a_csv_table(tmp_path):
    write_table(tmp_path / "table.csv", [i % 3 for i in range(90)])
    config = small_config(
        audit={"seeds": 2, "reports": ["junit"], "store": str(tmp_path / "store")},
        data={"dataset": "csv", "root": "table.csv"},
        model={"arch": "mlp", "hidden": [16]},
        train={"epochs": 3},
        unlearners={"identity": {}, "retrain": {}},
    )
    results = run_audit(spec_from_dict(config, base_dir=tmp_path), tmp_path / "out", show_progress=False)
    means = [value["mean"] for metrics in results["metrics"].values() for value in metrics.values()
             if isinstance(value, dict) and isinstance(value.get("mean"), float)]
    assert set(results["metrics"]) == {"identity", "retrain"} and means
    assert all(metrics["failures"] == [] for metrics in results["metrics"].values())
    assert all(math.isfinite(mean) for mean in means)
    assert (tmp_path / "out" / "junit.xml").is_file()
