"""The sections of an audit spec, one frozen class per TOML table, every default filled in.

`audit.config.spec.Spec` puts them together and validates what spans several sections.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_serializer, model_validator

from audit.core.errors import SalunInputError
from audit.core.params import (BatchSize, Count, Epochs, LearningRate, Momentum, Probability, Steps,
                          WeightDecay, shown, validate_keywords)
from audit.config.fields import (ClassIndex, ImageSide, Name, PathText, Section, Seed, Text, _unique,  # noqa: F401
                                 name_at)
from audit.config.dp import DpSection
from audit.config.policy import DEFAULT_RULES, MAX_RULES, parse_rule
from audit.core.probes import membership_attack
from audit.core.registry import DATASETS, MODELS

# implemented by audit.nn.augment
AUGMENTATION_POLICIES = ("none", "crop_flip", "randaugment", "autoaugment", "trivialaugment", "augmix",
                         "random_erasing")
REPORT_FORMATS = ("html", "pdf", "junit")  # written by every audit unless audit.reports says otherwise
# [audit] fields of where the jobs run, which no job key and no spec digest includes
EXECUTION_FIELDS = ("executor", "jobs_per_gpu", "ray_address", "ray_max_in_flight", "ray_store")
MIA_FEATURES = ("confidence", "correctness", "entropy", "modified_entropy", "modified_entropy_salun_code",
                "probabilities")


class AuditSection(Section):
    name: Text = "audit"
    seeds: int = Field(default=3, ge=1, le=10_000)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    store: PathText = ".salun-store"
    # a format listed twice is written once: repeats are folded, in the order first given
    reports: tuple[Literal[REPORT_FORMATS], ...] = REPORT_FORMATS  # type: ignore[valid-type]
    plugins: tuple[Name, ...] | None = None  # entry points allowed to load, as "<group>:<name>"; None: all
    executor: Name = "local"  # local | processes | gpu | ray, or one an installed plugin registers
    jobs_per_gpu: int = Field(default=1, ge=1, le=64)  # gpu and ray: jobs sharing one GPU at once
    ray_address: Text | None = None  # ray: the cluster to join ("auto", "host:port"); None starts one here
    ray_max_in_flight: int | None = Field(default=None, ge=1, le=100_000)  # None: twice the cluster's job slots
    ray_store: PathText | None = None  # ray: audit.store as the workers see it on a shared filesystem

    _fold_reports = field_validator("reports", mode="before")(_unique)


class TaskSection(Section):
    """classification: the audited models are classifiers. generation: they are class-conditional
    diffusion models ([generation]), and [model]/[train] describe the judge classifier."""

    kind: Literal["classification", "generation"] = "classification"


class DataSection(Section):
    dataset: Name = "digits"
    root: PathText | None = None
    test_fraction: float = Field(default=0.2, gt=0, lt=1)
    seed: Seed = 0
    label_column: Name = "label"                        # csv: the column holding the class
    image_size: tuple[ImageSide, ImageSide] | None = None  # imagefolder: resize every image to (H, W)

    @field_validator("dataset")
    @classmethod
    def _registered(cls, name: str) -> str:
        DATASETS.get(name, path="data.dataset")
        return name


class ForgetSection(Section):
    kind: Literal["random", "class", "indices"] = "random"
    fraction: float | None = Field(default=None, gt=0, lt=1)
    count: int | None = Field(default=None, ge=1, le=1_000_000_000)
    classes: tuple[ClassIndex, ...] | None = None
    indices_file: PathText | None = None

    @model_validator(mode="before")
    @classmethod
    def _fill_and_check(cls, raw: Any) -> Any:
        if not isinstance(raw, dict) or not isinstance(raw.get("kind", "random"), str):
            return raw  # the field types report it
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
        if not isinstance(raw, dict):
            raise SalunInputError(f"model: expected a table of the model's options, got {shown(raw)}")
        raw = dict(raw)
        arch = name_at(raw.pop("arch", "cnn"), "model.arch")
        factory = MODELS.get(arch, path="model.arch")
        return {"arch": arch, "options": validate_keywords(factory, raw, "model", skip=2)}

    def flat(self) -> dict[str, Any]:
        return {"arch": self.arch, **self.options}


class TrainSection(Section):
    epochs: Epochs = 30
    batch_size: BatchSize = 64
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: LearningRate = 0.05
    momentum: Momentum = 0.9
    weight_decay: WeightDecay = 5e-4
    schedule: Literal["constant", "cosine", "linear"] = "cosine"
    augmentation: Literal[AUGMENTATION_POLICIES] = "none"  # type: ignore[valid-type]
    trainer: Literal["per_model", "vectorised"] = "per_model"  # vectorised: a population as one job
    population_size: int = Field(default=32, ge=1, le=4096)  # vectorised: most models trained as one
    dp: DpSection | None = None  # [train.dp]: differentially private training (audit/config/dp.py)

    @model_validator(mode="after")
    def _population_size_needs_vectorised(self) -> "TrainSection":
        if "population_size" in self.model_fields_set and self.trainer == "per_model":
            raise SalunInputError("train.population_size: only used when train.trainer = 'vectorised'")
        if self.dp is not None and self.trainer == "vectorised":
            raise SalunInputError("train.dp: the vectorised trainer does not train with differential privacy; "
                                  "set train.trainer = \"per_model\"")
        return self

    @model_serializer(mode="wrap")
    def _per_model_as_before(self, dump: Any) -> dict[str, Any]:
        """per_model without DP reads as before there was a choice: its job keys and the resolved spec stay as
        they were."""
        vectorised = self.trainer == "vectorised"
        return {k: v for k, v in dump(self).items()
                if (vectorised or k not in ("trainer", "population_size")) and (k != "dp" or v is not None)}


class GenerationSection(Section):
    """The audited generators: a class-conditional DDPM with classifier-free guidance."""

    arch: Literal["mlp", "unet"] = "mlp"       # mlp for 8×8 digits; unet for 28×28 and 32×32 (GPU)
    width: int = Field(default=256, ge=4, le=4096)  # mlp hidden units, unet base channels
    schedule: Literal["linear", "cosine"] = "linear"
    steps: int = Field(default=200, ge=2, le=10_000)  # diffusion steps T
    epochs: Epochs = 100
    lr: LearningRate = 1e-3                    # Adam
    batch_size: BatchSize = 128
    p_uncond: float = Field(default=0.1, ge=0, lt=1)  # label dropped to ∅ while training, for guidance
    guidance: float = Field(default=2.0, ge=0, le=100)  # classifier-free guidance scale w
    clip: bool = True                          # clamp the predicted x0 to the data's range while sampling
    samples: int = Field(default=100, ge=2, le=100_000)  # images per class and model the judge classifies
    grid: int = Field(default=8, ge=1, le=1000)  # images per class in the report's sample grids

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
    gamma: float = Field(default=2.0, gt=0, le=1000)
    a: float | None = Field(default=None, ge=0, le=1)  # None: tuned on a held-out reference model
    trim: float = Field(default=0.1, ge=0, lt=0.5)


class AttacksSection(Section):
    """Membership-inference attacks; LiRA, RMIA and U-LiRA share the shadow models of [attacks.lira]."""

    run: tuple[Name, ...] = ATTACK_NAMES  # built-in or registered (audit.api.MembershipAttack); repeats folded
    alpha: float = Field(default=0.05, gt=0, lt=1)
    delta: float = Field(default=1e-5, ge=0, lt=1)
    bootstrap: int = Field(default=1000, ge=0, le=100_000)
    lira: LiraSection = Field(default_factory=LiraSection)
    rmia: RmiaSection = Field(default_factory=RmiaSection)

    _fold_run = field_validator("run", mode="before")(_unique)

    @field_validator("run")
    @classmethod
    def _registered(cls, run: tuple[str, ...]) -> tuple[str, ...]:
        for name in run:
            if name not in ATTACK_NAMES:
                membership_attack(name, "attacks.run")
        return run

    @property
    def needs_shadows(self) -> bool:
        plugins = [name for name in self.run if name not in ATTACK_NAMES]
        return (any(name in self.run for name in ("lira", "rmia", "ulira"))
                or any(membership_attack(name).needs_shadows for name in plugins))


class EquivalenceSection(Section):
    """Retrain-equivalence tests: unlearned against retrained populations."""

    margin: float = Field(default=0.02, gt=0, lt=1)  # TOST margin on UA, RA, TA and MIA-Efficacy (absolute)
    alpha: float = Field(default=0.05, gt=0, lt=1)
    permutations: int = Field(default=1000, ge=1, le=100_000)


class RelearnSection(Section):
    """Relearning attacks on every method's models and, identically, on the reference retrains."""

    run: tuple[Literal["retain", "few_shot"], ...] = ()  # none by default: they train every model again; repeats folded
    aux_size: Count = 200                      # forget-free data: a random subset of the retain set,
    aux_dataset: Name | None = None            # or of this registered dataset (same shape and classes)
    aux_root: PathText | None = None           # its folder, for torchvision datasets
    steps: Steps = 200                         # fine-tuning budget of the retain attack
    checkpoints: int = Field(default=5, ge=1, le=1000)  # evenly spaced measurements after step 0
    lr: LearningRate = 0.01
    batch_size: BatchSize = 32
    shots: Count = 10                          # few-shot: forget examples the attacker holds
    max_steps: Steps = 100                     # few-shot: steps before "did not relearn"

    _fold_run = field_validator("run", mode="before")(_unique)

    @field_validator("aux_dataset")
    @classmethod
    def _registered(cls, name: str | None) -> str | None:
        if name is not None:
            DATASETS.get(name, path="relearn.aux_dataset")
        return name


