"""Probes, and the protocol of a plugin's membership-inference attack.

A probe turns an audit's stored artifacts into one section of results.json. It registers, as a
class instantiated without arguments or as an instance, in `audit.core.registry.PROBES` (entry-point
group `salun.probes`) under its section's name ("mia", "relearn", "backdoor"), which is
also its namespace in the policy's rules (`mia.ulira.auc <= 0.55`). A task family builds the
section of every registered probe its spec enables ({} for the others) and places each where
its envelope puts it.

A probe may also say which numbers its rules can read, `rule_paths(spec) -> set[str] | None`
(dotted paths from its name, `*` for a key of any name: audit.config.rule_paths), so that a
misspelt rule is refused when the spec is validated (None, or no such method: its rules are
read as they come), and why a path it declares is absent for a method after the run,
`why_absent(spec, path) -> str | None`. A task family declares its own sections (equivalence,
metrics) the same way, as `rule_paths(spec) -> {section: set[str]}` on its results builder.

A membership-inference attack from a plugin registers in `ATTACKS` (entry-point group
`salun.attacks`) as a class, instantiated without arguments, or as an instance, implementing
`MembershipAttack`; naming it in `attacks.run` makes the MIA probe score the forget set
(members) against the test set (non-members) on every target population with it.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Protocol, runtime_checkable

import numpy as np

from audit.core.errors import SalunInputError
from audit.core.registry import ATTACKS, PROBES, TASKS

log = logging.getLogger("salun")
REFERENCE = "retrain (reference)"  # the reference retrains among the targets of plan.relearned


@dataclass(frozen=True)
class ProbeContext:
    """What a probe reads: the spec, the audit's data, its plan, the store of its artifacts and
    the observations (`audit.engine.observe.StoredObservations`) of the plan's models."""

    spec: Any
    data: Any
    plan: Any
    store: Any
    observations: Any


@runtime_checkable
class Probe(Protocol):
    """One section of results.json and the policy namespace of the same name."""

    name: str

    def enabled(self, spec: Any) -> bool:
        """Whether the spec asks for this probe; a probe it does not enable leaves its section {}."""

    def section(self, context: ProbeContext) -> dict[str, Any]:
        """The results.json section."""

    def method_entries(self, section: dict[str, Any]) -> dict[str, Any]:
        """Method label -> what the policy reads as `<name>.…` for that method (absent: None)."""

    def probe_entries(self, section: dict[str, Any]) -> list[dict[str, Any]]:
        """Entries of results.json's `probes` list (id, version, method, n_models, stats, …)."""


class SectionProbe:
    """A probe whose section holds each method's entry under "methods" and whose numbers the
    policy's rules read from the section itself (subclasses add to the `probes` list if they will)."""

    name: str

    def method_entries(self, section: dict[str, Any]) -> dict[str, Any]:
        return section.get("methods", {})

    def probe_entries(self, section: dict[str, Any]) -> list[dict[str, Any]]:
        return []


@dataclass(frozen=True)
class ShadowLogits:
    """Shadow models' logits on the examples an attack scores, for attacks that calibrate on them."""

    logits: np.ndarray  # (shadows, examples, classes)
    out: np.ndarray  # (shadows, examples) bool: the shadow never trained on the example and is one of its
    # references; every example has as many, members and non-members alike


@runtime_checkable
class MembershipAttack(Protocol):
    """A membership-inference attack on a classifier's logits; higher scores mean more likely member."""

    version: str  # recorded with every result; change it when the scores change
    needs_shadows: bool  # True: the audit trains [attacks.lira] shadow models and passes their logits

    def scores(self, logits: np.ndarray, labels: np.ndarray, shadows: ShadowLogits | None) -> np.ndarray:
        """logits (models, examples, classes), labels (examples,) -> (models, examples) member scores.
        `shadows` is None unless `needs_shadows`."""


def membership_attack(name: str, path: str = "attacks.run") -> MembershipAttack:
    """The plugin attack registered as `name`; unknown or not a MembershipAttack: a SalunInputError at `path`."""
    registered = ATTACKS.get(name, path)
    attack = registered() if isinstance(registered, type) else registered
    missing = [field for field in ("version", "needs_shadows", "scores") if not hasattr(attack, field)]
    if missing or not callable(attack.scores):
        raise SalunInputError(f"{path}: attack '{name}' from {ATTACKS.origin(name).describe()} does not implement "
                              f"audit.api.MembershipAttack (missing: {', '.join(missing) or 'a callable scores'})")
    return attack


def probe_instances() -> dict[str, Probe]:
    """Every registered probe, by the name of its section."""
    return {name: probe() if isinstance(probe, type) else probe for name, probe in PROBES}


def declared_rule_paths(spec: Any) -> dict[str, set[str] | None]:
    """Section -> the paths of the numbers it gives the policy under `spec`, from the task family's
    results builder and each probe; None where a probe does not say."""
    own = getattr(TASKS.get(spec.task.kind, "task.kind").results, "rule_paths", None)
    declared: dict[str, set[str] | None] = dict(own(spec)) if own is not None else {}
    for name, probe in probe_instances().items():
        declare = getattr(probe, "rule_paths", None)
        declared[name] = declare(spec) if declare is not None else None
    return declared


@contextmanager
def timed_section(name: str, seconds: dict[str, float], saying: str | None = None) -> Iterator[None]:
    """Build section `name`, saying so (`saying`, else "computing <name>"), into `seconds[name]`."""
    log.info("%s", saying or f"computing {name}")
    started = time.perf_counter()
    yield
    seconds[name] = time.perf_counter() - started


class ProbeSections:
    """The section of every registered probe for one audit, each with the seconds it took."""

    def __init__(self, context: ProbeContext):
        self.context = context
        self.probes = probe_instances()
        enabled = [name for name, probe in self.probes.items() if probe.enabled(context.spec)]
        self.sections: dict[str, dict[str, Any]] = {name: {} for name in self.probes}
        self.seconds: dict[str, float] = {}
        for position, name in enumerate(enabled, start=1):
            with timed_section(name, self.seconds, f"scoring {name} ({position} of {len(enabled)} probes)"):
                self.sections[name] = self.probes[name].section(context)

    def why_absent(self, path: tuple[str, ...]) -> str | None:
        """Why a number the probe of `path` declares is absent for a method, if the probe says."""
        explain = getattr(self.probes.get(path[0]), "why_absent", None)
        return explain(self.context.spec, path) if explain is not None else None

    def namespace(self, label: str) -> dict[str, Any]:
        """What each probe gives the policy for method `label`."""
        return {name: probe.method_entries(self.sections[name]).get(label) for name, probe in self.probes.items()}

    def in_order(self, own: dict[str, Any], order: tuple[str, ...]) -> dict[str, Any]:
        """The task family's own sections and the probes', in the envelope's `order`; probes it does not
        name follow."""
        placed = {name: own[name] if name in own else self.sections.get(name, {}) for name in order}
        return placed | {name: section for name, section in self.sections.items() if name not in placed}

    def entries(self, own: dict[str, list[dict[str, Any]]], order: tuple[str, ...]) -> list[dict[str, Any]]:
        """The `probes` list entries of every section, in the same order."""
        entries = []
        for name in self.in_order(own, order):
            if name in own:
                entries += own[name]
            elif name in self.probes:
                entries += self.probes[name].probe_entries(self.sections[name])
        return entries
