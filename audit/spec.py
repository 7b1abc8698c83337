"""The audit spec: a TOML file validated into frozen objects with every default filled in.

A bad field is reported with its dotted path (`train.lr: ...`). The resolved spec is stored
in results.json and loads back into an equal spec, so a run is described by its own output.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
import typing
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from audit.augment import POLICIES
from audit.errors import SalunInputError
from audit.params import describe_errors, validate_keywords
from audit.policy import BACKDOOR_RULE, DEFAULT_RULES, GENERATION_RULES, RELEARN_RULE, SUBJECT_RULES, parse_rule
from audit.registry import DATASETS, GENERATION_UNLEARNERS, MODELS, UNLEARNERS, allow_plugins

DEFAULT_SPEC_RESOURCE = "default_audit.toml"
REPORT_FORMATS = ("html", "pdf", "junit")  # written by every audit unless audit.reports says otherwise
MIA_FEATURES = ("confidence", "correctness", "entropy", "modified_entropy", "probabilities")


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    @field_validator("*", mode="before")
    @classmethod
    def _lists_as_tuples(cls, raw: Any, info: ValidationInfo) -> Any:
        """TOML has lists; the frozen sections hold tuples."""
        field = cls.model_fields.get(info.field_name)
        if isinstance(raw, list) and field is not None and _is_tuple(field.annotation):
            return tuple(raw)
        return raw


def _is_tuple(annotation: Any) -> bool:
    """tuple[...], or tuple[...] | None."""
    if typing.get_origin(annotation) is tuple:
        return True
    return any(typing.get_origin(arg) is tuple for arg in typing.get_args(annotation))


class AuditSection(Section):
    name: str = "audit"
    seeds: int = Field(default=3, ge=1, le=10_000)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    store: str = ".salun-store"
    reports: tuple[Literal[REPORT_FORMATS], ...] = REPORT_FORMATS  # type: ignore[valid-type]
    plugins: tuple[str, ...] | None = None  # entry points allowed to load, as "<group>:<name>"; None: all


class TaskSection(Section):
    """classification: the audited models are classifiers. generation: they are class-conditional
    diffusion models ([generation]), and [model]/[train] describe the judge classifier."""

    kind: Literal["classification", "generation"] = "classification"


class DataSection(Section):
    dataset: str = "digits"
    root: str | None = None
    test_fraction: float = Field(default=0.2, gt=0, lt=1)
    seed: int = 0
    label_column: str = "label"                   # csv: the column holding the class
    image_size: tuple[int, int] | None = None     # imagefolder: resize every image to (H, W)

    @field_validator("dataset")
    @classmethod
    def _registered(cls, name: str) -> str:
        DATASETS.get(name, path="data.dataset")
        return name


class ForgetSection(Section):
    kind: Literal["random", "class", "indices"] = "random"
    fraction: float | None = Field(default=None, gt=0, lt=1)
    count: int | None = Field(default=None, ge=1)
    classes: tuple[int, ...] | None = None
    indices_file: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _fill_and_check(cls, raw: Any) -> Any:
        if not isinstance(raw, dict):
            return raw
        raw = dict(raw)
        if isinstance(raw.get("classes"), list):
            raw["classes"] = tuple(raw["classes"])
        kind = raw.get("kind", "random")
        used = {"random": ("fraction", "count"), "class": ("classes",), "indices": ("indices_file",)}
        for key in ("fraction", "count", "classes", "indices_file"):
            if raw.get(key) is not None and kind in used and key not in used[kind]:
                raise SalunInputError(f"forget.{key}: not used when forget.kind = '{kind}'")
        if kind == "random":
            if raw.get("fraction") is not None and raw.get("count") is not None:
                raise SalunInputError("forget: give forget.fraction or forget.count, not both")
            if raw.get("fraction") is None and raw.get("count") is None:
                raw["fraction"] = 0.1
        elif kind == "class" and not raw.get("classes"):
            raise SalunInputError("forget.classes: class-wise forgetting needs a list of classes")
        elif kind == "indices" and not raw.get("indices_file"):
            raise SalunInputError("forget.indices_file: needed when forget.kind = 'indices'")
        return raw


class ModelSection(Section):
    """`arch` names a registered model; every other key is one of its options."""

    arch: str = "cnn"
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _validate_options(cls, raw: Any) -> Any:
        if isinstance(raw, ModelSection):
            return raw
        raw = dict(raw)
        arch = raw.pop("arch", "cnn")
        if not isinstance(arch, str):
            raise SalunInputError(f"model.arch: expected a model name, got {arch!r}")
        factory = MODELS.get(arch, path="model.arch")
        return {"arch": arch, "options": validate_keywords(factory, raw, "model", skip=2)}

    def flat(self) -> dict[str, Any]:
        return {"arch": self.arch, **self.options}


class TrainSection(Section):
    epochs: int = Field(default=30, ge=1)
    batch_size: int = Field(default=64, ge=1)
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = Field(default=0.05, gt=0)
    momentum: float = Field(default=0.9, ge=0, lt=1)
    weight_decay: float = Field(default=5e-4, ge=0)
    schedule: Literal["constant", "cosine", "linear"] = "cosine"
    augmentation: Literal[POLICIES] = "none"  # type: ignore[valid-type]


class GenerationSection(Section):
    """The audited generators: a class-conditional DDPM with classifier-free guidance."""

    arch: Literal["mlp", "unet"] = "mlp"       # mlp for 8×8 digits; unet for 28×28 and 32×32 (GPU)
    width: int = Field(default=256, ge=4)      # mlp hidden units, unet base channels
    schedule: Literal["linear", "cosine"] = "linear"
    steps: int = Field(default=200, ge=2)      # diffusion steps T
    epochs: int = Field(default=100, ge=1)
    lr: float = Field(default=1e-3, gt=0)      # Adam
    batch_size: int = Field(default=128, ge=1)
    p_uncond: float = Field(default=0.1, ge=0, lt=1)  # label dropped to ∅ while training, for guidance
    guidance: float = Field(default=2.0, ge=0)  # classifier-free guidance scale w
    clip: bool = True                          # clamp the predicted x0 to the data's range while sampling
    samples: int = Field(default=100, ge=2)    # images per class and model the judge classifies
    grid: int = Field(default=8, ge=1)         # images per class in the report's sample grids

    @model_validator(mode="after")
    def _grid_within_samples(self) -> "GenerationSection":
        if self.grid > self.samples:
            raise SalunInputError(f"generation.grid: {self.grid} is more than generation.samples ({self.samples})")
        return self


class MetricsSection(Section):
    mia_feature: Literal[MIA_FEATURES] = "confidence"  # type: ignore[valid-type]


ATTACK_NAMES = ("threshold", "svc", "lira", "rmia", "ulira")


class LiraSection(Section):
    shadows: int = Field(default=16, ge=6, le=1024)  # each pool point is IN for exactly half of them
    # (6 at least: leaving one out, the online attack still needs 2 IN and 2 OUT models per point)
    scale: Literal["per_example", "pooled"] = "per_example"

    @field_validator("shadows")
    @classmethod
    def _even(cls, shadows: int) -> int:
        if shadows % 2:
            raise ValueError("must be even, so that every point is IN for exactly half of the shadow models")
        return shadows


class RmiaSection(Section):
    gamma: float = Field(default=2.0, gt=0)
    a: float | None = Field(default=None, ge=0, le=1)  # None: tuned on a held-out reference model
    trim: float = Field(default=0.1, ge=0, lt=0.5)


class AttacksSection(Section):
    """Membership-inference attacks; LiRA, RMIA and U-LiRA share the shadow models of [attacks.lira]."""

    run: tuple[Literal[ATTACK_NAMES], ...] = ATTACK_NAMES  # type: ignore[valid-type]
    alpha: float = Field(default=0.05, gt=0, lt=1)
    delta: float = Field(default=1e-5, ge=0, lt=1)
    bootstrap: int = Field(default=1000, ge=0)
    lira: LiraSection = Field(default_factory=LiraSection)
    rmia: RmiaSection = Field(default_factory=RmiaSection)

    @property
    def needs_shadows(self) -> bool:
        return any(name in self.run for name in ("lira", "rmia", "ulira"))


class EquivalenceSection(Section):
    """Retrain-equivalence tests: unlearned against retrained populations."""

    margin: float = Field(default=0.02, gt=0, lt=1)  # TOST margin on UA, RA, TA and MIA-Efficacy (absolute)
    alpha: float = Field(default=0.05, gt=0, lt=1)
    permutations: int = Field(default=1000, ge=1)


class RelearnSection(Section):
    """Relearning attacks on every method's models and, identically, on the reference retrains."""

    run: tuple[Literal["retain", "few_shot"], ...] = ()  # none by default: they train every model again
    aux_size: int = Field(default=200, ge=1)   # forget-free data: a random subset of the retain set,
    aux_dataset: str | None = None             # or of this registered dataset (same shape and classes)
    aux_root: str | None = None                # its folder, for torchvision datasets
    steps: int = Field(default=200, ge=1)      # fine-tuning budget of the retain attack
    checkpoints: int = Field(default=5, ge=1)  # evenly spaced measurements after step 0
    lr: float = Field(default=0.01, gt=0)
    batch_size: int = Field(default=32, ge=1)
    shots: int = Field(default=10, ge=1)       # few-shot: forget examples the attacker holds
    max_steps: int = Field(default=100, ge=1)  # few-shot: steps before "did not relearn"

    @field_validator("aux_dataset")
    @classmethod
    def _registered(cls, name: str | None) -> str | None:
        if name is not None:
            DATASETS.get(name, path="relearn.aux_dataset")
        return name


