"""One registry for every kind of plugin: unlearners, attacks, datasets, models.

Built-in plugins register with the `register` decorator when their package is imported;
third-party packages register through an entry-point group. A config can only name what
is registered here, never an import path.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import importlib.metadata as metadata
import inspect
import logging
from dataclasses import dataclass
from typing import Any, Callable, Generic, Iterator, TypeVar

from audit import __version__
from audit.errors import SalunInputError

log = logging.getLogger("salun")

T = TypeVar("T")


@dataclass(frozen=True)
class Origin:
    """Where a plugin came from: the distribution and version that supplied it."""

    distribution: str
    version: str
    module: str
    entry_point: str | None = None

    def describe(self) -> str:
        via = f" via entry point {self.entry_point}" if self.entry_point else ""
        return f"{self.distribution} {self.version} ({self.module}){via}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "distribution": self.distribution,
            "version": self.version,
            "module": self.module,
            "entry_point": self.entry_point,
        }


@functools.cache
def _distributions_by_package() -> dict[str, list[str]]:
    """Scans every installed distribution's file list, so it runs once per process."""
    return metadata.packages_distributions()


def _origin_of(obj: Any, entry_point: str | None = None) -> Origin:
    module = getattr(obj, "__module__", None) or "?"
    top = module.split(".")[0]
    distributions = _distributions_by_package().get(top, [])
    if distributions:
        name = distributions[0]
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            version = "unknown"
    elif top in ("audit", "unlearners", "attacks", "reports"):
        name, version = "salun", __version__
    else:
        name, version = top, "unknown"
    return Origin(name, version, module, entry_point)


def summary_of(obj: Any) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


class Registry(Generic[T]):
    """Named plugins of one kind, filled by decorators and by an entry-point group."""

    def __init__(self, kind: str, group: str, builtins: tuple[str, ...]):
        self.kind = kind
        self.group = group
        self._builtins = builtins
        self._items: dict[str, T] = {}
        self._origins: dict[str, Origin] = {}
        self._broken: dict[str, str] = {}
        self._loaded = False
        self._loading = False

    def register(self, name: str) -> Callable[[T], T]:
        def decorate(obj: T) -> T:
            self._add(name, obj, _origin_of(obj))
            return obj

        return decorate

    def _add(self, name: str, obj: T, origin: Origin) -> None:
        known = self._items.get(name)
        if known is not None and known is not obj:
            raise SalunInputError(
                f"{self.kind} '{name}' from {origin.describe()} clashes with the one from "
                f"{self._origins[name].describe()}; rename one of them"
            )
        self._items[name] = obj
        self._origins[name] = origin

    def _ensure_loaded(self) -> None:
        if self._loaded or self._loading:
            return
        self._loading = True
        try:
            for module in self._builtins:
                importlib.import_module(module)
            for entry_point in metadata.entry_points(group=self.group):
                self._load_entry_point(entry_point)
            self._loaded = True
        finally:
            self._loading = False

    def _load_entry_point(self, entry_point: metadata.EntryPoint) -> None:
        label = f"{self.group}:{entry_point.name}"
        try:
            obj = entry_point.load()
        except Exception as error:  # a broken third-party plugin must not break the others
            self._broken[entry_point.name] = f"{type(error).__name__}: {error}"
            log.warning("could not load %s %s: %s", self.kind, label, error)
            return
        if self._items.get(entry_point.name) is obj:
            origin = self._origins[entry_point.name]
            self._origins[entry_point.name] = Origin(
                origin.distribution, origin.version, origin.module, label
            )
            return
        distribution = entry_point.dist.name if entry_point.dist else None
        origin = _origin_of(obj, label)
        if distribution:
            origin = Origin(distribution, entry_point.dist.version, origin.module, label)
        self._add(entry_point.name, obj, origin)

    def names(self) -> list[str]:
        self._ensure_loaded()
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        self._ensure_loaded()
        return name in self._items

    def __iter__(self) -> Iterator[tuple[str, T]]:
        return iter((name, self._items[name]) for name in self.names())

    def get(self, name: str, path: str | None = None) -> T:
        """The plugin called `name`; an unknown name is a SalunInputError naming `path`."""
        self._ensure_loaded()
        if name in self._items:
            return self._items[name]
        prefix = f"{path}: " if path else ""
        if name in self._broken:
            raise SalunInputError(f"{prefix}{self.kind} '{name}' failed to load: {self._broken[name]}")
        close = difflib.get_close_matches(name, self._items, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        known = ", ".join(sorted(self._items)) or "none"
        raise SalunInputError(f"{prefix}unknown {self.kind} '{name}'{hint}; known: {known}")

    def origin(self, name: str) -> Origin:
        self.get(name)
        return self._origins[name]

    def broken(self) -> dict[str, str]:
        self._ensure_loaded()
        return dict(self._broken)


UNLEARNERS: Registry[Any] = Registry("unlearner", "salun.unlearners", ("unlearners",))
# Methods for class-conditional generators: the same names may mean other algorithms there.
GENERATION_UNLEARNERS: Registry[Any] = Registry("generation unlearner", "salun.generation_unlearners",
                                                ("unlearners",))
ATTACKS: Registry[Any] = Registry("attack", "salun.attacks", ("attacks",))
DATASETS: Registry[Any] = Registry("dataset", "salun.datasets", ("audit.data",))
MODELS: Registry[Any] = Registry("model", "salun.models", ("audit.models",))

ALL = (UNLEARNERS, GENERATION_UNLEARNERS, ATTACKS, DATASETS, MODELS)
