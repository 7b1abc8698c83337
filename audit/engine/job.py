"""A job, keyed by a hash of its parameters, its inputs and the version of the code that computes
it (its runner's and its plugins' modules with what they import, see code_digest), so a changed
input can never be served a stale result and an edit elsewhere retrains nothing; and the plan,
an audit's jobs in dependency order with the roles of their artifacts.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from typing import Any

from audit.config.spec import canonical_json
from audit.engine.code_digest import code_digest_of_kind, module_digest
from audit.engine.manifest import third_party_code

TRAIN, SALIENCY, UNLEARN, OBSERVE, RELEARN = "train", "saliency", "unlearn", "observe", "relearn"
GENERATOR, UNLEARN_GENERATOR, SAMPLE, DIMRA = "train_generator", "unlearn_generator", "sample", "dimra"
IMPORT = "import"  # a checkpoint from outside salun, checked against the architecture
# a model trained with the others of its cohort in one vectorised pass ([train] trainer = "vectorised"),
# and a group of such models that run as one job (audit.engine.populations)
TRAIN_VECTORISED, TRAIN_POPULATION = "train_vectorised", "train_population"


@dataclass(frozen=True)
class Job:
    kind: str
    params: dict[str, Any]
    inputs: tuple[str, ...]
    label: str
    code: dict[str, Any] = field(default_factory=dict)
    members: tuple[Job, ...] = ()  # a group job's planned jobs, each stored under its own key

    @functools.cached_property
    def key(self) -> str:
        code = {**self.code, "runner": code_digest_of_kind(self.kind)}
        body = {"kind": self.kind, "params": self.params, "inputs": list(self.inputs), "code": code}
        return hashlib.sha256(canonical_json(body).encode()).hexdigest()


@dataclass
class Plan:
    jobs: list[Job]  # in dependency order
    originals: list[str]
    retrains: list[str]
    unlearned: dict[str, list[str]]
    observation_of: dict[str, str]  # model key -> observation key
    seeds: list[int]
    shadows: list[str] = field(default_factory=list)  # shadow originals, in shadow order
    shadow_unlearned: dict[str, list[str]] = field(default_factory=dict)  # method label -> per shadow
    relearned: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # attack -> target -> per seed
    judge: str | None = None  # generation: the judge classifier
    samples_of: dict[str, str] = field(default_factory=dict)  # generation: generator key -> its samples' key


def code_versions(**plugins: tuple[Any, Any]) -> dict[str, Any]:
    """The code version of each plugin a job runs, role -> (origin, plugin): the digest of its
    module's closure, and for a third-party plugin also its distribution and file digest. The
    runner's own code joins in `Job.key`."""
    code: dict[str, Any] = {}
    for role, (origin, obj) in plugins.items():
        digest = module_digest(obj.__module__)
        third_party = third_party_code(origin, obj)
        code[role] = digest if third_party is None else {**third_party, "closure_sha256": digest}
    return code