class BackdoorSection(Section):
    """Backdoor verification of deletion (Athena): a trigger planted in part of the forget set."""

    fraction: Probability = 0.0                       # share of the forget set given the trigger; 0: off
    target: ClassIndex = 0                            # the class triggered points are relabelled to
    size: ImageSide = 2                               # side of the square trigger, in pixels: at most the image's
    queries: Count = 200                              # triggered test images asked of each model
    alpha: float = Field(default=0.05, gt=0, lt=1)

    @property
    def enabled(self) -> bool:
        return self.fraction > 0

    def check_fits(self, image_size: tuple[int, ...]) -> None:
        """The trigger is a size x size patch: it must fit inside the (H, W) images it is planted in."""
        if self.size > min(image_size):
            raise SalunInputError(f"backdoor.size: a {self.size}-pixel trigger does not fit "
                                  f"{' x '.join(map(str, image_size))} images; at most {min(image_size)}")


class PolicySection(Section):
    """The rules a method must meet; each gives PASS, FAIL or INCONCLUSIVE (audit/config/policy.py)."""

    rules: tuple[str, ...] = DEFAULT_RULES

    @field_validator("rules", mode="before")
    @classmethod
    def _parsed(cls, raw: Any) -> Any:
        if not isinstance(raw, (list, tuple)) or not raw:
            raise SalunInputError("policy.rules: expected a non-empty list of rules such as "
                                  '["mia.ulira.auc <= 0.55"]')
        if len(raw) > MAX_RULES:
            raise SalunInputError(f"policy.rules: {len(raw)} rules; a policy takes at most {MAX_RULES}")
        return tuple(parse_rule(text, f"policy.rules[{i}]").text for i, text in enumerate(raw))


class SubjectSection(Section):
    """Checkpoints trained and unlearned outside salun, audited as they are: safetensors files
    or PyTorch state dicts (loaded with weights_only=True), of the [model] architecture."""

    original: PathText
    unlearned: dict[Name, PathText]  # label -> checkpoint

    @field_validator("unlearned")
    @classmethod
    def _some(cls, unlearned: dict[str, str]) -> dict[str, str]:
        if not unlearned:
            raise ValueError("name at least one unlearned checkpoint, as <label> = \"<path>\"")
        return unlearned


class UnlearnerSection(Section):
    """One method to audit: a registered unlearner and its hyperparameters, defaults filled."""

    method: Name
    params: dict[str, Any] = Field(default_factory=dict)

    def flat(self) -> dict[str, Any]:
        return {"method": self.method, **self.params}
