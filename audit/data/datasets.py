"""Datasets, the train/test split and the forget set.

A dataset plugin is a function `load(root) -> Source` registered in `DATASETS` (or through
the entry-point group `salun.datasets`); it may also declare keyword parameters named after
the loader options of `[data]` (`label_column`, `image_size`) to receive them. `prepare_data`
turns a source into the arrays an audit uses: the training pool the originals train on, the
test set, and the forget set, drawn from exactly that pool by the spec's data seed.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from audit.core.contracts import Subset
from audit.core.errors import SalunInputError
from audit.data.forget_indices import indices_from_file
from audit.core.registry import DATASETS
from audit.core.seeds import numpy_generator
from audit.config.spec import Spec
from audit.config.sections import DataSection, ForgetSection


@dataclass(frozen=True)
class Source:
    """What a dataset plugin returns: images as float arrays (N, C, H, W) and int labels.

    `x_test`/`y_test` are None when the dataset has no official test split; salun then
    holds out `data.test_fraction` of it.
    """

    x: np.ndarray
    y: np.ndarray
    num_classes: int
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None


@dataclass(frozen=True)
class AuditData:
    """The pool, the test set and the forget set of one audit.

    `pool_index`/`test_index` point into the source (`x`, or `x_test` when the dataset
    has an official test split); `forget` holds positions within the pool, sorted.
    """

    dataset: str
    num_classes: int
    pool: Subset
    test: Subset
    pool_index: np.ndarray
    test_index: np.ndarray
    forget: np.ndarray
    forget_classes: tuple[int, ...]
    content_digest: str
    channel_mean: np.ndarray  # (C,): the pool's per-channel statistics the images were standardised with
    channel_std: np.ndarray

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.pool.x.shape[1:])

    @functools.cached_property
    def retain(self) -> np.ndarray:
        mask = np.ones(len(self.pool), dtype=bool)
        mask[self.forget] = False
        return np.flatnonzero(mask)

    def pool_subset(self, positions: np.ndarray) -> Subset:
        index = torch.from_numpy(positions)
        return Subset(self.pool.x[index], self.pool.y[index])

    @functools.cached_property
    def forget_set(self) -> Subset:
        return self.pool_subset(self.forget)

    @functools.cached_property
    def retain_set(self) -> Subset:
        return self.pool_subset(self.retain)

    @functools.cached_property
    def eval_test_mask(self) -> np.ndarray:
        """Test points that count for TA: the forgotten classes are removed in class-wise forgetting."""
        labels = self.test.y.numpy()
        return ~np.isin(labels, self.forget_classes)

    @functools.cached_property
    def eval_test_set(self) -> Subset:
        index = torch.from_numpy(np.flatnonzero(self.eval_test_mask))
        return Subset(self.test.x[index], self.test.y[index])

    @functools.cached_property
    def pool_digest(self) -> str:
        """Identifies the data and the split: what an original model depends on."""
        return _digest(self.content_digest, self.pool_index, self.test_index)

    @functools.cached_property
    def digest(self) -> str:
        """Identifies the data, the split and the forget set."""
        return _digest(self.pool_digest, self.forget)


def _digest(*parts: object) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            hasher.update(np.ascontiguousarray(part.astype(np.int64)).tobytes())
        else:
            hasher.update(str(part).encode())
        hasher.update(b"|")
    return hasher.hexdigest()


def _content_digest(source: Source) -> str:
    hasher = hashlib.sha256()
    for array in (source.x, source.y, source.x_test, source.y_test):
        if array is not None:
            hasher.update(np.ascontiguousarray(array).tobytes())
            hasher.update(str(array.shape).encode())
    return hasher.hexdigest()


def stratified_split(y: np.ndarray, test_fraction: float, rng: np.random.Generator):
    """Pool and test positions, each class split in the same proportion."""
    pool, test = [], []
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        n_test = int(round(test_fraction * len(members)))
        test.append(members[:n_test])
        pool.append(members[n_test:])
    return np.sort(np.concatenate(pool)), np.sort(np.concatenate(test))


def select_forget(forget_spec, y_pool: np.ndarray, pool_index: np.ndarray, num_classes: int,
                  data_seed: int, indices_path: Path | None) -> tuple[np.ndarray, tuple[int, ...]]:
    """Positions of the forget set within the pool, and the forgotten classes (class-wise only)."""
    n = len(y_pool)
    if forget_spec.kind == "random":
        count = forget_spec.count
        if count is None:
            count = int(round(forget_spec.fraction * n))
            if count < 1:
                raise SalunInputError(
                    f"forget.fraction: {forget_spec.fraction} of {n} pool points selects nothing"
                )
        if count >= n:
            raise SalunInputError(
                f"forget.count: {count} is not smaller than the training pool ({n} points)"
            )
        rng = numpy_generator("forget", data_seed)
        return np.sort(rng.choice(n, size=count, replace=False)), ()
    if forget_spec.kind == "class":
        classes = tuple(sorted(set(forget_spec.classes)))
        bad = [c for c in classes if not 0 <= c < num_classes]
        if bad:
            raise SalunInputError(f"forget.classes: {bad} not in 0..{num_classes - 1}")
        positions = np.flatnonzero(np.isin(y_pool, classes))
        if len(positions) >= n:
            raise SalunInputError("forget.classes: forgetting every class leaves nothing to retain")
        return positions, classes
    return indices_from_file(indices_path, pool_index), ()


def channel_statistics(pool: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std of the pool (a constant channel gets std 1)."""
    mean = pool.mean(axis=(0, 2, 3), dtype=np.float64)
    std = pool.std(axis=(0, 2, 3), dtype=np.float64)
    std[std == 0] = 1.0
    return mean, std