class BackdoorSection(Section):
    """Backdoor verification of deletion (Athena): a trigger planted in part of the forget set."""

    fraction: float = Field(default=0.0, ge=0, le=1)  # share of the forget set given the trigger; 0: off
    target: int = Field(default=0, ge=0)              # the class triggered points are relabelled to
    size: int = Field(default=2, ge=1)                # side of the square trigger, in pixels
    queries: int = Field(default=200, ge=1)           # triggered test images asked of each model
    alpha: float = Field(default=0.05, gt=0, lt=1)

    @property
    def enabled(self) -> bool:
        return self.fraction > 0


class PolicySection(Section):
    """The rules a method must meet; each gives PASS, FAIL or INCONCLUSIVE (audit/policy.py)."""

    rules: tuple[str, ...] = DEFAULT_RULES

    @field_validator("rules", mode="before")
    @classmethod
    def _parsed(cls, raw: Any) -> Any:
        if not isinstance(raw, (list, tuple)) or not raw:
            raise SalunInputError("policy.rules: expected a non-empty list of rules such as "
                                  '["mia.ulira.auc <= 0.55"]')
        for i, text in enumerate(raw):
            parse_rule(text, f"policy.rules[{i}]")
        return tuple(raw)


class SubjectSection(Section):
    """Checkpoints trained and unlearned outside salun, audited as they are: safetensors files
    or PyTorch state dicts (loaded with weights_only=True), of the [model] architecture."""

    original: str
    unlearned: dict[str, str]  # label -> checkpoint

    @field_validator("unlearned")
    @classmethod
    def _some(cls, unlearned: dict[str, str]) -> dict[str, str]:
        if not unlearned:
            raise ValueError("name at least one unlearned checkpoint, as <label> = \"<path>\"")
        return unlearned


