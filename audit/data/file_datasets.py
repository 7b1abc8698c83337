"""Datasets from your own files: a folder of images per class (`imagefolder`) and a table of
numeric features (`csv`), registered like every dataset and read from data.root."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from audit.data.datasets import Source
from audit.core.errors import SalunInputError
from audit.core.registry import DATASETS


_GRAYSCALE_MODES = ("1", "L")


@DATASETS.register("imagefolder")
def imagefolder(root: Path | None = None, image_size: tuple[int, int] | None = None) -> Source:
    """Images in class subfolders (torchvision ImageFolder layout), read from data.root.

    Layout: `root/<class>/<image>`, classes numbered in sorted folder-name order; image files
    are those with an ImageFolder extension (.png, .jpg, ...), found at any depth below their
    class folder. If root holds `train/` and `test/`, each in that layout with the same class
    folders, they are the official split; otherwise the whole folder is one pool that salun
    splits by data.test_fraction. Images become floats in [0, 1]: one channel if every image
    is grayscale, else RGB; `image_size` (data.image_size, (H, W)) resizes them all, and
    without it they must all have one size.
    """
    root = _existing(root, "imagefolder", "a folder of class subfolders", Path.is_dir)
    train_dir, test_dir = root / "train", root / "test"
    if train_dir.is_dir() and test_dir.is_dir():
        ((x, y), (x_test, y_test)), classes = _read_image_folders(root, [train_dir, test_dir], image_size)
        return Source(x, y, len(classes), x_test, y_test)
    ((x, y),), classes = _read_image_folders(root, [root], image_size)
    return Source(x, y, len(classes))


def _existing(root: Path | None, dataset: str, what: str, exists) -> Path:
    if root is None:
        raise SalunInputError(f"data.root: the {dataset} dataset reads {what}; set data.root to it")
    if not exists(root):
        raise SalunInputError(f"data.root: not found: {root} (the {dataset} dataset reads {what})")
    return root


def _class_folders(folder: Path) -> list[str]:
    classes = sorted(entry.name for entry in os.scandir(folder) if entry.is_dir())
    if not classes:
        raise SalunInputError(f"data.root: {folder} has no class subfolders (expected <class>/<image> files)")
    return classes


def _image_files(folder: Path, classes: list[str]) -> list[tuple[str, int]]:
    """(path, label) of every image under `folder`, in ImageFolder order; no class left empty."""
    from torchvision.datasets.folder import IMG_EXTENSIONS, make_dataset

    files = make_dataset(folder, {name: i for i, name in enumerate(classes)}, IMG_EXTENSIONS, allow_empty=True)
    empty = sorted(set(classes) - {classes[label] for _, label in files})
    if empty:
        raise SalunInputError(
            f"data.root: class folders without images in {folder}: {', '.join(empty)} "
            f"(image files end in {', '.join(IMG_EXTENSIONS)})"
        )
    return files


def _read_image_folders(root: Path, folders: list[Path], image_size: tuple[int, int] | None):
    """The (images, labels) of each folder, all with one channel count and size, and the classes."""
    classes = _class_folders(folders[0])
    for folder in folders[1:]:
        other = _class_folders(folder)
        if other != classes:
            raise SalunInputError(
                f"data.root: {folders[0]} and {folder} must hold the same class folders; "
                f"found {classes} and {other}"
            )
    files = [_image_files(folder, classes) for folder in folders]
    images = [[_open_image(path) for path, _ in group] for group in files]
    every = [image for group in images for image in group]
    mode = "L" if all(image.mode in _GRAYSCALE_MODES for image in every) else "RGB"
    size = image_size or _common_size(every, root)
    parts = [
        (np.stack([_pixels(image, mode, size) for image in group_images]),
         np.array([label for _, label in group_files], dtype=np.int64))
        for group_images, group_files in zip(images, files)
    ]
    return parts, classes


def _open_image(path: str):
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.load()
            return image
    except (OSError, SyntaxError, ValueError) as error:  # PIL raises SyntaxError for some corrupt files
        raise SalunInputError(f"data.root: cannot read image {path}: {error}") from None


def _common_size(images, root: Path) -> tuple[int, int]:
    sizes = sorted({(image.height, image.width) for image in images})
    if len(sizes) > 1:
        shown = ", ".join(f"{h}x{w}" for h, w in sizes[:5]) + (" ..." if len(sizes) > 5 else "")
        raise SalunInputError(
            f"data.image_size: images under {root} differ in size (H x W: {shown}); "
            f"set data.image_size = [H, W] to resize them all"
        )
    return sizes[0]


def _pixels(image, mode: str, size: tuple[int, int]) -> np.ndarray:
    """(C, H, W) floats in [0, 1]."""
    from PIL import Image

    image = image.convert(mode)
    height, width = size
    if (image.height, image.width) != (height, width):
        image = image.resize((width, height), Image.Resampling.BILINEAR)
    array = np.asarray(image, dtype=np.float32) / 255.0
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


@DATASETS.register("csv")
def csv_table(root: Path | None = None, label_column: str = "label") -> Source:
    """A table of numeric features with one class column, read from the CSV file data.root.

    Layout: a header row naming the columns, then one row per example; `label_column`
    (data.label_column) holds the class and every other column is a numeric feature. Integer
    labels are numbered in numeric order (so labels 0..K-1 keep their values), any others in
    sorted text order. Each row becomes a (1, 1, F) image, so salun's per-channel
    standardisation uses one mean and std for all F features: put features on comparable
    scales beforehand if they are not. salun holds out data.test_fraction for testing.
    """
    root = _existing(root, "csv", "a CSV file", Path.is_file)
    header, rows = _read_csv(root)
    if label_column not in header:
        raise SalunInputError(
            f"data.label_column: no column '{label_column}' in {root}; columns found: {', '.join(header)}"
        )
    label_at = header.index(label_column)
    features = [i for i in range(len(header)) if i != label_at]
    if not features:
        raise SalunInputError(f"data.root: {root} has no feature columns besides '{label_column}'")
    x = np.array([[_number(row[i], line, header[i], root) for i in features] for line, row in rows],
                 dtype=np.float32)
    y, names = _class_numbers([row[label_at].strip() for _, row in rows])
    if len(names) < 2:
        raise SalunInputError(
            f"data.label_column: column '{label_column}' of {root} holds {len(names)} class(es); at least 2 are needed"
        )
    return Source(x[:, None, None, :], y, len(names))


def _read_csv(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and the (line number, fields) of every non-blank row."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = [name.strip() for name in next(reader, [])]
            rows = [(reader.line_num, row) for row in reader if any(field.strip() for field in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise SalunInputError(f"data.root: cannot read {path}: {error}") from None
    if not header:
        raise SalunInputError(f"data.root: {path} is empty; expected a header row and data rows")
    if not rows:
        raise SalunInputError(f"data.root: {path} has a header but no data rows")
    for line, row in rows:
        if len(row) != len(header):
            raise SalunInputError(
                f"data.root: {path} line {line} has {len(row)} fields; the header has {len(header)}"
            )
    return header, rows


def _number(field: str, line: int, column: str, path: Path) -> float:
    try:
        value = float(field)
        if np.isfinite(value):
            return value
    except ValueError:
        pass
    raise SalunInputError(f"data.root: {path} line {line}, column '{column}': {field!r} is not a finite number")


def _class_numbers(labels: list[str]) -> tuple[np.ndarray, list[str]]:
    """Labels numbered 0..K-1 in sorted order (numeric order if they are all integers), and the K names."""
    try:
        names = [str(value) for value in sorted({int(label) for label in labels})]
        labels = [str(int(label)) for label in labels]
    except ValueError:
        names = sorted(set(labels))
    number = {name: i for i, name in enumerate(names)}
    return np.array([number[label] for label in labels], dtype=np.int64), names