def _standardise(mean: np.ndarray, std: np.ndarray, *parts: np.ndarray) -> list[torch.Tensor]:
    shape = (1, -1, 1, 1)
    return [torch.from_numpy(((a - mean.reshape(shape)) / std.reshape(shape)).astype(np.float32)) for a in parts]


# `[data]` fields handed to the loaders that declare a parameter of the same name
LOADER_OPTIONS = ("label_column", "image_size")


def loader_options(data_spec: DataSection) -> dict[str, Any]:
    return {name: getattr(data_spec, name) for name in LOADER_OPTIONS}


def _modified(path: str | None) -> int | None:
    return os.stat(path).st_mtime_ns if path and os.path.exists(path) else None


def prepare_data(spec: Spec) -> AuditData:
    """The AuditData of a spec; cached per process, since every job of an audit needs it."""
    root = str(spec.resolve_path(spec.data.root)) if spec.data.root else None
    indices = str(spec.resolve_path(spec.forget.indices_file)) if spec.forget.indices_file else None
    # an edited data or indices file must not be served from the cache
    stamps = (_modified(root), _modified(indices))
    data = _prepare_cached(spec.data.model_dump_json(), spec.forget.model_dump_json(), root, indices, stamps)
    if spec.backdoor.enabled:
        spec.backdoor.check_fits(data.input_shape[1:])
    return data


@functools.lru_cache(maxsize=4)
def _prepare_cached(data_json: str, forget_json: str, root: str | None, indices: str | None,
                    stamps: tuple[int | None, int | None]):
    data_spec = DataSection.model_validate_json(data_json)
    forget_spec = ForgetSection.model_validate_json(forget_json)
    source = load_source(data_spec.dataset, Path(root) if root else None, loader_options(data_spec))
    y = np.asarray(source.y, dtype=np.int64)
    if source.x_test is None:
        rng = numpy_generator("split", data_spec.seed)
        pool_index, test_index = stratified_split(y, data_spec.test_fraction, rng)
        x_pool, y_pool = source.x[pool_index], y[pool_index]
        x_test, y_test = source.x[test_index], y[test_index]
    else:
        pool_index, test_index = np.arange(len(y)), np.arange(len(source.y_test))
        x_pool, y_pool = source.x, y
        x_test, y_test = source.x_test, np.asarray(source.y_test, dtype=np.int64)
    forget, classes = select_forget(
        forget_spec, y_pool, pool_index, source.num_classes, data_spec.seed,
        Path(indices) if indices else None,
    )
    x_pool, x_test = np.asarray(x_pool, dtype=np.float32), np.asarray(x_test, dtype=np.float32)
    mean, std = channel_statistics(x_pool)
    pool_x, test_x = _standardise(mean, std, x_pool, x_test)
    return AuditData(
        dataset=data_spec.dataset,
        num_classes=source.num_classes,
        pool=Subset(pool_x, torch.from_numpy(y_pool)),
        test=Subset(test_x, torch.from_numpy(y_test)),
        pool_index=pool_index,
        test_index=test_index,
        forget=forget,
        forget_classes=classes,
        content_digest=_content_digest(source),
        channel_mean=mean,
        channel_std=std,
    )