class UnlearnerSection(Section):
    """One method to audit: a registered unlearner and its hyperparameters, defaults filled."""

    method: str
    params: dict[str, Any] = Field(default_factory=dict)

    def flat(self) -> dict[str, Any]:
        return {"method": self.method, **self.params}


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
        if "retain" in (section("relearn").get("run") or ()):
            rules.append(RELEARN_RULE)
        if (section("backdoor").get("fraction") or 0) > 0:
            rules.append(BACKDOOR_RULE)
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

    @field_validator("unlearners", mode="before")
    @classmethod
    def _validate_unlearners(cls, raw: Any, info: ValidationInfo) -> Any:
        if not isinstance(raw, dict):
            raise SalunInputError("unlearners: expected a table of [unlearners.<name>] sections")
        if not raw and info.data.get("subject") is None:
            raise SalunInputError(
                "unlearners: no method to audit; add a [unlearners.<name>] section (see `salun list`), "
                "or a [subject] with your own checkpoints"
            )
        sections = {}
        for label, body in raw.items():
            path = f"unlearners.{label}"
            if isinstance(body, UnlearnerSection):
                body = body.flat()
            if not isinstance(body, dict):
                raise SalunInputError(f"{path}: expected a table of hyperparameters, got {body!r}")
            body = dict(body)
            method = body.pop("method", label)
            task = info.data.get("task")
            registry = GENERATION_UNLEARNERS if task is not None and task.kind == "generation" else UNLEARNERS
            unlearner = registry.get(method, path=path)
            params = validate_keywords(unlearner, body, path)
            try:
                unlearner(**params)  # the method's own checks of its hyperparameters
            except ValueError as error:
                raise SalunInputError(f"{path}: {error}") from None
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
        """SHA-256 of the canonical JSON of the resolved spec (the store folder and the report formats left out)."""
        resolved = self.to_dict()
        resolved["audit"] = {k: v for k, v in resolved["audit"].items() if k not in ("store", "reports")}
        return hashlib.sha256(canonical_json(resolved).encode()).hexdigest()


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=list))


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def spec_from_dict(raw: dict[str, Any], base_dir: Path | None = None) -> Spec:
    try:
        spec = Spec.model_validate(raw)
    except pydantic.ValidationError as error:
        raise SalunInputError("\n".join(describe_errors(error, model=Spec))) from None
    spec._base_dir = (base_dir or Path.cwd()).resolve()
    return spec


def load_spec(path: str | Path) -> Spec:
    path = Path(path)
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "not found"
        raise SalunInputError(f"config file {what}: {path}")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise SalunInputError(f"{path}: not valid TOML: {error}") from None
    except UnicodeDecodeError:
        raise SalunInputError(f"{path}: not a UTF-8 text file") from None
    return spec_from_dict(raw, base_dir=path.resolve().parent)


def default_spec_text() -> str:
    """The commented built-in example: what `salun audit` runs with no config."""
    return resources.files("audit").joinpath(DEFAULT_SPEC_RESOURCE).read_text(encoding="utf-8")


def default_spec() -> Spec:
    return spec_from_dict(tomllib.loads(default_spec_text()))
