"""The audit spec: a TOML file validated into frozen objects with every default filled in.

A bad field is reported with its dotted path (`train.lr: ...`). The resolved spec is stored
in results.json and loads back into an equal spec, so a run is described by its own output.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import pydantic
from pydantic import BaseModel, Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from audit.core.errors import SalunInputError
from audit.core.params import input_error, shown, validate_keywords
from audit.config.policy import (BACKDOOR_RULE, DEFAULT_RULES, DP_RULE, GENERATION_RULES, RELEARN_RULE, SUBJECT_RULES,
                                 parse_rule)
from audit.config.rule_paths import check_rule_paths
from audit.core.probes import declared_rule_paths
from audit.core.registry import GENERATION_UNLEARNERS, UNLEARNERS, allow_plugins
from audit.config.sections import (
    ATTACK_NAMES, EXECUTION_FIELDS, AttacksSection, AuditSection, BackdoorSection, DataSection, EquivalenceSection,
    ForgetSection, GenerationSection, MetricsSection, ModelSection, PolicySection, RelearnSection, Section,
    SubjectSection, TaskSection, TrainSection, UnlearnerSection, name_at,
)

DEFAULT_SPEC_RESOURCE = "default_audit.toml"
MAX_CONFIG_BYTES = 16 * 2**20  # far beyond any audit config; a bigger file is no config

class Spec(Section):
    audit: AuditSection = Field(default_factory=AuditSection, validate_default=True)
    task: TaskSection = Field(default_factory=TaskSection)
    data: DataSection = Field(default_factory=DataSection)
    forget: ForgetSection = Field(default_factory=ForgetSection)
    model: ModelSection = Field(default_factory=ModelSection)
    train: TrainSection = Field(default_factory=TrainSection)
    generation: GenerationSection = Field(default_factory=GenerationSection)
    metrics: MetricsSection = Field(default_factory=MetricsSection)
    attacks: AttacksSection = Field(default_factory=AttacksSection)
    equivalence: EquivalenceSection = Field(default_factory=EquivalenceSection)
    relearn: RelearnSection = Field(default_factory=RelearnSection)
    backdoor: BackdoorSection = Field(default_factory=BackdoorSection)
    policy: PolicySection = Field(default_factory=PolicySection)
    subject: SubjectSection | None = None
    unlearners: dict[str, UnlearnerSection] = Field(default_factory=dict)

    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)

    @field_validator("audit")
    @classmethod
    def _allow_listed_plugins(cls, audit: AuditSection) -> AuditSection:
        """Fields validate in order: every registry lookup after this one honours audit.plugins."""
        allow_plugins(audit.plugins)
        return audit

    @model_validator(mode="before")
    @classmethod
    def _default_policy(cls, raw: Any) -> Any:
        """Without a [policy], the default rules, plus one per attack the spec runs beyond them."""
        if not isinstance(raw, dict) or "policy" in raw:
            return raw

        def section(name: str) -> dict[str, Any]:
            value = raw.get(name, {})
            return value.model_dump() if isinstance(value, BaseModel) else value if isinstance(value, dict) else {}

        generating = section("task").get("kind") == "generation"
        rules = list(GENERATION_RULES if generating else SUBJECT_RULES if raw.get("subject") else DEFAULT_RULES)
        relearn, fraction = section("relearn").get("run"), section("backdoor").get("fraction")
        # a value of the wrong type adds no rule here: its field reports it
        if isinstance(relearn, (list, tuple)) and "retain" in relearn:
            rules.append(RELEARN_RULE)
        if isinstance(fraction, (int, float)) and fraction > 0:
            rules.append(BACKDOOR_RULE)
        if isinstance(section("train").get("dp"), dict):
            rules.append(DP_RULE)
        return {**raw, "policy": {"rules": rules}}

    @model_validator(mode="before")
    @classmethod
    def _default_attacks(cls, raw: Any) -> Any:
        """Membership inference is defined here for classifiers: a generation audit runs none unless
        asked. U-LiRA needs the method itself to unlearn shadow models: a [subject] audit leaves it out."""
        if not isinstance(raw, dict) or "attacks" in raw:
            return raw
        task = raw.get("task")
        kind = task.kind if isinstance(task, TaskSection) else task.get("kind") if isinstance(task, dict) else None
        if kind == "generation":
            return {**raw, "attacks": {"run": []}}
        if raw.get("subject") is not None:
            return {**raw, "attacks": {"run": [name for name in ATTACK_NAMES if name != "ulira"]}}
        return raw

    @model_validator(mode="after")
    def _something_to_audit(self) -> "Spec":
        if not self.unlearners and self.subject is None:
            raise SalunInputError(
                "unlearners: no method to audit; add a [unlearners.<name>] section (see `salun list`), "
                "or a [subject] with your own checkpoints")
        if self.subject is not None and self.forget.kind != "indices":
            raise SalunInputError('forget.kind: a [subject] audit takes its forget request as a file: set '
                                  'forget.kind = "indices" and forget.indices_file')
        if self.subject is not None and "ulira" in self.attacks.run:
            raise SalunInputError("attacks.run: U-LiRA needs the unlearning method itself to unlearn shadow models; "
                                  "a [subject] audit of checkpoints cannot run it: leave ulira out")
        if self.subject is not None and self.backdoor.enabled:
            raise SalunInputError("backdoor.fraction: a [subject] audit cannot plant a trigger in a model trained "
                                  "outside salun")
        return self

    @model_validator(mode="after")
    def _trigger_fits(self) -> "Spec":
        """Where the spec fixes the image size; otherwise preparing the data checks it."""
        if self.backdoor.enabled and self.data.image_size is not None:
            self.backdoor.check_fits(self.data.image_size)
        return self

    @model_validator(mode="after")
    def _generation_scope(self) -> "Spec":
        if self.task.kind != "generation":
            return self
        if self.forget.kind != "class" or len(self.forget.classes or ()) != 1:
            raise SalunInputError("forget: a generation audit forgets one class; set forget.kind = \"class\" "
                                  "and forget.classes = [c]")
        if self.attacks.run:
            raise SalunInputError("attacks.run: membership inference runs on classifiers only; "
                                  "set attacks.run = [] for a generation audit")
        if self.backdoor.enabled:
            raise SalunInputError("backdoor.fraction: backdoor verification runs on classifiers only")
        if "few_shot" in self.relearn.run:
            raise SalunInputError('relearn.run: a generation audit runs DiMRA ("retain"), not "few_shot"')
        return self

    @model_validator(mode="after")
    def _rules_read_numbers(self) -> "Spec":
        """Every rule names a number this audit's sections declare, before anything is trained."""
        check_rule_paths([parse_rule(text).path for text in self.policy.rules], declared_rule_paths(self))
        return self

    @field_validator("unlearners", mode="before")
    @classmethod
    def _validate_unlearners(cls, raw: Any, info: ValidationInfo) -> Any:
        if not isinstance(raw, dict):
            raise SalunInputError("unlearners: expected a table of [unlearners.<name>] sections")
        sections = {}
        for label, body in raw.items():
            path = f"unlearners.{name_at(label, 'unlearners')}"
            if isinstance(body, UnlearnerSection):
                body = body.flat()
            if not isinstance(body, dict):
                raise SalunInputError(f"{path}: expected a table of hyperparameters, got {shown(body)}")
            body = dict(body)
            method = name_at(body.pop("method", label), f"{path}.method")
            task = info.data.get("task")
            registry = GENERATION_UNLEARNERS if task is not None and task.kind == "generation" else UNLEARNERS
            unlearner = registry.get(method, path=path)
            params = validate_keywords(unlearner, body, path)
            try:
                unlearner(**params)  # the method's own checks of its hyperparameters
            except ValueError as error:
                raise SalunInputError(f"{path}: {' '.join(str(error).splitlines())}") from None
            sections[label] = UnlearnerSection(method=method, params=params)
        return sections

    def resolve_path(self, value: str) -> Path:
        """`value` from the config file's folder, unless it is absolute."""
        path = Path(value).expanduser()
        return path if path.is_absolute() else self._base_dir / path

    def to_dict(self) -> dict[str, Any]:
        """The resolved spec, shaped like the TOML it came from (None fields left out)."""

        def table(section: Section) -> dict[str, Any]:
            return {k: v for k, v in section.model_dump(mode="json").items() if v is not None}

        resolved = {
            "audit": table(self.audit),
            "task": table(self.task),
            "data": table(self.data),
            "forget": table(self.forget),
            "model": _jsonable(self.model.flat()),
            "train": table(self.train),
            "metrics": table(self.metrics),
            "attacks": _jsonable(self.attacks.model_dump(mode="json")),
            "equivalence": table(self.equivalence),
            "relearn": _jsonable(self.relearn.model_dump(mode="json")),
            "backdoor": table(self.backdoor),
            "policy": {"rules": list(self.policy.rules)},
            "unlearners": {label: _jsonable(u.flat()) for label, u in self.unlearners.items()},
        }
        if self.task.kind == "generation":
            resolved["generation"] = table(self.generation)
        if self.subject is not None:
            resolved["subject"] = self.subject.model_dump(mode="json")
        return resolved

    def digest(self) -> str:
        """SHA-256 of the canonical JSON of the resolved spec (the store folder, the report formats and where the jobs
        run left out)."""
        resolved = self.to_dict()
        resolved["audit"] = {k: v for k, v in resolved["audit"].items()
                             if k not in ("store", "reports", *EXECUTION_FIELDS)}
        return hashlib.sha256(canonical_json(resolved).encode()).hexdigest()


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=list))


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def spec_from_dict(raw: dict[str, Any], base_dir: Path | None = None) -> Spec:
    try:
        spec = Spec.model_validate(raw)
    except pydantic.ValidationError as error:
        raise input_error(error, model=Spec) from None
    except RecursionError:
        raise SalunInputError("config: arrays or tables nested too deeply to read") from None
    spec._base_dir = (base_dir or Path.cwd()).resolve()
    return spec