def auxiliary_set(name: str, root: Path | None, data: AuditData, path: str,
                  options: Mapping[str, Any] | None = None) -> Subset:
    """Every image of another dataset, standardised like the audit's, for an attacker's own
    data; it must have the audit's image shape and classes. `options` as for `load_source`."""
    source = load_source(name, root, options)
    if tuple(source.x.shape[1:]) != data.input_shape or source.num_classes != data.num_classes:
        raise SalunInputError(f"{path}: '{name}' has images of shape {tuple(source.x.shape[1:])} in "
                              f"{source.num_classes} classes; the audit's are {data.input_shape} in {data.num_classes}")
    (x,) = _standardise(data.channel_mean, data.channel_std, np.asarray(source.x, dtype=np.float32))
    return Subset(x, torch.from_numpy(np.asarray(source.y, dtype=np.int64)))


def load_source(name: str, root: Path | None, options: Mapping[str, Any] | None = None) -> Source:
    """The source of dataset `name`; its loader gets those `options` (see LOADER_OPTIONS) it
    declares, and an option it does not declare must keep its default."""
    loader = DATASETS.get(name, path="data.dataset")
    source = loader(root, **_options_for(loader, name, options or {}))
    if source.x.ndim != 4 or len(source.x) != len(source.y):
        raise SalunInputError(
            f"data.dataset: '{name}' returned images of shape {source.x.shape} for "
            f"{len(source.y)} labels; expected (N, C, H, W) with one label per image"
        )
    return source


def _options_for(loader, name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    try:
        parameters = inspect.signature(loader).parameters
    except (TypeError, ValueError):  # a loader without an introspectable signature gets root only
        parameters = {}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return dict(options)
    for option, value in options.items():
        if option not in parameters and value != DataSection.model_fields[option].default:
            raise SalunInputError(f"data.{option}: dataset '{name}' has no such option")
    return {option: value for option, value in options.items() if option in parameters}


@DATASETS.register("digits")
def digits(root: Path | None = None) -> Source:
    """scikit-learn's 1,797 handwritten 8x8 digits (10 classes), shipped with scikit-learn."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images / 16.0).astype(np.float32)[:, None, :, :]
    return Source(x=x, y=bunch.target.astype(np.int64), num_classes=10)


def _torchvision_source(name: str, root: Path | None, num_classes: int) -> Source:
    import torchvision

    if root is None:
        raise SalunInputError(
            f"data.root: {name} is read from a local folder and never downloaded; set data.root "
            f"to the folder that torchvision.datasets.{name}(root, download=True) filled"
        )
    if not root.is_dir():
        raise SalunInputError(f"data.root: folder not found: {root} (put the {name} files there)")
    cls = getattr(torchvision.datasets, name)
    try:
        if name == "SVHN":
            train, test = cls(str(root), split="train"), cls(str(root), split="test")
        else:
            train, test = cls(str(root), train=True), cls(str(root), train=False)
    except (RuntimeError, OSError) as error:
        raise SalunInputError(
            f"data.root: {name} not found under {root} ({error}); salun never downloads: fetch it "
            f"with torchvision.datasets.{name}('{root}', download=True) where there is a network "
            f"and copy the folder here"
        ) from None
    return Source(*_images(train), num_classes, *_images(test))


def _images(dataset) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(dataset.data)
    labels = getattr(dataset, "targets", None)
    if labels is None:
        labels = dataset.labels
    if x.ndim == 3:  # MNIST-like: N, H, W
        x = x[:, None]
    elif x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):  # CIFAR: N, H, W, C
        x = x.transpose(0, 3, 1, 2)
    return (x.astype(np.float32) / 255.0), np.asarray(labels, dtype=np.int64)


def _register_torchvision(name: str, num_classes: int) -> None:
    def load(root: Path | None = None) -> Source:
        return _torchvision_source(name, root, num_classes)

    load.__doc__ = f"torchvision's {name}, read from data.root (never downloaded)."
    load.__name__ = name.lower()
    DATASETS.register(name)(load)


for _name, _classes in (("MNIST", 10), ("FashionMNIST", 10), ("CIFAR10", 10), ("CIFAR100", 100), ("SVHN", 10)):
    _register_torchvision(_name, _classes)
