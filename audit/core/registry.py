"""One registry for every kind of plugin: unlearners, attacks, datasets, models, and the engine's
extension points (job runners, probes, executors, task families).

Built-in plugins register with the `register` decorator when their package is imported;
third-party packages register through an entry-point group. A config can only name what
is registered here, never an import path. `allow_plugins` restricts which entry points
may load (a config's `audit.plugins`); built-in plugins always load.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import importlib.metadata as metadata
import inspect
import logging
from dataclasses import dataclass
from typing import Any, Callable, Generic, Iterable, Iterator, TypeVar

from audit import __version__
from audit.core.errors import SalunInputError

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


def _label(entry_point: metadata.EntryPoint) -> str:
    """How audit.plugins names an entry point."""
    return f"{entry_point.group}:{entry_point.name}"


def _distribution_of(entry_point: metadata.EntryPoint) -> str:
    dist = entry_point.dist
    return f"{dist.name} {dist.version}" if dist else "unknown distribution"


def summary_of(obj: Any) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


class Registry(Generic[T]):
    """Named plugins of one kind, filled by decorators and by an entry-point group."""

    def __init__(self, kind: str, group: str, builtins: tuple[str, ...]):
        self.kind = kind
        self.group = group
        self._builtins = builtins
        self._registered: dict[str, tuple[T, Origin]] = {}  # by the decorator: kept across reloads
        self._items: dict[str, T] = {}
        self._origins: dict[str, Origin] = {}
        self._broken: dict[str, str] = {}
        self._not_allowed: dict[str, str] = {}  # entry point name -> its distribution and version
        self._loaded = False
        self._loading = False

    def register(self, name: str) -> Callable[[T], T]:
        def decorate(obj: T) -> T:
            origin = _origin_of(obj)
            self._add(name, obj, origin)
            self._registered[name] = (obj, origin)
            return obj

        return decorate

    def unregister(self, name: str) -> None:
        """Forget a plugin registered with the decorator (tests register their own)."""
        self._registered.pop(name, None)
        self._items.pop(name, None)
        self._origins.pop(name, None)

    def reset(self) -> None:
        """Drop every entry point loaded so far; the next lookup scans the entry points again."""
        self._items = {name: obj for name, (obj, _) in self._registered.items()}
        self._origins = {name: origin for name, (_, origin) in self._registered.items()}
        self._broken.clear()
        self._not_allowed.clear()
        self._loaded = False

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
                if _allowed is None or _label(entry_point) in _allowed:
                    self._load_entry_point(entry_point)
                else:
                    self._not_allowed[entry_point.name] = _distribution_of(entry_point)
            self._loaded = True
        finally:
            self._loading = False

    def _load_entry_point(self, entry_point: metadata.EntryPoint) -> None:
        label = _label(entry_point)
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
        if name in self._not_allowed:
            raise SalunInputError(f"{prefix}{self.kind} '{name}' is installed ({self._not_allowed[name]}) but "
                                  f"not in audit.plugins; add '{self.group}:{name}'")
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

    def not_allowed(self) -> dict[str, str]:
        """Installed entry points the allow-list kept from loading: name -> distribution and version."""
        self._ensure_loaded()
        return dict(self._not_allowed)


UNLEARNERS: Registry[Any] = Registry("unlearner", "salun.unlearners", ("unlearners",))
# Methods for class-conditional generators: the same names may mean other algorithms there.
GENERATION_UNLEARNERS: Registry[Any] = Registry("generation unlearner", "salun.generation_unlearners",
                                                ("unlearners",))
ATTACKS: Registry[Any] = Registry("attack", "salun.attacks", ("attacks",))
DATASETS: Registry[Any] = Registry("dataset", "salun.datasets", ("audit.data.datasets", "audit.data.file_datasets"))
MODELS: Registry[Any] = Registry("model", "salun.models", ("audit.nn.models",))

# The engine's extension points: what computes a job of each kind, what turns stored artifacts into a
# results.json section, how a plan's jobs are run, and the task families (what is audited).
JOB_RUNNERS: Registry[Any] = Registry("job runner", "salun.job_runners",
                                      ("audit.tasks.classification.jobs", "audit.tasks.classification.population_jobs",
                                       "audit.tasks.generation.jobs",
                                       "attacks.relearn_jobs", "attacks.dimra_jobs", "unlearners.saliency_job"))
PROBES: Registry[Any] = Registry("probe", "salun.probes", ("attacks",))
EXECUTORS: Registry[Any] = Registry("executor", "salun.executors", ("audit.engine.execute",))
TASKS: Registry[Any] = Registry("task family", "salun.tasks", ("audit.tasks.classification.family",
                                                            "audit.tasks.generation.family"))

ALL = (UNLEARNERS, GENERATION_UNLEARNERS, ATTACKS, DATASETS, MODELS, JOB_RUNNERS, PROBES, EXECUTORS, TASKS)

_allowed: frozenset[str] | None = None  # the entry points that may load, as "<group>:<name>"; None: all


def allow_plugins(allowed: Iterable[str] | None) -> None:
    """Let only the entry points in `allowed` ("<group>:<name>", a config's `audit.plugins`)
    load from now on; None lets every installed one load. Built-in plugins always load.

    A changed allow-list drops what entry points loaded before and rescans them at the next
    lookup, so a plugin outside the list is never imported by a lookup after this call and
    naming it is a SalunInputError. An entry that names no installed entry point is one too.
    """
    global _allowed
    wanted = None if allowed is None else _checked_allow_list(allowed)
    if wanted != _allowed:
        _allowed = wanted
        _reset_all()


def reload_plugins() -> None:
    """Rescan every entry-point group, e.g. after a distribution was installed or sys.path changed."""
    _distributions_by_package.cache_clear()
    _reset_all()


def _reset_all() -> None:
    for registry in ALL:
        registry.reset()


def _checked_allow_list(allowed: Iterable[str]) -> frozenset[str]:
    """`allowed` as a set, each entry checked against the installed entry points of salun's groups."""
    entries = [allowed] if isinstance(allowed, str) else list(allowed)
    groups = [registry.group for registry in ALL]
    installed = {_label(ep) for group in groups for ep in metadata.entry_points(group=group)}
    for entry in entries:
        group, _, name = entry.partition(":") if isinstance(entry, str) else ("", "", "")
        if group not in groups or not name:
            raise SalunInputError(f"audit.plugins: expected '<group>:<name>' with the group one of "
                                  f"{', '.join(groups)}, got {entry!r}")
        if entry not in installed:
            close = difflib.get_close_matches(entry, installed, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise SalunInputError(f"audit.plugins: '{entry}' matches no installed entry point{hint}; "
                                  f"installed: {', '.join(sorted(installed)) or 'none'}")
    return frozenset(entries)