def load_spec(path: str | Path) -> Spec:
    path = Path(path)
    raw = _read_toml(path)
    return spec_from_dict(raw, base_dir=path.resolve().parent)


def _read_toml(path: Path) -> dict[str, Any]:
    """The config file's tables; anything that keeps it from being read is one SalunInputError naming it."""
    try:
        if not path.is_file():
            what = "is a folder, not a file" if path.is_dir() else "not found"
            raise SalunInputError(f"config file {what}: {path}")
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise SalunInputError(f"{path}: a config file of {path.stat().st_size} bytes; "
                                  f"the most salun reads is {MAX_CONFIG_BYTES}")
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise SalunInputError(f"{path}: not valid TOML: {error}") from None
    except UnicodeDecodeError:
        raise SalunInputError(f"{path}: not a UTF-8 text file") from None
    except RecursionError:
        raise SalunInputError(f"{path}: arrays or tables nested too deeply to read") from None
    except OSError as error:
        raise SalunInputError(f"config file {path}: cannot read it: {error.strerror or error}") from None


def default_spec_text() -> str:
    """The commented built-in example: what `salun audit` runs with no config."""
    return resources.files("audit.config").joinpath(DEFAULT_SPEC_RESOURCE).read_text(encoding="utf-8")


def default_spec() -> Spec:
    return spec_from_dict(tomllib.loads(default_spec_text()))
